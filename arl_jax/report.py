"""Reports of meta-test runs: rows of a CSV -> markdown tables and plots."""

from __future__ import annotations

import collections
import csv
import math
import os
from collections.abc import Iterable, Sequence

FIELDS = (
    "dataset", "arch", "noise", "kind", "rate", "loss", "seed",
    "val_acc", "test_acc", "train_loss", "diverged", "seconds",
)  # fmt: skip


# What a meta-test row's number depends on besides the loss: rows of two runs pair
# (and a rerun into a folder may add to its rows) only when these are equal.
RECIPE = ("dataset", "noise", "seeds", "steps", "batch_size", "lr", "optimizer",
          "schedule", "standardize", "train_size", "seed")  # fmt: skip
# The value of a RECIPE field that a config.json from before the field existed meant.
RECIPE_DEFAULTS = {"schedule": "cosine", "standardize": False}


def is_learned(loss: str) -> bool:
    """Whether a row's loss is a learned one: the shipped `arl` or a search's
    `arl[RUN]` (`compare.loss_file_label`), not a hand-designed baseline."""
    return loss.startswith("arl")


def read_rows(path: str) -> list[dict]:
    """Rows of a meta-test CSV, numbers parsed; [] if the file does not exist."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                for k in ("rate", "val_acc", "test_acc", "train_loss", "seconds"):
                    row[k] = float(row[k])
                row["seed"] = int(row["seed"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{path} line {line} is not a meta-test row; "
                                 "move the file away or use another --out") from None
            row["diverged"] = row["diverged"] in ("True", "1", "true")
            rows.append(row)
    return rows


class RowWriter:
    """Append rows to a CSV as they come (flushed), writing the header once."""

    def __init__(self, path: str):
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self._fh = open(path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._w = csv.DictWriter(self._fh, fieldnames=FIELDS)
        if new:
            self._w.writeheader()
            self._fh.flush()

    def write(self, rows: Iterable[dict]) -> None:
        """Append `rows` and flush, so an interrupted run keeps them."""
        for row in rows:
            self._w.writerow({k: row[k] for k in FIELDS})
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def _mean_std_n(values: Sequence[float]) -> tuple[float, float, int]:
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values)), len(values)


def aggregate(
    rows: list[dict],
) -> dict[tuple[str, str, str], tuple[float, float, int]]:
    """(arch, noise, loss) -> (mean, std, number of seeds) of test accuracy."""
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["arch"], r["noise"], r["loss"])].append(r["test_acc"])
    return {k: _mean_std_n(v) for k, v in groups.items()}


def noisy_means(rows: list[dict]) -> dict[tuple[str, str], tuple[float, int]]:
    """(arch, loss) -> (mean test accuracy over the noisy settings it ran, how many
    of them): each setting's mean over seeds (`aggregate`), averaged; the clean
    setting ("none") left out."""
    per: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for (arch, noise, loss), (m, _, _) in aggregate(rows).items():
        if noise != "none":
            per[(arch, loss)].append(m)
    return {k: (sum(v) / len(v), len(v)) for k, v in per.items()}


def _noise_order(noises: Iterable[str]) -> list[str]:
    def key(n: str) -> tuple:
        kind, _, rate = n.partition(":")
        try:
            return (kind != "none", kind, float(rate or 0), "")
        except ValueError:  # labels:NAME, a dataset's own noisy labels
            return (kind != "none", kind, 0.0, rate)

    return sorted(set(noises), key=key)


def markdown_tables(rows: list[dict]) -> str:
    """One table per architecture: losses x noise settings, mean +- std test accuracy
    (percent; the mean alone where there is one seed), the best of each column in
    bold, and the mean over the noisy columns. Means are compared as printed (to 0.01
    points), so every loss tied with the best at that precision is bold."""
    agg = aggregate(rows)
    grid = noisy_means(rows)
    out = []
    dataset = rows[0]["dataset"] if rows else ""
    for arch in sorted({r["arch"] for r in rows}):
        noises = _noise_order(r["noise"] for r in rows if r["arch"] == arch)
        loss_names = list(dict.fromkeys(r["loss"] for r in rows if r["arch"] == arch))
        means = {loss: grid.get((arch, loss), (0.0, 0))[0] for loss in loss_names}
        best = {
            n: max(agg[(arch, n, x)][0] for x in loss_names if (arch, n, x) in agg)
            for n in noises
        }
        best_mean = max(means.values()) if means else 0.0

        def pct(v):
            return f"{100 * v:.2f}"

        head = ["loss", *noises, "mean (noisy)"]
        out.append(f"### {dataset}, {arch}: clean test accuracy (%), mean ± std\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for loss in loss_names:
            cells = [loss]
            for n in noises:
                if (arch, n, loss) not in agg:
                    cells.append("–")
                    continue
                m, s, n_seeds = agg[(arch, n, loss)]
                # One seed has no spread to show; a "± 0.00" would claim one.
                text = pct(m) + (f" ± {pct(s)}" if n_seeds > 1 else "")
                cells.append(f"**{text}**" if pct(m) == pct(best[n]) else text)
            text = pct(means[loss])
            cells.append(f"**{text}**" if text == pct(best_mean) else text)
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def seed_differences(rows: list[dict], loss: str, reference: str) -> list[float]:
    """Seed by seed, `loss`'s mean test accuracy over the noisy settings of `rows`
    minus `reference`'s (points), for each seed both ran on every noisy setting.

    `rows` are one architecture's. meta_test gives every loss of a setting the same
    noisy labels and the same seeds, so seed s of two losses differs only by the
    loss. A seed may be any sortable value, e.g. `(draw, seed)` when the rows of
    several meta_test runs are pooled.
    """
    noisy = sorted({r["noise"] for r in rows} - {"none"})
    acc = {(r["loss"], r["seed"], r["noise"]): r["test_acc"] for r in rows}
    out = []
    for s in sorted({r["seed"] for r in rows}):
        a = [acc.get((loss, s, n)) for n in noisy]
        b = [acc.get((reference, s, n)) for n in noisy]
        if noisy and None not in a and None not in b:
            out.append(100 * (sum(a) - sum(b)) / len(noisy))
    return out


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The two-sided Student-t confidence interval of the mean of `values`
    (sample standard deviation, `len(values) - 1` degrees of freedom); (nan, nan)
    with fewer than two values."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    from scipy import stats  # imported here: the rest of the module needs no scipy

    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return m - half, m + half


def paired_differences(
    rows: list[dict], reference: str
) -> dict[str, dict[str, dict[str, float]]]:
    """Each loss against `reference`, seed by seed: arch -> loss -> statistics
    (an architecture where no loss has a seed to compare is left out).

    The differences are `seed_differences`', returned as their mean, standard
    deviation over seeds (`std`, population), number of seeds, how many seeds the
    loss was ahead, the smallest difference (`min`) and the 95% t-interval of the
    mean (`low`, `high`; nan with one seed). An interval that includes 0 says the
    two are not told apart by these seeds.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arch in sorted({r["arch"] for r in rows}):
        arch_rows = [r for r in rows if r["arch"] == arch]
        stats = {}
        for loss in dict.fromkeys(r["loss"] for r in arch_rows):
            diffs = (seed_differences(arch_rows, loss, reference)
                     if loss != reference else [])  # fmt: skip
            if diffs:
                m, sd, n = _mean_std_n(diffs)
                low, high = t_interval(diffs)
                stats[loss] = {"mean": m, "std": sd, "seeds": n,
                               "ahead": sum(d > 0 for d in diffs), "min": min(diffs),
                               "low": low, "high": high}  # fmt: skip
        if stats:
            out[arch] = stats
    return out


def paired_tables(rows: list[dict], reference: str) -> str:
    """`paired_differences` as markdown: one table per architecture, the losses
    ordered from the most ahead of `reference` to the most behind; "" when
    `reference` has no complete seed."""
    out = []
    for arch, stats in paired_differences(rows, reference).items():
        out.append(
            f"### {rows[0]['dataset']}, {arch}: each loss minus {reference}, "
            "seed by seed (points of mean accuracy over the noisy settings; the "
            "same labels and seeds for every loss)\n"
        )
        out.append(f"| loss | difference, mean ± std over seeds | seeds ahead of "
                   f"{reference} |")  # fmt: skip
        out.append("|---|---:|---:|")
        for loss, st in sorted(stats.items(), key=lambda kv: -kv[1]["mean"]):
            spread = f" ± {st['std']:.2f}" if st["seeds"] > 1 else ""
            mean = round(st["mean"], 2) + 0.0  # no "-0.00"
            out.append(f"| {loss} | {mean:+.2f}{spread} | "
                       f"{st['ahead']} of {st['seeds']} |")  # fmt: skip
        out.append("")
    return "\n".join(out)


_LEARNED_STYLES = tuple(
    (color, ls, marker)
    for color in ("black", "dimgray")
    for ls, marker in (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))
)


def line_styles(loss_names: list[str]) -> dict[str, dict]:
    """Matplotlib line styles, one per loss: the learned losses thick and dark, each
    with its own dash and marker (so that several searches' losses stay apart), the
    hand-designed ones thin in matplotlib's colours, a new dash after each ten."""
    styles, learned, hand = {}, 0, 0
    for loss in loss_names:
        if is_learned(loss):
            color, ls, marker = _LEARNED_STYLES[learned % len(_LEARNED_STYLES)]
            styles[loss] = dict(lw=2.5, color=color, ls=ls, marker=marker, ms=4)
            learned += 1
        else:
            styles[loss] = dict(ls=("-", "--", ":")[(hand // 10) % 3], marker="o",
                                ms=3)  # fmt: skip
            hand += 1
    return styles


def plot_accuracy_vs_noise(rows: list[dict], path: str) -> None:
    """Test accuracy against noise rate, one line per loss, a panel per
    (architecture, noise kind); the clean result is the rate-0 point of every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(rows)
    archs = sorted({r["arch"] for r in rows})
    kinds = sorted({r["kind"] for r in rows if r["kind"] != "none"}) or ["none"]
    fig, axes = plt.subplots(
        len(archs),
        len(kinds),
        figsize=(5 * len(kinds), 3.8 * len(archs)),
        squeeze=False,
    )
    loss_names = list(dict.fromkeys(r["loss"] for r in rows))
    styles = line_styles(loss_names)
    for i, arch in enumerate(archs):
        for j, kind in enumerate(kinds):
            ax = axes[i, j]
            for loss in loss_names:
                pts = sorted(
                    (r["rate"], agg[(arch, r["noise"], loss)][0])
                    for r in {
                        (x["noise"]): x
                        for x in rows
                        if x["arch"] == arch and x["kind"] in (kind, "none")
                    }.values()
                    if (arch, r["noise"], loss) in agg
                )
                if not pts:
                    continue
                ax.plot([p[0] for p in pts], [100 * p[1] for p in pts],
                        label=loss, **styles[loss])  # fmt: skip
            ax.set_title(f"{rows[0]['dataset']}, {arch}, {kind} noise")
            ax.set_xlabel("noise rate")
            ax.set_ylabel("clean test accuracy (%)")
            ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

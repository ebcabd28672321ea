"""Pool meta_test output folders and compare every loss with a reference, seed by seed.

    arl-report FOLDER [FOLDER ...] --reference LOSS [LOSS ...] [--settings NOISE ...]
    python -m experiments.report docs/runs/bar_confirm/seed2 \\
        docs/runs/bar_confirm/seed3 docs/runs/bar_confirm/cpu_lenet/seed2 \\
        docs/runs/bar_confirm/cpu_lenet/seed3 --reference nce_mae nce_rce

Each FOLDER is what `meta_test --out FOLDER` wrote (`runs.csv`, `config.json`).
meta_test draws a setting's noisy labels and a seed's initial weights from its
`--seed` and the setting's place in the `--noise` list, so rows pair seed by seed only
between runs with the same recipe (`RECIPE`). Folders with the same recipe form one
*draw* and their rows pair (e.g. the MLP's rows from one folder, LeNet-5's or other
losses' from another); folders that differ only in `--seed` (or `--seeds`) are
separate draws, pooled: seed s of one draw pairs only with seed s of the same draw.
Folders that differ in anything else cannot be pooled and are refused, as are a run
that two folders of one draw both hold and a learned loss whose name stands for other
coefficients in another folder.

Printed per architecture: each loss's mean test accuracy over the noisy settings and
on clean labels, and each loss minus each `--reference` seed by seed (points) with
its 95% t-interval, smallest difference and the seeds ahead, pooled and per draw
(`arl_jax.report.paired_differences`). `--settings` restricts the noisy settings
(e.g. `symmetric:0.6` alone); `--out FILE` also writes the table as markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from arl_jax import report

# What a row's number depends on besides the loss (the same list as meta_test's):
# rows of two runs pair seed by seed only if all of these are equal.
RECIPE = report.RECIPE
# What may differ between draws that are pooled: the draw itself.
DRAW_FIELDS = ("seed", "seeds")


class PoolError(ValueError):
    """Folders whose rows cannot be read together."""


def _config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.exists(os.path.join(folder, "runs.csv")) or not os.path.exists(path):
        raise PoolError(f"{folder}: no runs.csv and config.json (give meta_test "
                        "output folders)")  # fmt: skip
    with open(path) as fh:
        return json.load(fh)


def _recipe(cfg: dict, folder: str) -> dict:
    cfg = {**report.RECIPE_DEFAULTS, **cfg}
    missing = [k for k in RECIPE if k not in cfg]
    if missing:
        raise PoolError(f"{folder}/config.json lacks {', '.join(missing)}")
    return {k: cfg[k] for k in RECIPE}


def load_pool(folders: list[str]) -> tuple[list[dict], list[dict]]:
    """The rows of `folders` with each row's seed made `(draw, seed)`, and the draws
    (each `{"recipe": ..., "folders": [...]}`, in order of first appearance).

    Raises PoolError where the folders cannot be pooled (see the module docstring).
    """
    draws: list[dict] = []
    learned: dict[str, tuple[str, object]] = {}
    rows: list[dict] = []
    seen: dict[tuple, str] = {}
    for folder in folders:
        cfg = _config(folder)
        recipe = _recipe(cfg, folder)
        recipes = [d["recipe"] for d in draws]
        if recipe in recipes:
            i = recipes.index(recipe)
            draws[i]["folders"].append(folder)
        else:
            i = len(draws)
            if draws:
                first = draws[0]["recipe"]
                diff = [k for k in RECIPE if k not in DRAW_FIELDS
                        and recipe[k] != first[k]]  # fmt: skip
                if diff:
                    raise PoolError(
                        f"cannot pool {folder} with {draws[0]['folders'][0]}: "
                        + "; ".join(f"--{k.replace('_', '-')} {first[k]!r} vs "
                                    f"{recipe[k]!r}" for k in diff))  # fmt: skip
            draws.append({"recipe": recipe, "folders": [folder]})
        for name, spec in cfg.get("learned_losses", {}).items():
            if name in learned and learned[name][1] != spec:
                raise PoolError(f"{name} stands for other coefficients in {folder} "
                                f"than in {learned[name][0]}")  # fmt: skip
            learned.setdefault(name, (folder, spec))
        for r in report.read_rows(os.path.join(folder, "runs.csv")):
            key = (i, r["arch"], r["noise"], r["loss"], r["seed"])
            if key in seen:
                raise PoolError(
                    f"{r['loss']}, {r['arch']}, {r['noise']}, seed "
                    f"{r['seed']} is in both {seen[key]} and {folder}"
                )
            seen[key] = folder
            rows.append({**r, "seed": (i, r["seed"]), "draw": i})
    return rows, draws


def _setting_key(noise: str) -> tuple:
    kind, _, rate = noise.partition(":")
    return kind, float(rate or 0)


def _draw_name(draws: list[dict], i: int) -> str:
    return f"--seed {draws[i]['recipe']['seed']}"


def _interval(st: dict | None) -> str:
    if st is None:
        return "–"
    if st["seeds"] < 2:
        return f"{st['mean']:+.2f} (1 seed)"
    return f"{st['mean']:+.2f} [{st['low']:+.2f}, {st['high']:+.2f}]"


def render(rows: list[dict], draws: list[dict], references: list[str]) -> str:
    """The pooled comparison as markdown (see the module docstring)."""
    recipe = draws[0]["recipe"]
    noise = " ".join(recipe["noise"]) if isinstance(recipe["noise"], list) \
        else recipe["noise"]  # fmt: skip
    out = [
        f"# {recipe['dataset']}: {len(draws)} draw(s) "
        f"({', '.join(_draw_name(draws, i) for i in range(len(draws)))}), "
        f"{recipe['steps']} steps, --train-size {recipe['train_size']}, "
        f"--noise {noise}",
        "",
        *(
            f"- {_draw_name(draws, i)}: {', '.join(d['folders'])}"
            for i, d in enumerate(draws)
        ),  # fmt: skip
        "",
    ]
    for arch in sorted({r["arch"] for r in rows}):
        sub = [r for r in rows if r["arch"] == arch]
        settings = sorted({r["noise"] for r in sub} - {"none"}, key=_setting_key)
        agg = report.aggregate(sub)
        means = report.noisy_means(sub)
        out += [f"## {arch}: test accuracy (%), mean over seeds", "",
                "| loss | seeds | clean | " + " | ".join(settings)
                + f" | mean over the {len(settings)} noisy settings |",
                "|---|" + "---:|" * (len(settings) + 3)]  # fmt: skip
        order = sorted(
            {r["loss"] for r in sub}, key=lambda x: -means.get((arch, x), (-1.0, 0))[0]
        )
        for loss in order:
            seeds = len({r["seed"] for r in sub
                         if r["loss"] == loss and r["noise"] != "none"})  # fmt: skip
            cells = [f"{100 * agg[(arch, n, loss)][0]:.2f}"
                     if (arch, n, loss) in agg else "–"
                     for n in ("none", *settings)]  # fmt: skip
            m, k = means.get((arch, loss), (math.nan, 0))
            cells.append(f"{100 * m:.2f}" if k == len(settings) else "–")
            out.append(f"| {loss} | {seeds} | " + " | ".join(cells) + " |")
        out.append("")
        for ref in references:
            pooled = report.paired_differences(sub, ref).get(arch, {})
            if not pooled:
                out += [f"{arch}: {ref} shares no complete seed with another loss.",
                        ""]  # fmt: skip
                continue
            per_draw = [report.paired_differences(
                [r for r in sub if r["draw"] == i], ref).get(arch, {})
                for i in range(len(draws))]  # fmt: skip
            out += [f"### {arch}: each loss minus {ref}, seed by seed (points; 95% "
                    "t-interval)", "",
                    "| loss | pooled | smallest | seeds ahead |"
                    + "".join(f" {_draw_name(draws, i)} |" for i in range(len(draws))),
                    "|---|---:|---:|---:|" + "---:|" * len(draws)]  # fmt: skip
            for loss, st in sorted(pooled.items(), key=lambda kv: -kv[1]["mean"]):
                out.append(
                    f"| {loss} | {_interval(st)} | {st['min']:+.2f} | "
                    f"{st['ahead']} of {st['seeds']} |"
                    + "".join(f" {_interval(d.get(loss))} |" for d in per_draw)
                )
            out.append("")
    return "\n".join(out)


def grid_label(cfg: dict) -> str:
    """A folder's dataset and training recipe (`_recipe`'s dict) in a few words."""
    opt = "SGD" if cfg["optimizer"] == "sgd" else "Adam"
    extra = ", std" if cfg["standardize"] else ""
    extra += f", train ≤ {cfg['train_size']}" if cfg["train_size"] else ""
    return (f"{cfg['dataset']}: {opt} {cfg['lr']:g} {cfg['schedule']}, "
            f"{cfg['steps']} steps, batch {cfg['batch_size']}{extra}")


def load_grid(folders: list[str]) -> tuple[list[dict], list[dict]]:
    """The rows of `folders`, which may differ in dataset and recipe: each row's
    seed becomes `(folder index, seed)` and its `draw` the folder index; and per
    folder `{"folder", "dataset", "label"}`. Two folders with the same label would
    count one cell twice and are refused."""
    rows, cells = [], []
    for i, folder in enumerate(folders):
        cfg = _config(folder)
        label = grid_label(_recipe(cfg, folder))
        same = [c["folder"] for c in cells if c["label"] == label]
        if same:
            raise PoolError(f"{folder} and {same[0]} are the same cell ({label}); "
                            "pool them without --grid")
        cells.append({"folder": folder, "dataset": cfg["dataset"], "label": label})
        rows += [{**r, "seed": (i, r["seed"]), "draw": i}
                 for r in report.read_rows(os.path.join(folder, "runs.csv"))]
    return rows, cells


def grid_means(rows: list[dict], cells: list[dict]) -> dict[str, dict]:
    """arch -> {(loss, cell index): mean test accuracy (%) over the cell's noisy
    settings and seeds}, for the losses that ran every noisy setting of the cell."""
    out = {}
    for arch in sorted({r["arch"] for r in rows}):
        sub = [r for r in rows if r["arch"] == arch]
        per = {}
        for i in range(len(cells)):
            means = report.noisy_means([r for r in sub if r["draw"] == i])
            full = max((k for _, k in means.values()), default=0)
            per.update({(loss, i): 100 * m for (_, loss), (m, k) in means.items()
                        if k == full})  # fmt: skip
        out[arch] = per
    return out


def _mean_over(per: dict, loss: str, idx: list[int]) -> float:
    vals = [per.get((loss, i)) for i in idx]
    return math.nan if None in vals or not vals else sum(vals) / len(vals)


def _order(per: dict, losses: set[str], idx: list[int]) -> list[str]:
    """Losses by their mean over `idx`, best first; incomplete ones last."""
    def key(loss: str) -> float:
        v = _mean_over(per, loss, idx)
        return -v if not math.isnan(v) else math.inf

    return sorted(losses, key=key)


def render_grid(rows: list[dict], cells: list[dict], references: list[str]) -> str:
    """Each loss's mean test accuracy over the noisy settings per cell (a dataset
    and recipe), over every cell, and over every cell of the other datasets (what a
    leave-one-dataset-out protocol selects on when that dataset is left out); then
    each loss minus each reference, paired by (cell, seed)."""
    out = ["# Grid: test accuracy (%), mean over the noisy settings and seeds", ""]
    out += [f"- c{i + 1}: {c['label']} ({c['folder']})" for i, c in enumerate(cells)]
    datasets = list(dict.fromkeys(c["dataset"] for c in cells))
    every = list(range(len(cells)))
    others = {d: [i for i, c in enumerate(cells) if c["dataset"] != d]
              for d in datasets}  # fmt: skip
    folds = [d for d in datasets if others[d]] if len(datasets) > 1 else []
    for arch, per in grid_means(rows, cells).items():
        sub = [r for r in rows if r["arch"] == arch]
        losses = _order(per, {r["loss"] for r in sub}, every)
        columns = [every, *(others[d] for d in folds)]
        best = [max((v for x in losses if not math.isnan(v := _mean_over(per, x, c))),
                    default=math.nan) for c in columns]  # fmt: skip
        out += ["", f"## {arch}", "",
                "| loss | " + " | ".join(f"c{i + 1}" for i in every) + " | all cells |"
                + "".join(f" without {d} |" for d in folds),
                "|---|" + "---:|" * (len(cells) + 1 + len(folds))]  # fmt: skip
        for loss in losses:
            vals = [f"{per[(loss, i)]:.2f}" if (loss, i) in per else "–" for i in every]
            for col, top in zip(columns, best, strict=True):
                v = _mean_over(per, loss, col)
                vals.append("–" if math.isnan(v) else
                            f"**{v:.2f}**" if v == top else f"{v:.2f}")
            out.append(f"| {loss} | " + " | ".join(vals) + " |")
        for ref in references:
            pooled = report.paired_differences(sub, ref).get(arch, {})
            if not pooled:
                continue
            out += ["", f"### {arch}: each loss minus {ref}, paired by cell and seed "
                    "(points; 95% t-interval)", "",
                    "| loss | mean [95%] | smallest | cells x seeds ahead |",
                    "|---|---:|---:|---:|"]  # fmt: skip
            for loss, st in sorted(pooled.items(), key=lambda kv: -kv[1]["mean"]):
                out.append(f"| {loss} | {_interval(st)} | {st['min']:+.2f} | "
                           f"{st['ahead']} of {st['seeds']} |")
    return "\n".join(out)


def plot_grid(rows: list[dict], cells: list[dict], path: str) -> None:
    """A heat map per architecture: each loss's mean accuracy per cell (written in
    the square), coloured by its distance below the cell's best loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    means = grid_means(rows, cells)
    every = list(range(len(cells)))
    fig, axes = plt.subplots(len(means), 1, squeeze=False, figsize=(
        2 + 1.3 * (len(cells) + 1), 1 + 0.4 * max(len({k[0] for k in p})
                                                   for p in means.values())))
    for ax, (arch, per) in zip(axes[:, 0], means.items(), strict=True):
        losses = _order(per, {k[0] for k in per}, every)
        acc = np.array([[per.get((x, i), np.nan) for i in every]
                        + [_mean_over(per, x, every)] for x in losses])
        gap = acc - np.nanmax(acc, axis=0)
        ax.imshow(np.clip(gap, -10, 0), cmap="viridis", vmin=-10, vmax=0,
                  aspect="auto")
        for (y, x), v in np.ndenumerate(acc):
            if not np.isnan(v):
                ax.text(x, y, f"{v:.1f}", ha="center", va="center", fontsize=7,
                        color="black" if gap[y, x] > -5 else "white")
        ax.set_xticks(range(len(cells) + 1),
                      [c["label"].replace(": ", "\n", 1).replace(", ", "\n", 1)
                       for c in cells] + ["all cells"], fontsize=6)
        ax.set_yticks(range(len(losses)), losses, fontsize=7)
        ax.set_title(f"{arch}: mean test accuracy over the noisy settings (%); "
                     "colour: points below the best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    """Parse the command line, print the report (and write it with `--out`)."""
    parser = argparse.ArgumentParser(
        prog="arl-report",
        description="Pool meta_test output folders and compare every loss with a "
        "reference loss seed by seed (95%% t-intervals).",
    )
    parser.add_argument(
        "folders",
        nargs="+",
        metavar="FOLDER",
        help="meta_test output folders (runs.csv, config.json)",
    )
    parser.add_argument(
        "--reference",
        nargs="+",
        required=True,
        metavar="LOSS",
        help="loss(es) that every other loss is compared with",
    )
    parser.add_argument(
        "--settings",
        nargs="+",
        default=[],
        metavar="NOISE",
        help="noisy settings to average over, e.g. symmetric:0.6 "
        "(default: every noisy setting of the folders)",
    )
    parser.add_argument("--out", default="", help="also write the report to this "
                        "markdown file")  # fmt: skip
    parser.add_argument("--plot", default="", help="with --grid: also draw the "
                        "grid as a heat map into this .png file")
    parser.add_argument("--grid", action="store_true", help="the folders may differ "
                        "in dataset and recipe: one column each, the mean over all, "
                        "and the mean without each dataset (leave one dataset out)")
    args = parser.parse_args(argv)
    try:
        rows, draws = (load_grid if args.grid else load_pool)(args.folders)
    except PoolError as err:
        sys.exit(f"arl-report: {err}")
    if args.settings:
        unknown = set(args.settings) - {r["noise"] for r in rows}
        if unknown:
            sys.exit(f"arl-report: no rows at {', '.join(sorted(unknown))}")
        rows = [r for r in rows if r["noise"] in {*args.settings, "none"}]
    missing = [ref for ref in args.reference if ref not in {r["loss"] for r in rows}]
    if missing:
        sys.exit(f"arl-report: no rows of {', '.join(missing)}")
    if args.plot and not args.grid:
        sys.exit("arl-report: --plot draws the --grid table; add --grid")
    text = (render_grid if args.grid else render)(rows, draws, args.reference)
    if args.plot:
        plot_grid(rows, draws, args.plot)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return text


if __name__ == "__main__":
    main()

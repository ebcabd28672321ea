"""PLAN.md's rule on the new Fashion-MNIST table: R + 3 x prior against the published
losses over 32 fresh seeds (two draws of 16), per architecture.

    PYTHONPATH=. python docs/runs/bar_confirm/confirm.py FOLDER [FOLDER ...]

Each FOLDER is a meta_test output (runs.csv, config.json; e.g.
docs/runs/bar_confirm/seed2); folders of one draw (`--seed`) pool into it, e.g. the
MLP's rows from one folder and LeNet-5's from another. Prints each loss's mean over the
noisy settings, R + 3 x prior minus each published loss seed by seed (per draw and
pooled, with a 95% t-interval), and the rule's decision; nothing is decided while a
core cell is missing. A record for docs/RESULTS.md, not part of the package.
"""

import json
import math
import os
import statistics
import sys
from collections import Counter

from scipy import stats

from arl_jax import report

CANDIDATE = "arl[r_prior3]"
CORE = (CANDIDATE, "nce_mae", "nce_rce")  # the rule's losses (PLAN.md)
PUBLISHED = ("nce_mae", "nce_rce", "gce", "sce", "taylor_ce", "poly1", "anl_ce", "mae",
             "cross_entropy")
NOISY = ("symmetric:0.2", "symmetric:0.4", "symmetric:0.6", "symmetric:0.8",
         "asymmetric:0.2", "asymmetric:0.4")
ARCHS = ("lenet", "mlp")
SEEDS = 16  # a draw's seeds (PLAN.md)
DRAWS = [2, 3]  # the draws' --seed (PLAN.md)
PROTOCOL = {"dataset": "fashion_mnist", "steps": 5000, "train_size": 10000,
            "seeds": SEEDS}


def config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


def load(folders: list[str]) -> list[dict]:
    """Every folder's rows; folders of one draw (one --seed: the MLP's from one
    device, LeNet-5's from another) pool into it, and seeds are renumbered by draw."""
    rows = []
    for folder in folders:
        d = config(folder).get("seed", 0)
        for r in report.read_rows(os.path.join(folder, "runs.csv")):
            rows.append({**r, "seed": 100 * d + r["seed"], "draw": d})
    return rows


def off_protocol(folders: list[str]) -> list[str]:
    """The folders whose config.json is not PLAN.md's protocol (a smoke run, or a
    draw the plan does not name)."""
    out = []
    for folder in folders:
        cfg = config(folder)
        off = {k: cfg.get(k) for k, v in PROTOCOL.items() if cfg.get(k) != v}
        if cfg.get("seed") not in DRAWS:
            off["seed"] = cfg.get("seed")
        if off:
            out.append(f"{os.path.normpath(folder)} ran {off}")
    return out


def missing(rows: list[dict], draws: list[int]) -> list[str]:
    """The core cells (architecture, setting, loss, draw) without all their seeds,
    and any run that two folders hold (one device's half each, PLAN.md)."""
    have: dict[tuple, int] = {}
    for r in rows:
        key = (r["arch"], r["noise"], r["loss"], r["draw"])
        have[key] = have.get(key, 0) + 1
    runs = Counter((r["arch"], r["noise"], r["loss"], r["seed"]) for r in rows)
    twice = [" ".join(map(str, k)) + " in two folders"
             for k, c in sorted(runs.items()) if c > 1]  # fmt: skip
    return twice + [
        f"{a} {n} {loss} --seed {d}" for a in ARCHS for n in NOISY for loss in CORE
        for d in draws if have.get((a, n, loss, d), 0) < SEEDS]  # fmt: skip


def interval(diffs: list[float]) -> str:
    if not diffs:
        return "not run"
    n, m = len(diffs), statistics.mean(diffs)
    if n < 2:
        return f"{m:+.2f} (1 seed)"
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    ahead = sum(d > 0 for d in diffs)
    return f"{m:+.2f} [{m - half:+.2f}, {m + half:+.2f}], ahead on {ahead} of {n}"


def main(folders: list[str]) -> int:
    rows = load(folders)
    verdict = {}
    for arch in ARCHS:
        sub = [r for r in rows if r["arch"] == arch]
        if not sub:
            print(f"## {arch}: no rows yet\n")
            continue
        # each loss's mean over the noisy settings, where it ran all six
        means = {loss: 100 * m for (_, loss), (m, k) in report.noisy_means(sub).items()
                 if k == len(NOISY)}  # fmt: skip
        print(f"## {arch}: mean over the six noisy settings, {len(DRAWS)} draws\n")
        for loss, m in sorted(means.items(), key=lambda kv: -kv[1]):
            clean = [r["test_acc"] for r in sub if r["loss"] == loss
                     and r["noise"] == "none"]  # fmt: skip
            c = f"  clean {100 * statistics.mean(clean):.2f}%" if clean else ""
            has = {r["draw"] for r in sub if r["loss"] == loss}
            part = ("" if has == set(DRAWS) else
                    f"  (only --seed {', '.join(str(d) for d in sorted(has))})")
            print(f"  {loss:18s} {m:6.2f}%{c}{part}")
        if CANDIDATE not in means:
            continue
        print(f"\n  {CANDIDATE} minus each published loss, seed by seed:")
        for ref in (p for p in PUBLISHED if p in means):
            by_draw = "; ".join(
                f"--seed {d}: " + interval(report.seed_differences(
                    [r for r in sub if r["draw"] == d], CANDIDATE, ref))
                for d in DRAWS)
            pooled = interval(report.seed_differences(sub, CANDIDATE, ref))
            print(f"  - {ref}: pooled {pooled} ({by_draw})")
        # ahead of each on the seeds both ran (all of them for the core losses); a
        # published loss that shares no seed with it counts as not behind
        verdict[arch] = all(
            statistics.mean(report.seed_differences(sub, CANDIDATE, p) or [0.0]) > 0
            for p in PUBLISHED if p in means)  # fmt: skip
        print()
    gaps = missing(rows, DRAWS) + off_protocol(folders)
    if gaps:
        print(f"Not decided ({len(gaps)} gaps: core cells without their {SEEDS} seeds, "
              "runs in two folders, or folders off PLAN.md's protocol), e.g. "
              + "; ".join(gaps[-4:]))
        return 1
    if all(verdict.get(a) for a in ARCHS):
        print("Rule 1: R + 3 x prior has the best mean with both architectures: "
              "it meets criterion 2 in this table and ships (PLAN.md).")
    else:
        behind = [a for a in ARCHS if not verdict.get(a)]
        print(f"Rule 2: R + 3 x prior is not first with {', '.join(behind)}: "
              "nothing ships, and it is not proposed again (PLAN.md).")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for folder in sys.argv[1:]:
        if not os.path.exists(os.path.join(folder, "runs.csv")):
            sys.exit(f"{folder}/runs.csv not found: give meta_test output folders "
                     "(PLAN.md's commands write them)")
    sys.exit(main(sys.argv[1:]))

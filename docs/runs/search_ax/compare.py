"""Search AX against the published losses and the penalty's fixed weights in
Fashion-MNIST's two CPU tables at 5,000 steps (PLAN.md's rule), per column and
per seed.

    PYTHONPATH=. python docs/runs/search_ax/compare.py [MLP_CSV LENET_CSV [DRAW1_CSV]]

The search's rows come from this folder's mlp/ and lenet/ runs.csv (or the two CSVs
given, e.g. runs/mt_mlp_ax/runs.csv and runs/mt_lenet_ax/runs.csv while they run);
those folders are copies of the section 4 and section 10 folders, so they hold the
published losses' rows for the same noisy labels and seeds. The fixed weights' rows
come from the folders where they were first run (sections 14 and 18). If
lenet_draw1/runs.csv (or DRAW1_CSV) exists, LeNet-5 on the second draw of labels
(`--seed 1`) is compared too.
"""

import os
import sys
from collections import defaultdict

from arl_jax import report

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.dirname(HERE)
EXTRA = {  # arch -> {file: {label in the file: label here}}
    "mlp": {
        "screen_prior/mlp_u/runs.csv": {"prior1u_search_r": "R + 1 x prior"},
        "screen_prior/mlp_u2/runs.csv": {"prior3u_search_r": "R + 3 x prior"},
    },
    "lenet": {
        "screen_prior/lenet_u/runs.csv": {"prior1u_search_r": "R + 1 x prior"},
        "mt_lenet_au/runs.csv": {"arl[r_prior3]": "R + 3 x prior"},
    },
}
PUBLISHED = {"cross_entropy", "gce", "sce", "nce_rce", "nce_mae", "taylor_ce",
             "poly1", "anl_ce"}  # fmt: skip
NAMES = {"arl[search_ax]": "search AX", "arl": "shipped (G)"}
SHOWN = ["search AX", "R + 1 x prior", "R + 3 x prior", "shipped (G)"]


def table(rows: list[dict], arch: str) -> None:
    acc = defaultdict(list)  # (loss, noise) -> [(seed, test_acc)]
    for r in rows:
        acc[(r["loss"], r["noise"])].append((r["seed"], 100 * r["test_acc"]))
    noises = sorted({n for _, n in acc if n != "none"})
    losses = [n for n in SHOWN if any(k[0] == n for k in acc)]
    losses += sorted({k[0] for k in acc if k[0] in PUBLISHED})
    print(f"\n{arch}: clean | {' | '.join(noises)} | mean (6 noisy) | per seed")
    best_published = None
    for loss in losses:
        cells = {n: dict(acc[(loss, n)]) for n in ["none", *noises]}
        if any(len(cells[n]) != 2 for n in noises):
            print(f"{loss}: incomplete ({[len(cells[n]) for n in noises]})")
            continue
        means = {n: sum(v.values()) / len(v) for n, v in cells.items() if v}
        seeds = sorted(cells[noises[0]])
        per_seed = [sum(cells[n][s] for n in noises) / len(noises) for s in seeds]
        overall = sum(per_seed) / len(per_seed)
        print(f"{loss:16s} {means['none']:6.2f} | "
              + " ".join(f"{means[n]:6.2f}" for n in noises)
              + f" | {overall:6.2f} | " + " ".join(f"{v:6.2f}" for v in per_seed))
        if loss in PUBLISHED and (not best_published or overall > best_published[1]):
            best_published = (loss, overall)
    print(f"best published: {best_published[0]} {best_published[1]:.2f}")


def draw1(path: str) -> None:
    """LeNet-5 on the second CPU draw (`--seed 1`, RESULTS section 18's folder, whose
    rows the copy in `path` holds): each loss's per-seed means and its per-seed
    difference from NCE+MAE, then pooled with draw 0 (4 seeds)."""
    names = {"arl[search_ax]": "search AX", "arl[r_prior1]": "R + 1 x prior",
             "arl[r_prior3]": "R + 3 x prior", "nce_mae": "nce_mae"}  # fmt: skip
    draws = {0: os.path.join(HERE, "lenet", "runs.csv"), 1: path}
    extra0 = {os.path.join(RUNS, f): m for f, m in EXTRA["lenet"].items()}
    per_seed = defaultdict(dict)  # loss -> {(draw, seed): mean over noisy settings}
    for draw, file in draws.items():
        files = {file: names} if draw else {file: names, **extra0}
        sums = defaultdict(list)
        for f, m in files.items():
            for r in report.read_rows(f):
                if r["arch"] == "lenet" and r["noise"] != "none" and r["loss"] in m:
                    sums[(m[r["loss"]], r["seed"])].append(100 * r["test_acc"])
        for (loss, seed), v in sums.items():
            if len(v) == 6:
                per_seed[loss][(draw, seed)] = sum(v) / 6
    ref = per_seed["nce_mae"]
    print("\nLeNet-5, difference from NCE+MAE per (draw, seed), and pooled:")
    for loss in ("search AX", "R + 1 x prior", "R + 3 x prior"):
        diffs = {k: v - ref[k] for k, v in per_seed[loss].items() if k in ref}
        d1 = [v for k, v in per_seed[loss].items() if k[0] == 1]
        mean1 = f"{sum(d1) / len(d1):.2f}" if len(d1) == 2 else "incomplete"
        pooled = sum(diffs.values()) / max(len(diffs), 1)
        print(f"{loss:16s} draw-1 mean {mean1}; "
              + " ".join(f"{k}: {v:+.2f}" for k, v in sorted(diffs.items()))
              + f"; pooled {pooled:+.2f} over {len(diffs)} seeds")
    print(f"nce_mae draw-1 mean {sum(v for k, v in ref.items() if k[0]) / 2:.2f}")


def main() -> None:
    archs = ("mlp", "lenet")
    csvs = sys.argv[1:3] or [os.path.join(HERE, a, "runs.csv") for a in archs]
    for arch, path in zip(archs, csvs):
        rows = [{**r, "loss": NAMES.get(r["loss"], r["loss"])}
                for r in report.read_rows(path) if r["arch"] == arch]  # fmt: skip
        for file, names in EXTRA[arch].items():
            rows += [{**r, "loss": names[r["loss"]]}
                     for r in report.read_rows(os.path.join(RUNS, file))
                     if r["arch"] == arch and r["loss"] in names]  # fmt: skip
        table(rows, arch)
    d1 = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "lenet_draw1",
                                                            "runs.csv")
    if os.path.exists(d1):
        draw1(d1)


if __name__ == "__main__":
    main()

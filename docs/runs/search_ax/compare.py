"""Search AX against the published losses and the penalty's fixed weights in
Fashion-MNIST's two CPU tables at 5,000 steps (PLAN.md's rule), per column and
per seed.

    PYTHONPATH=. python docs/runs/search_ax/compare.py [MLP_CSV LENET_CSV]

The search's rows come from this folder's mlp/ and lenet/ runs.csv (or the two CSVs
given, e.g. runs/mt_mlp_ax/runs.csv and runs/mt_lenet_ax/runs.csv while they run);
those folders are copies of the section 4 and section 10 folders, so they hold the
published losses' rows for the same noisy labels and seeds. The fixed weights' rows
come from the folders where they were first run (sections 14 and 18).
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


if __name__ == "__main__":
    main()

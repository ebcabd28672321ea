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


def load(path: str, arch: str, names: dict) -> list[dict]:
    """`path`'s rows of `arch`, relabelled by `names` (others kept as they are),
    plus the fixed weights' rows for `arch` from EXTRA's folders."""
    rows = [{**r, "loss": names.get(r["loss"], r["loss"])}
            for r in report.read_rows(path) if r["arch"] == arch]  # fmt: skip
    for file, labels in EXTRA[arch].items():
        rows += [{**r, "loss": labels[r["loss"]]}
                 for r in report.read_rows(os.path.join(RUNS, file))
                 if r["arch"] == arch and r["loss"] in labels]  # fmt: skip
    return rows


def seed_means(rows: list[dict], noises: list[str]) -> dict:
    """(loss, seed) -> mean test accuracy (%) over `noises`, for the seeds that ran
    every one of them."""
    acc = defaultdict(list)
    for r in rows:
        if r["noise"] in noises:
            acc[(r["loss"], r["seed"])].append(100 * r["test_acc"])
    return {k: sum(v) / len(v) for k, v in acc.items() if len(v) == len(noises)}


def table(rows: list[dict], arch: str) -> None:
    noises = sorted({r["noise"] for r in rows} - {"none"})
    mean = report.aggregate(rows)  # (arch, noise, loss) -> (mean, std, seeds)
    by_seed = seed_means(rows, noises)
    names = {r["loss"] for r in rows}
    losses = [n for n in SHOWN if n in names] + sorted(names & PUBLISHED)
    print(f"\n{arch}: clean | {' | '.join(noises)} | mean (6 noisy) | per seed")
    best_published = None
    for loss in losses:
        per_seed = [v for (name, _), v in sorted(by_seed.items()) if name == loss]
        if len(per_seed) != 2:
            print(f"{loss}: incomplete")
            continue
        overall = sum(per_seed) / len(per_seed)
        print(f"{loss:16s} {100 * mean[(arch, 'none', loss)][0]:6.2f} | "
              + " ".join(f"{100 * mean[(arch, n, loss)][0]:6.2f}" for n in noises)
              + f" | {overall:6.2f} | " + " ".join(f"{v:6.2f}" for v in per_seed))
        if loss in PUBLISHED and (not best_published or overall > best_published[1]):
            best_published = (loss, overall)
    print(f"best published: {best_published[0]} {best_published[1]:.2f}")


def draw1(draw0: list[dict], path: str) -> None:
    """LeNet-5 on the second CPU draw (`--seed 1`, RESULTS section 18's folder, whose
    rows the copy in `path` holds): each loss's per-seed means, then its difference
    from NCE+MAE pooled with draw 0 (`report.paired_differences`; draw 1's seeds
    renumbered 10 and 11 so that the draws do not clash)."""
    names = {"arl[search_ax]": "search AX", "arl[r_prior1]": "R + 1 x prior",
             "arl[r_prior3]": "R + 3 x prior"}  # fmt: skip
    rows1 = [{**r, "loss": names.get(r["loss"], r["loss"]), "seed": 10 + r["seed"]}
             for r in report.read_rows(path) if r["arch"] == "lenet"]  # fmt: skip
    noises = sorted({r["noise"] for r in rows1} - {"none"})
    print("\nLeNet-5, draw 1: per-seed means over the noisy settings")
    for (loss, seed), v in sorted(seed_means(rows1, noises).items()):
        print(f"  {loss:16s} seed {seed}: {v:6.2f}")
    kept = set(names.values()) | {"nce_mae"}
    pooled = [r for r in draw0 + rows1 if r["loss"] in kept]
    stats = report.paired_differences(pooled, "nce_mae").get("lenet", {})
    print("Both draws pooled, difference from NCE+MAE:")
    for loss, st in stats.items():
        print(f"  {loss:16s} {st['mean']:+.2f} ± {st['std']:.2f} over {st['seeds']} "
              f"seeds, ahead on {st['ahead']}")


def main() -> None:
    archs = ("mlp", "lenet")
    csvs = sys.argv[1:3] or [os.path.join(HERE, a, "runs.csv") for a in archs]
    rows = {arch: load(path, arch, NAMES) for arch, path in zip(archs, csvs)}
    for arch in archs:
        table(rows[arch], arch)
    d1 = sys.argv[3] if len(sys.argv) > 3 else os.path.join(HERE, "lenet_draw1",
                                                            "runs.csv")
    if os.path.exists(d1):
        draw1(rows["lenet"], d1)


if __name__ == "__main__":
    main()

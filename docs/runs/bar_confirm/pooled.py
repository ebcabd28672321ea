"""Every Fashion-MNIST table of the bar's protocol pooled, seed by seed: how far each
learned loss is from the best published loss of its table, and how many seeds would
order the two.

    PYTHONPATH=. python docs/runs/bar_confirm/pooled.py

The bar's protocol is 5,000 steps on 10,000 training images, the six noisy settings
(docs/RESULTS.md sections 4, 10, 11, 14, 15, 18, 21). Each table is one device and
one draw (`--seed`); within a table every loss has the same noisy labels and seeds,
so a seed's difference of grid means differs only by the loss
(`report.seed_differences`). A table's reference is its published loss with the
best mean (NCE+MAE with LeNet-5; NCE+RCE with the MLP except on the H200's draw 1,
where NCE+MAE is). Pooled over tables: the mean difference, its spread over seeds, a 95%
t-interval that treats the seeds as independent, the seeds a table would need for
that interval to exclude 0 if the true difference were the mean seen here (normal
approximation), and a one-way ANOVA's p-value for "the tables' means differ" (a
table-to-table effect, e.g. of the draw or the device, that the interval ignores).

A record for docs/RESULTS.md section 23, not part of the package.
"""

import math
import os
import statistics

from scipy import stats

from arl_jax import report

RUNS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# table -> (architecture, folders under docs/runs whose rows it joins)
TABLES = {
    "LeNet-5, CPU, draw 0": ("lenet", ["mt_fashion_lenet_5000_seeds2", "mt_lenet_au",
                                       "screen_prior/lenet_u", "search_ax/lenet"]),
    "LeNet-5, CPU, draw 1": ("lenet", ["search_ax/lenet_draw1"]),
    "LeNet-5, H200, draw 0": ("lenet", ["mt_gpu_prior"]),
    "LeNet-5, H200, draw 1": ("lenet", ["mt_gpu_prior_seed1"]),
    "MLP, CPU, draw 0": ("mlp", ["mt_fashion_mlp_long", "screen_prior/mlp_u",
                                 "screen_prior/mlp_u2", "search_ax/mlp"]),
    "MLP, H200, draw 0": ("mlp", ["mt_gpu_prior"]),
    "MLP, H200, draw 1": ("mlp", ["mt_gpu_prior_seed1"]),
}
# the screens' names for search R plus the penalty (docs/runs/screen_prior)
ALIASES = {"prior1u_search_r": "arl[r_prior1]", "prior3u_search_r": "arl[r_prior3]"}
PUBLISHED = ("nce_mae", "nce_rce", "gce", "sce", "taylor_ce", "poly1", "anl_ce", "mae",
             "cross_entropy")
LEARNED = {"arl[r_prior3]": "R + 3 x prior", "arl[search_ax]": "search AX",
           "arl[r_prior1]": "R + 1 x prior", "arl[search_au]": "search AU",
           "arl": "shipped (G)"}


def table_rows(arch: str, folders: list[str]) -> list[dict]:
    rows = []
    for folder in folders:
        for r in report.read_rows(os.path.join(RUNS, folder, "runs.csv")):
            if r["arch"] == arch:
                rows.append({**r, "loss": ALIASES.get(r["loss"], r["loss"])})
    # a loss run in two folders of one table (a copied folder) counts once
    return list({(r["loss"], r["noise"], r["seed"]): r for r in rows}.values())


def grid_means(rows: list[dict]) -> dict[str, float]:
    """Each loss's mean test accuracy (%) over the noisy settings
    (`report.noisy_means`), for the losses with every noisy setting of `rows` (one
    architecture's)."""
    count = len({r["noise"] for r in rows} - {"none"})
    return {loss: 100 * m for (_, loss), (m, k) in report.noisy_means(rows).items()
            if k == count}  # fmt: skip


def main() -> None:
    pooled: dict[tuple[str, str], list[float]] = {}
    by_table: dict[tuple[str, str], list[list[float]]] = {}
    print("## Each table: learned loss minus the table's best published loss "
          "(points of mean noisy-grid accuracy)\n")
    for name, (arch, folders) in TABLES.items():
        rows = table_rows(arch, folders)
        means = grid_means(rows)
        ref = max((p for p in PUBLISHED if p in means), key=means.get)
        diffs = report.paired_differences(rows, ref)[arch]
        print(f"{name}: best published {ref} {means[ref]:.2f}%")
        for loss, label in LEARNED.items():
            if loss in diffs and loss in means:
                d = diffs[loss]
                print(f"  {label:14s} {means[loss]:6.2f}%  {d['mean']:+.2f} ± "
                      f"{d['std']:.2f} over {d['seeds']} seeds, ahead on {d['ahead']}")
                per_seed = report.seed_differences(rows, loss, ref)
                pooled.setdefault((arch, loss), []).extend(per_seed)
                by_table.setdefault((arch, loss), []).append(per_seed)
    print("\n## Pooled over the tables, seed by seed\n")
    print("| architecture | loss | seeds (tables) | mean | sd | 95% interval | ahead | "
          "seeds to exclude 0 | tables differ (p) |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|")
    for (arch, loss), d in sorted(pooled.items()):
        n, m = len(d), statistics.mean(d)
        sd = statistics.stdev(d)
        half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        need = math.ceil((1.96 * sd / m) ** 2) if m else float("inf")
        groups = by_table[(arch, loss)]
        differ = (f"{stats.f_oneway(*groups).pvalue:.2f}" if len(groups) > 1
                  and all(len(g) > 1 for g in groups) else "-")  # fmt: skip
        print(f"| {arch} | {LEARNED[loss]} | {n} ({len(groups)}) | {m:+.2f} | "
              f"{sd:.2f} | [{m - half:+.2f}, {m + half:+.2f}] | "
              f"{sum(x > 0 for x in d)} | {need} | {differ} |")


if __name__ == "__main__":
    main()

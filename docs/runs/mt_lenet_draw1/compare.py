"""R + 3 x prior and R + 1 x prior against NCE+MAE with LeNet-5 at 5,000 steps on
the CPU, per seed and pooled over both draws of labels (PLAN.md).

    PYTHONPATH=. python docs/runs/mt_lenet_draw1/compare.py [RUNS_CSV]

Draw 0 (`--seed 0`) rows come from the folders of RESULTS sections 10 and 14; draw 1
(`--seed 1`) from this folder's runs.csv, or RUNS_CSV (e.g.
runs/mt_lenet_draw1/runs.csv while it runs). Seeds of draw 1 are numbered 10 and
11 so that the two draws pool without clashing.
"""

import os
import sys

from arl_jax import report

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.dirname(HERE)
DRAW0 = {  # file -> {label in the file: label here}
    "mt_fashion_lenet_5000_seeds2/runs.csv": {"nce_mae": "nce_mae"},
    "mt_lenet_au/runs.csv": {"arl[r_prior3]": "arl[r_prior3]"},
    "screen_prior/lenet_u/runs.csv": {"prior1u_search_r": "arl[r_prior1]"},
}
NAMES = {"arl[r_prior3]": "R + 3 x prior", "arl[r_prior1]": "R + 1 x prior"}


def load(draw1: str) -> tuple[list[dict], list[dict]]:
    d0 = []
    for path, names in DRAW0.items():
        for r in report.read_rows(os.path.join(RUNS, path)):
            if r["arch"] == "lenet" and r["loss"] in names:
                d0.append({**r, "loss": names[r["loss"]]})
    d1 = [{**r, "seed": 10 + r["seed"]} for r in report.read_rows(draw1)
          if r["arch"] == "lenet"]  # fmt: skip
    return d0, d1


def main() -> None:
    draw1 = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "runs.csv")
    if not os.path.exists(draw1):
        sys.exit(f"{draw1} not found: run PLAN.md's command first")
    d0, d1 = load(draw1)
    for title, rows in (("draw 0 (--seed 0)", d0), ("draw 1 (--seed 1)", d1),
                        ("both draws pooled", d0 + d1)):  # fmt: skip
        noisy = sorted({r["noise"] for r in rows} - {"none"})
        print(f"## {title}: {len(noisy)} noisy settings")
        means = {}
        for (_, noise, loss), (m, _, n) in report.aggregate(rows).items():
            if noise != "none":
                means.setdefault(loss, []).append((m, n))
        for loss, cells in sorted(means.items()):
            full = len(cells) == len(noisy)
            mean = 100 * sum(m for m, _ in cells) / len(cells)
            print(f"  {NAMES.get(loss, loss):15s} mean {mean:6.2f}%"
                  f"{'' if full else f'  (only {len(cells)} settings)'}"
                  f"  seeds a cell: {min(n for _, n in cells)}")  # fmt: skip
        stats = report.paired_differences(rows, "nce_mae").get("lenet", {})
        for loss, st in stats.items():
            print(f"  {NAMES.get(loss, loss)} - NCE+MAE: {st['mean']:+.2f} "
                  f"± {st['std']:.2f} over {st['seeds']} seeds, ahead on "
                  f"{st['ahead']}")  # fmt: skip
        print()


if __name__ == "__main__":
    main()

"""Criterion 1 on the bar_confirm MLP seeds: R + 3 x prior minus cross-entropy at
symmetric 0.6, seed by seed (the same noisy labels and initial weights).

    python docs/runs/bar_confirm/crit1.py

Reads cross-entropy's rows from `cpu_mlp_others/seedN` and R + 3 x prior's from
`seedN` (N = 2, 3), both `python -m experiments.meta_test --dataset fashion_mnist
--noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4 --archs mlp ... --seeds 16
--steps 5000 --train-size 10000 --seed N`. meta_test seeds a setting's noisy labels
and initial weights by its place in the `--noise` list, so rows pair only between
runs with the same list: this is checked (docs/RESULTS.md section 23).
"""

import json
import pathlib
import statistics

from arl_jax import report
from experiments.meta_test import RECIPE  # what must match for rows to pair

HERE = pathlib.Path(__file__).parent
NOISE = "symmetric:0.6"


def accs(folder: pathlib.Path, loss: str) -> dict[int, float]:
    return {r["seed"]: 100 * r["test_acc"]
            for r in report.read_rows(str(folder / "runs.csv"))
            if r["noise"] == NOISE and r["loss"] == loss}


def recipe(folder: pathlib.Path) -> dict:
    config = json.loads((folder / "config.json").read_text())
    return {k: config[k] for k in RECIPE}


def main() -> None:
    every = []
    for n in (2, 3):
        ce_dir, r3_dir = HERE / "cpu_mlp_others" / f"seed{n}", HERE / f"seed{n}"
        assert recipe(ce_dir) == recipe(r3_dir), (ce_dir, r3_dir)
        ce = accs(ce_dir, "cross_entropy")
        r3 = accs(r3_dir, "arl[r_prior3]")
        assert sorted(ce) == sorted(r3) and len(ce) == 16, (n, len(ce), len(r3))
        diff = [r3[s] - ce[s] for s in ce]
        every += diff
        print(f"--seed {n}: R + 3 x prior {statistics.mean(r3.values()):.2f}%, "
              f"cross-entropy {statistics.mean(ce.values()):.2f}% "
              f"(sd {statistics.stdev(ce.values()):.2f}); difference "
              f"{statistics.mean(diff):+.2f}, smallest {min(diff):+.2f}")
    print(f"both draws, {len(every)} seeds: difference {statistics.mean(every):+.2f}, "
          f"smallest {min(every):+.2f}, at least 15 on {sum(d >= 15 for d in every)}")


if __name__ == "__main__":
    main()

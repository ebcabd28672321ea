"""Criterion 1 on the bar_confirm MLP seeds: R + 3 x prior minus cross-entropy at
symmetric 0.6, seed by seed (the same noisy labels and initial weights).

    python docs/runs/bar_confirm/crit1.py

Reads cross-entropy's rows from `cpu_mlp_ce/seedN` and R + 3 x prior's from
`seedN` (N = 2, 3), both `python -m experiments.meta_test ... --seeds 16 --steps 5000
--train-size 10000 --seed N` (docs/RESULTS.md section 23).
"""

import csv
import pathlib
import statistics

HERE = pathlib.Path(__file__).parent
NOISE = "symmetric:0.6"


def accs(path: pathlib.Path, loss: str) -> dict[str, float]:
    with open(path) as fh:
        return {r["seed"]: 100 * float(r["test_acc"]) for r in csv.DictReader(fh)
                if r["noise"] == NOISE and r["loss"] == loss}


def main() -> None:
    every = []
    for n in (2, 3):
        ce = accs(HERE / "cpu_mlp_ce" / f"seed{n}" / "runs.csv", "cross_entropy")
        r3 = accs(HERE / f"seed{n}" / "runs.csv", "arl[r_prior3]")
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

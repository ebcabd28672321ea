"""Per-setting means of a bar_confirm half, pooled over its draws' folders.

    python docs/runs/bar_confirm/table.py docs/runs/bar_confirm/cpu_lenet/seed2 \
        docs/runs/bar_confirm/cpu_lenet/seed3

Prints, per loss, the mean test accuracy (%) of each setting over every seed of the
folders (clean first), each folder's mean over the six noisy settings, the mean of
the six settings' means, and the seeds per setting (docs/RESULTS.md section 23).
"""

import collections
import statistics
import sys

from arl_jax import report

SETTINGS = ["none", "asymmetric:0.2", "asymmetric:0.4", "symmetric:0.2",
            "symmetric:0.4", "symmetric:0.6", "symmetric:0.8"]


def main(folders: list[str]) -> None:
    by_cell, by_draw = collections.defaultdict(list), collections.defaultdict(list)
    for folder in folders:
        for r in report.read_rows(f"{folder}/runs.csv"):
            acc = 100 * r["test_acc"]
            by_cell[(r["loss"], r["noise"])].append(acc)
            if r["noise"] != "none":
                by_draw[(r["loss"], folder)].append(acc)
    print("loss | " + " | ".join(SETTINGS) + " | noisy mean per folder | noisy mean")
    for loss in sorted({loss for loss, _ in by_cell}):
        cells = [statistics.mean(by_cell[(loss, s)]) for s in SETTINGS]
        draws = [statistics.mean(by_draw[(loss, f)]) for f in folders
                 if by_draw[(loss, f)]]
        seeds = sorted({len(by_cell[(loss, s)]) for s in SETTINGS})
        print(f"{loss} | " + " | ".join(f"{c:.2f}" for c in cells)
              + " | " + " ".join(f"{d:.2f}" for d in draws)
              + f" | {statistics.mean(cells[1:]):.2f} (seeds a setting: {seeds})")


if __name__ == "__main__":
    main(sys.argv[1:])

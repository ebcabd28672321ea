"""PLAN.md's second diagnostic: each loss's share of its clean test accuracy kept
at symmetric 0.6 and 0.8 on fontdigits_mild, per architecture.

    PYTHONPATH=. python docs/runs/mt_fontdigits_mild/shares.py [MLP_CSV] [LENET_CSV]

(defaults: this folder's ``mlp/runs.csv`` and ``lenet/runs.csv``). The probe's
(`../fontdigits_warps/NOTE.md`, half warps, `--seed 1`) and Fashion-MNIST's shares
for NCE+MAE are in that NOTE. A record for docs/RESULTS.md, not part of the package.
"""

import os
import sys

from arl_jax import report

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    if len(sys.argv) not in (1, 3):
        sys.exit("usage: shares.py [MLP_CSV LENET_CSV]")
    default = [os.path.join(HERE, a, "runs.csv") for a in ("mlp", "lenet")]
    paths = sys.argv[1:] or default
    print("| arch | loss | clean | symmetric 0.6 (share) | symmetric 0.8 (share) |")
    print("|---|---|---:|---:|---:|")
    for path in paths:
        agg = report.aggregate(report.read_rows(path))
        for arch, loss in sorted({(a, k) for a, _, k in agg}):
            clean = agg[(arch, "none", loss)][0]
            cells = []
            for rate in (0.6, 0.8):  # "-": not run yet (a run still going)
                acc = agg.get((arch, f"symmetric:{rate}", loss), (None,))[0]
                share = "-" if acc is None else f"{100 * acc:.2f} ({acc / clean:.2f})"
                cells.append(share)
            print(f"| {arch} | {loss} | {100 * clean:.2f} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()

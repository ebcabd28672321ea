#!/usr/bin/env bash
# The evaluation grid of PROTOCOL.md: LOSSES on each real dataset under T1 and T2.
# Usage: OUT=runs/gen bash docs/runs/generalisation/grid.sh [meta_test flags...]
# e.g. the published losses: ... grid.sh --losses all
#      a candidate:          ... grid.sh --losses none --loss-file runs/gen_search/best_loss.json
set -euo pipefail
OUT=${OUT:-runs/gen}
PY=${PY:-.venv/bin/python}
source "$(dirname "$0")/recipes.sh"  # T1, T2, meta_test
for ds in digits mnist fashion_mnist; do
  for t in T1 T2; do
    meta_test --dataset $ds --archs mlp --train-size 10000 ${!t} --out "$OUT/${ds}_$t" "$@"
  done
done

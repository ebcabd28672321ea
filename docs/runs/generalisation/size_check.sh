#!/usr/bin/env bash
# PROTOCOL.md's "Second search": its candidate added to the grid's and the addendum's
# cells (copied from this folder, so the other losses' rows are reused and pair), and
# the new cell, MNIST with 1,000 labels under T2, with every loss of the addendum.
# Usage: CAND=runs/size_search/best_loss.json OUT=runs/size_check bash .../size_check.sh
set -euo pipefail
HERE=$(dirname "$0")
OUT=${OUT:-runs/size_check}
CAND=${CAND:-runs/size_search/best_loss.json}
PY=${PY:-.venv/bin/python}
source "$HERE/recipes.sh"  # T1, T2, ADDENDUM_LOSSES, meta_test
mkdir -p "$OUT"
for cell in "$HERE"/grid/* "$HERE"/arch_size/*/; do
  [ -d "$OUT/$(basename "$cell")" ] || cp -r "$cell" "$OUT/$(basename "$cell")"
done
# The new cell first: every loss of the addendum, the shipped loss and the candidate.
meta_test --dataset mnist --archs mlp --train-size 1000 $T2 --losses $ADDENDUM_LOSSES \
  --loss-file "$CAND" --out "$OUT/mnist_T2_n1000"
for ds in digits mnist fashion_mnist; do
  for t in T1 T2; do
    meta_test --dataset $ds --archs mlp --train-size 10000 ${!t} --losses none \
      --loss-file "$CAND" --out "$OUT/${ds}_$t"
  done
done
meta_test --dataset mnist --archs mlp --train-size 1000 $T1 --losses none --loss-file "$CAND" \
  --out "$OUT/mnist_T1_n1000"
meta_test --dataset digits --archs cnn --train-size 10000 $T1 --losses none \
  --loss-file "$CAND" --out "$OUT/digits_cnn_T1"
meta_test --dataset digits --archs cnn --train-size 10000 $T2 --losses none \
  --loss-file "$CAND" --out "$OUT/digits_cnn_T2"

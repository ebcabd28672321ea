#!/usr/bin/env bash
# PROTOCOL.md's addendum: the shipped loss and the main published losses on a
# smaller training set and on CNNs. Usage: OUT=runs/gen_arch bash .../arch_size.sh
set -euo pipefail
OUT=${OUT:-runs/gen_arch}
PY=${PY:-.venv/bin/python}
source "$(dirname "$0")/recipes.sh"  # T1, T2, ADDENDUM_LOSSES, meta_test
run() { meta_test --losses $ADDENDUM_LOSSES "$@"; }
run --dataset mnist --archs mlp --train-size 1000 $T1 --out "$OUT/mnist_T1_n1000"
run --dataset digits --archs cnn --train-size 10000 $T1 --out "$OUT/digits_cnn_T1"
run --dataset digits --archs cnn --train-size 10000 $T2 --out "$OUT/digits_cnn_T2"
run --dataset mnist --archs lenet --train-size 10000 $T2 --out "$OUT/mnist_lenet_T2"

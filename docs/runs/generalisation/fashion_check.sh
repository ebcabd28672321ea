#!/usr/bin/env bash
# Rule 3's companion on the earlier Fashion-MNIST protocol (5,000 Adam steps with
# cosine decay, 10,000 noisy labels, MLP): the candidate, the shipped loss and
# cross-entropy on the same labels and seeds.
set -euo pipefail
PY=${PY:-.venv/bin/python}
$PY -m experiments.meta_test --dataset fashion_mnist \
  --noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4 --archs mlp \
  --losses cross_entropy arl --loss-file "${SEARCH:-runs/gen_search}/best_loss.json" \
  --seeds 4 --steps 5000 --train-size 10000 --seed 4 --out "${OUT:-runs/gen_fashion}"

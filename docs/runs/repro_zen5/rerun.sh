#!/usr/bin/env bash
# The reruns behind compare.log, on a 2-core AMD EPYC, Zen 5, one CPU device. "before"
# runs come from a checkout of commit 256fc8b (evaluation in passes of 2,048), the
# others from 7ac00bf on (passes of the training batch). Then: python compare.py.
set -euo pipefail
PY=${PY:-.venv/bin/python}
source docs/runs/generalisation/recipes.sh  # T2, meta_test
export XLA_FLAGS=--xla_force_host_platform_device_count=1
meta_test --dataset digits --archs mlp --train-size 10000 $T2 --losses cross_entropy arl \
  --loss-file docs/runs/generalisation/search/best_loss.json --out /tmp/mt_mlp_head
meta_test --dataset mnist --archs mlp --train-size 1000 $T2 --losses cross_entropy arl \
  --out /tmp/mt_head
meta_test --dataset digits --archs cnn --train-size 10000 $T2 --losses cross_entropy \
  --out /tmp/mt_cnn_head   # and the same at 256fc8b: /tmp/mt_cnn_pre
$PY -m experiments.meta_search --seed 2 --generations 1 --out /tmp/demo_head  # and at 256fc8b

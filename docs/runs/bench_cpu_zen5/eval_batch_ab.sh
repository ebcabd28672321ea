#!/usr/bin/env bash
# Evaluation in passes of 2,048 against inner.eval_batch's pick (the training batch on
# a CPU), fresh processes alternated, one CPU device; same accuracies to the bit?
# Output: eval_batch_ab.log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export XLA_FLAGS=--xla_force_host_platform_device_count=1 PYTHONPATH=.
PY=${PY:-.venv/bin/python}
for c in cnn mlp; do for i in 1 2; do for e in 2048 0; do
  $PY "$HERE/eval_batch_ab.py" $c $e
done; done; done

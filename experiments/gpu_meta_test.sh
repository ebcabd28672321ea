#!/usr/bin/env bash
# The issue-6 meta-test grid on a lent GPU machine, 3 seeds (docs/RESULTS.md):
#
#     OUT=runs/mt_gpu bash experiments/gpu_meta_test.sh
#
# The machine's own python3 (CUDA jax); mnist1d travels as a wheel in .whl/,
# Fashion-MNIST's gz files in .fmnist/ ($ARL_DATA_DIR). Rows are written as they
# finish, so a run stopped by MT_TIMEOUT keeps what it did.
set -uo pipefail
OUT=${OUT:-runs/mt_gpu}
source experiments/gpu_env.sh
start=$(date +%s)
timeout "${MT_TIMEOUT:-420}" python3 -m experiments.meta_test --dataset fashion_mnist \
  --noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4 --archs "${MT_ARCHS:-lenet,mlp}" \
  --losses all --seeds 3 --steps 2000 --train-size 10000 --out "$OUT/mt" \
  ${MT_ARGS:-} 2>&1 | tr '\r' '\n' | grep -v '^ *$' > "$OUT/mt.log"
echo "rc ${PIPESTATUS[0]}; wall $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"
tail -5 "$OUT/mt.log"; cat "$OUT/mt/results.md" 2>/dev/null | head -60

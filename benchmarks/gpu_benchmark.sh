#!/usr/bin/env bash
# The GPU run of docs/PERFORMANCE.md as made on a lent GPU machine:
#
#     OUT=runs/bench_gpu bash benchmarks/gpu_benchmark.sh
#
# It uses the machine's own python3 with its CUDA builds of jax and torch; mnist1d,
# missing there, can travel as a wheel in .whl/ (installed to /tmp/site). Writes
# gpu.txt, {mlp,cnn}/results.{json,md} and {mlp,cnn}.log under $OUT.
set -uo pipefail
OUT=${OUT:-runs/bench_gpu}
source experiments/gpu_env.sh
python3 -c 'import jax, flax, optax, torch; print("jax", jax.__version__, jax.devices(),
"flax", flax.__version__, "optax", optax.__version__, "torch", torch.__version__,
torch.cuda.is_available())' | tee -a "$OUT/gpu.txt"
timeout "${MLP_TIMEOUT:-240}" python3 -m benchmarks.benchmark --cases mlp \
  --pops "${MLP_POPS:-1,8,64,256,1024,4096}" --out "$OUT/mlp" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/mlp.log"
timeout "${CNN_TIMEOUT:-150}" python3 -m benchmarks.benchmark --cases cnn \
  --cnn-pops "${CNN_POPS:-1,8,64,256}" --out "$OUT/cnn" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/cnn.log"

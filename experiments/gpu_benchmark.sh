#!/usr/bin/env bash
# The GPU run of docs/PERFORMANCE.md (issue 7), as made on a lent GPU machine:
#
#     OUT=runs/bench_gpu bash experiments/gpu_benchmark.sh
#
# It uses the machine's own python3 with its CUDA builds of jax and torch; mnist1d,
# missing there, can travel as a wheel in .whl/ (installed to /tmp/site). Writes
# gpu.txt, {mlp,cnn}/results.{json,md} and {mlp,cnn}.log under $OUT.
set -uo pipefail
OUT=${OUT:-runs/bench_gpu}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm \
  --format=csv | tee "$OUT/gpu.txt"
python3 -c 'import jax, flax, optax, torch; print("jax", jax.__version__, jax.devices(),
"flax", flax.__version__, "optax", optax.__version__, "torch", torch.__version__,
torch.cuda.is_available())' | tee -a "$OUT/gpu.txt"
timeout "${MLP_TIMEOUT:-240}" python3 -m experiments.benchmark --cases mlp \
  --pops "${MLP_POPS:-1,8,64,256,1024,4096}" --out "$OUT/mlp" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/mlp.log"
timeout "${CNN_TIMEOUT:-150}" python3 -m experiments.benchmark --cases cnn \
  --cnn-pops "${CNN_POPS:-1,8,64,256}" --out "$OUT/cnn" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/cnn.log"

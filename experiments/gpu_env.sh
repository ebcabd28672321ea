# Sourced by the experiments/gpu_*.sh and benchmarks/gpu_benchmark.sh scripts: the set-up they share on a lent GPU
# machine. Makes $OUT, installs the wheels carried in .whl/ (packages the machine's
# python3 lacks) to /tmp/site, points $ARL_DATA_DIR at .fmnist/ (Fashion-MNIST's gz
# files, when carried) and records the GPU in $OUT/gpu.txt.
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 ARL_DATA_DIR=${ARL_DATA_DIR:-.fmnist}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  | tee "$OUT/gpu.txt"

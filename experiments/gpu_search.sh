#!/usr/bin/env bash
# The README's main job (`make demo`: the meta-search, then the held-out check) on a
# lent GPU machine, timed (docs/PERFORMANCE.md):
#
#     OUT=runs/demo_gpu bash experiments/gpu_search.sh
#
# It uses the machine's own python3 (CUDA builds of jax); evosax, dotmap and mnist1d,
# missing there, travel as wheels in .whl/, and Fashion-MNIST's four gz files (for
# the held-out check) in .fmnist/ ($ARL_DATA_DIR). The run folder is written to
# /tmp/demo_gpu and its small files are copied to $OUT.
set -uo pipefail
OUT=${OUT:-runs/demo_gpu}
source experiments/gpu_env.sh
# A warm machine keeps /tmp between calls: a search left there would be resumed, and
# its best_loss.json copied as this one's.
rm -rf /tmp/demo_gpu
start=$(date +%s)
timeout "${SEARCH_TIMEOUT:-330}" python3 -m experiments.meta_search --seed 2 \
  --out /tmp/demo_gpu ${SEARCH_ARGS:-} 2>&1 | tr '\r' '\n' | grep -v '^ *$' \
  > "$OUT/search.log"
echo "rc ${PIPESTATUS[0]}; wall $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"
tail -25 "$OUT/search.log"
for f in config.json best_loss.json selection.json heldout.json metrics.jsonl; do
  [ -f "/tmp/demo_gpu/$f" ] && cp "/tmp/demo_gpu/$f" "$OUT/"
done

#!/usr/bin/env bash
# PLAN.md's table on a lent GPU, in one call of the device tool (Fashion-MNIST's gz
# files carried in .fmnist/):
#
#     OUT=runs/bar_confirm bash docs/runs/bar_confirm/gpu.sh
#
# First the rule's core, draw by draw (--seed 2, then 3; both architectures, 16 seeds):
# R + 3 x prior, NCE+MAE and NCE+RCE. Then, in what is left of TOTAL seconds and for
# information only, search AX and R + 1 x prior in the same folders, and the other
# published losses on --seed 2. Rows are written as they finish. The folders
# docs/runs/bar_confirm/seedN (finished cells from the CPU or an earlier call) are
# copied in first, so their cells are skipped. Everything comes back as $OUT/all.tgz.
# STEPS, SEEDS and TRAIN override the protocol for a smoke run on the CPU.
set -uo pipefail
OUT=${OUT:-runs/bar_confirm}
TOTAL=${TOTAL:-540}
source experiments/gpu_env.sh
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$(date +%s)
here=docs/runs/bar_confirm
grid=(--dataset fashion_mnist --noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4
      --archs lenet,mlp --seeds "${SEEDS:-16}" --steps "${STEPS:-5000}"
      --train-size "${TRAIN:-10000}")
mkdir -p "$OUT/mt"
for d in 2 3; do
  if [ -d "$here/seed$d" ] && [ ! -d "$OUT/mt/seed$d" ]; then
    cp -r "$here/seed$d" "$OUT/mt/seed$d"
  fi
done
run() {  # run LOG DRAW [meta_test flags]: in what is left of TOTAL
  local log=$1 draw=$2; shift 2
  local left=$(( TOTAL - ($(date +%s) - start) ))
  if [ "$left" -lt 30 ]; then echo "$log: skipped, no time left" | tee -a "$OUT/gpu.txt"; return; fi
  timeout "$left" python3 -m experiments.meta_test "${grid[@]}" --seed "$draw" \
    --out "$OUT/mt/seed$draw" "$@" 2>&1 | tr '\r' '\n' | grep -v '^ *$' >> "$OUT/$log"
  echo "$log seed $draw: rc ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s since start" \
    | tee -a "$OUT/gpu.txt"
}
for d in 2 3; do
  run core.log "$d" --losses nce_mae nce_rce --loss-file docs/runs/r_prior3/best_loss.json
done
for d in 2 3; do
  run info.log "$d" --losses none --loss-file docs/runs/search_ax/best_loss.json \
    docs/runs/r_prior1/best_loss.json
done
run extra.log 2 --losses gce sce taylor_ce poly1 anl_ce mae cross_entropy
python3 "$here/confirm.py" "$OUT/mt/seed2" "$OUT/mt/seed3" | tee "$OUT/confirm.txt"
tar czf "$OUT/all.tgz" -C "$OUT" mt $(cd "$OUT" && ls ./*.log)
rm -rf "${OUT:?}/mt"

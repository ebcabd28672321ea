#!/usr/bin/env bash
# The class-prior screen of docs/RESULTS.md section 14 in the bar's protocol on a lent
# GPU (5,000 steps, 10,000 training images, 3 seeds, LeNet-5 then the MLP), in one
# call of the device tool (Fashion-MNIST's gz files carried in .fmnist/):
#
#     OUT=runs/gpu_prior bash docs/runs/screen_prior/gpu.sh
#
# First the penalised losses (search R plus weight 3, the weight the meta-train pool
# picks, and weight 1; search AU; NCE+MAE and NCE+RCE plus weight 1) with the shipped
# loss and the hand-designed losses they must beat; then, in what is left of TOTAL
# seconds, the other hand-designed losses into the same folder. Rows are written as
# they finish; everything comes back as $OUT/all.tgz.
set -uo pipefail
OUT=${OUT:-runs/gpu_prior}
TOTAL=${TOTAL:-520}
source experiments/gpu_env.sh
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$(date +%s)
grid=(--dataset fashion_mnist --noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4
      --archs lenet,mlp --seeds 3 --steps 5000 --train-size 10000 --out "$OUT/mt")
run() {  # run SECONDS LOG SCREEN_SPECS [more flags]
  local secs=$1 log=$2; shift 2
  timeout "$secs" python3 docs/runs/screen_prior/screen.py "$@" "${grid[@]}" 2>&1 \
    | tr '\r' '\n' | grep -v '^ *$' > "$OUT/$log"
  echo "$log: rc ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s since start" \
    | tee -a "$OUT/gpu.txt"
}
run "$TOTAL" core.log \
  arl,cross_entropy,nce_mae,nce_rce,nce_mae:1:u,nce_rce:1:u \
  --loss-file docs/runs/r_prior3/best_loss.json docs/runs/r_prior1/best_loss.json \
  docs/runs/search_au/best_loss.json
left=$(( TOTAL - ($(date +%s) - start) ))
if [ "$left" -gt 60 ]; then
  run "$left" extra.log sce,gce,anl_ce,poly1,taylor_ce,mae
fi
tail -n 3 "$OUT"/*.log
tar czf "$OUT/all.tgz" -C "$OUT" mt core.log $( [ -f "$OUT/extra.log" ] && echo extra.log )
rm -rf "${OUT:?}/mt"

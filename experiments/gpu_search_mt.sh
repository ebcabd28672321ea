#!/usr/bin/env bash
# A search at a scale the 2-core CPU cannot afford, then its loss in the 5,000-step
# meta-test (LeNet-5 first, then the MLP, 3 seeds) against the shipped loss and the
# best hand-designed losses, in one call on a lent GPU machine (docs/RESULTS.md):
#
#     OUT=runs/gpu_ae bash experiments/gpu_search_mt.sh
#
# = python -m experiments.meta_search $SEARCH_ARGS --seed 2 --out /tmp/demo_gpu
#   python -m experiments.meta_test --dataset fashion_mnist \
#       --noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4 --archs lenet,mlp \
#       --losses $MT_LOSSES --loss-file runs/$NAME/best_loss.json $MT_LOSS_FILES \
#       --seeds 3 --steps 5000 --train-size 10000 --out $OUT/m/mt
#
# Set-up as experiments/gpu_env.sh says (.whl/ and .fmnist/ carried). The meta-test
# gets what is left of TOTAL seconds after the search; its rows are written as they
# finish. Everything comes back as one archive, $OUT/all.tgz (the device tool returns
# at most 8 files).
set -uo pipefail
OUT0=${OUT:-runs/gpu_ae}
NAME=${NAME:-search_ae}
TOTAL=${TOTAL:-560}
start=$(date +%s)
mkdir -p "$OUT0"
OUT=$OUT0/s SEARCH_TIMEOUT=${SEARCH_TIMEOUT:-330} SEARCH_ARGS="${SEARCH_ARGS:---pop 64 \
--generations 30 --tasks 12 --select-tasks 12 --fitness rank --holdout=}" \
  bash experiments/gpu_search.sh
# MT_LOSS_FILES: more best_loss.json files for the meta-test (a second --loss-file
# in MT_EXTRA would replace this search's).
files=(${MT_LOSS_FILES:-})
if [ -f /tmp/demo_gpu/best_loss.json ]; then
  mkdir -p "runs/$NAME" && cp /tmp/demo_gpu/best_loss.json "runs/$NAME/"
  files=("runs/$NAME/best_loss.json" "${files[@]}")
fi
loss_file=()
[ ${#files[@]} -gt 0 ] && loss_file=(--loss-file "${files[@]}")
left=$(( TOTAL - ($(date +%s) - start) ))
echo "meta-test gets ${left} s"
OUT=$OUT0/m MT_TIMEOUT=$left MT_ARCHS=${MT_ARCHS:-lenet,mlp} MT_ARGS="--steps \
${MT_STEPS:-5000} --losses ${MT_LOSSES:-arl cross_entropy nce_mae sce nce_rce} \
${loss_file[*]} ${MT_EXTRA:-}" bash experiments/gpu_meta_test.sh
tar czf /tmp/all.tgz -C "$OUT0" s m && rm -rf "${OUT0:?}/s" "${OUT0:?}/m" \
  && mv /tmp/all.tgz "$OUT0/"
echo "total wall $(( $(date +%s) - start )) s"

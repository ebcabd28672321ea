#!/usr/bin/env bash
# The grid's passes in the order PROTOCOL.md gives: the main published losses and the
# shipped one, then (once the search has written it) the candidate, then the rest.
set -euo pipefail
G=docs/runs/generalisation/grid.sh
OUT=${OUT:-runs/gen}
OUT=$OUT bash $G --losses cross_entropy gce sce taylor_ce poly1 nce_rce nce_mae anl_ce arl
while [ ! -f "${SEARCH:-runs/gen_search}/best_loss.json" ]; do sleep 30; done
OUT=$OUT bash $G --losses none --loss-file "${SEARCH:-runs/gen_search}/best_loss.json"
OUT=$OUT bash $G --losses mae rce nce nnce nfl label_smoothing bootstrap_soft bootstrap_hard

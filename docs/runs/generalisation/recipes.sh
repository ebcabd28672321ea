# The evaluation recipes of PROTOCOL.md, sourced by grid.sh, arch_size.sh and
# size_check.sh (which set PY first).
T1="--optimizer adam --lr 1e-3 --schedule constant --batch-size 128 --steps 4000 --standardize"
T2="--optimizer sgd --lr 0.05 --schedule cosine --batch-size 64 --steps 2000"
NOISE="symmetric:0.4,0.6,0.8 pairflip:0.4"
# The addendum's losses: the main published ones and the shipped loss.
ADDENDUM_LOSSES="cross_entropy gce sce taylor_ce poly1 nce_rce nce_mae anl_ce arl"
# One cell: its noise, 2 seeds, --seed 0, and the given flags.
meta_test() { $PY -m experiments.meta_test --noise $NOISE --seeds 2 --seed 0 "$@"; }

# The evaluation recipes of PROTOCOL.md, sourced by grid.sh and arch_size.sh.
T1="--optimizer adam --lr 1e-3 --schedule constant --batch-size 128 --steps 4000 --standardize"
T2="--optimizer sgd --lr 0.05 --schedule cosine --batch-size 64 --steps 2000"
NOISE="symmetric:0.4,0.6,0.8 pairflip:0.4"

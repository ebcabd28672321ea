"""Screen NCE + beta (1 - p_y) on rescaled logits: LogitClip and a temperature.

    python docs/runs/screen_logits/screen.py TAU:BETA[:TEMP],... META_TEST_FLAGS...

Each ``TAU:BETA[:TEMP]`` is one loss, ``taylor_nce`` with ``coeffs = [1, 1, -BETA,
0, 0, 0]`` applied to ``z = logits / TEMP`` (TEMP 1 if left out) scaled down to
L2 norm ``TAU`` where it is longer (Wei et al., "Mitigating Memorization of Noisy
Labels by Clipping the Model Prediction", ICML 2023; ``TAU = 0``: no clipping). The
losses are registered under names like ``clip4_b3`` (``clip0_b1_t0.5``) and handed to
`experiments.meta_test` with the other flags, e.g. section 4's MLP protocol:

    python docs/runs/screen_logits/screen.py 2.5:1,4:1,6:1,2.5:3,4:3,6:3 \
        --dataset fashion_mnist --archs mlp --seeds 2 --steps 5000 \
        --train-size 10000 --out runs/screen_clip_mlp5000

A record for docs/RESULTS.md section 12, not part of the package.
"""

import functools
import sys

import jax.numpy as jnp

from arl_jax import losses
from experiments import meta_test


def rescaled_nce_mae(logits, labels, tau=4.0, beta=1.0, temp=1.0):
    z = logits / temp
    if tau > 0:
        norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
        z = z * jnp.minimum(1.0, tau / (norm + 1e-7))
    return losses.taylor_nce_loss(jnp.array([1.0, 1.0, -beta, 0, 0, 0]), z, labels)


def main(argv):
    names = []
    for spec in argv[0].split(","):
        tau, beta, temp = ([float(v) for v in spec.split(":")] + [1.0])[:3]
        name = f"clip{tau:g}_b{beta:g}" + (f"_t{temp:g}" if temp != 1.0 else "")
        losses.LOSSES[name] = functools.partial(
            rescaled_nce_mae, tau=tau, beta=beta, temp=temp)
        names.append(name)
    meta_test.main(argv[1:] + ["--losses", *names])


if __name__ == "__main__":
    main(sys.argv[1:])

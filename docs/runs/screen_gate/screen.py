"""Screen per-example gates and hard bootstrapping around NCE + beta (1 - p_y).

    python docs/runs/screen_gate/screen.py KIND:BETA:X,... SCORE_POOL_FLAGS...

Each ``KIND:BETA:X`` is one loss built on ``taylor_nce`` with ``coeffs = [1, 1,
-BETA, 0, 0, 0]`` (NCE + BETA (1 - p_y), ``L`` below), registered in
`arl_jax.losses.LOSSES` and scored by `experiments.score_pool` by name, on the same
tasks, noisy labels and seeds as the other losses given in the flags:

- ``gate:BETA:GAMMA`` (``gate_b{BETA}_g{GAMMA}``): ``w L(p, y)`` with
  ``w = (1 - max_{k != y} p_k) ** GAMMA``, its gradient stopped: an example the
  network confidently gives to another class (under heavy noise, mostly a wrong
  label) stops pulling the network towards its label.
- ``boot:BETA:B`` (``boot_b{BETA}_s{B}``): hard bootstrapping (Reed et al., 2015),
  ``(1 - B) L(p, y) + B L(p, argmax p)``, the argmax taken without gradient.

For example, the MLP pool of docs/RESULTS.md section 12:

    python docs/runs/screen_gate/screen.py gate:1:1,gate:5:1 --steps 1000 \
        --draws 3 --losses nce_mae nce_rce arl --out runs/pool_gate_mlp

A record for docs/RESULTS.md section 12, not part of the package.
"""

import functools
import sys

import jax
import jax.numpy as jnp

from arl_jax import losses
from experiments import score_pool


def nce_mae(logits, labels, beta):
    return losses.taylor_nce_loss(jnp.array([1.0, 1.0, -beta, 0, 0, 0]), logits, labels)


def gated(logits, labels, beta=1.0, gamma=1.0):
    p = jax.nn.softmax(logits, axis=-1)
    other = jnp.max(jnp.where(jax.nn.one_hot(labels, p.shape[-1]) > 0, 0.0, p), axis=-1)
    w = jax.lax.stop_gradient((1.0 - other) ** gamma)
    return w * nce_mae(logits, labels, beta)


def bootstrapped(logits, labels, beta=1.0, b=0.2):
    pred = jax.lax.stop_gradient(jnp.argmax(logits, axis=-1))
    return (1.0 - b) * nce_mae(logits, labels, beta) + b * nce_mae(logits, pred, beta)


KINDS = {"gate": (gated, "gamma", "g"), "boot": (bootstrapped, "b", "s")}


def register(specs: str) -> list[str]:
    names = []
    for spec in specs.split(","):
        kind, beta, x = spec.split(":")
        fn, arg, tag = KINDS[kind]
        name = f"{kind}_b{float(beta):g}_{tag}{float(x):g}"
        losses.LOSSES[name] = functools.partial(fn, beta=float(beta), **{arg: float(x)})
        names.append(name)
    return names


def main(argv):
    names = register(argv[0])
    rest = list(argv[1:])
    if "--losses" in rest:  # the flag's list, then the screened losses
        i = rest.index("--losses") + 1
        while i < len(rest) and not rest[i].startswith("--"):
            i += 1
        rest[i:i] = names
    else:
        rest += ["--losses", *names]
    score_pool.main(rest)


if __name__ == "__main__":
    main(sys.argv[1:])

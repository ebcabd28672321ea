"""Screen a class-prior penalty added to a loss: against one class collapsing.

    python docs/runs/screen_prior/screen.py BASE:LAMBDA[:u],... META_TEST_FLAGS...

Each ``BASE:LAMBDA`` is one loss (a bare loss name is run as it is, beside them),
``BASE + LAMBDA KL(pi || m)``, where ``BASE`` is a loss of `arl_jax.losses.LOSSES`
by name (``nce_mae``, ``arl``) or a ``best_loss.json`` (its family and
coefficients), ``pi`` is the share of each class among the batch's labels (with
``:u``, the uniform 1/C: balanced classes assumed) and ``m`` the batch's mean
softmax prediction (Tanaka et al., "Joint Optimization Framework for Learning with
Noisy Labels", CVPR 2018; the uniform one is
`arl_jax.losses.class_prior_penalty`). Under symmetric noise a network predicts its
classes in about the shares it is given them and the penalty stays near 0; when a
class collapses into another for the whole run (Fashion-MNIST's pullovers into
"shirt" under asymmetric 0.4, docs/RESULTS.md section 12) its predicted share falls
below the prior and the penalty pulls it back, whatever ``BASE``'s gradient at small
``p_y``. (The label shares are a poor prior under asymmetric noise: they are the
noisy labels' shares, 14% "shirt" and 6% "pullover" at asymmetric 0.4, so they hold
the collapse in place.) The losses are registered under names like
``prior1u_search_r`` and handed to `experiments.meta_test` with the other flags, e.g.

    python docs/runs/screen_prior/screen.py runs/search_r/best_loss.json:1:u \
        --dataset fashion_mnist --noise symmetric:0.2,0.4,0.6,0.8 asymmetric:0.2,0.4 \
        --archs lenet --seeds 2 --steps 5000 --train-size 10000 \
        --out runs/screen_prior_lenet_u

A record for docs/RESULTS.md sections 14 and 15, not part of the package.
"""

import functools
import json
import os
import sys

import jax
import jax.numpy as jnp

from arl_jax import losses
from experiments import meta_test


def label_share_penalty(logits, labels):
    """``KL(pi || m)`` of the batch (every leading axis) with ``pi`` the batch's label
    shares, one value per example (the uniform ``pi`` is the package's
    `class_prior_penalty`)."""
    c = logits.shape[-1]
    log_p = jax.nn.log_softmax(logits.reshape(-1, c).astype(jnp.float32), axis=-1)
    log_m = jax.nn.logsumexp(log_p, axis=0) - jnp.log(log_p.shape[0])
    pi = jnp.mean(jax.nn.one_hot(labels.reshape(-1), c), axis=0)
    kl = jnp.sum(jnp.where(pi > 0, pi * (jnp.log(jnp.maximum(pi, 1e-12)) - log_m), 0.0))
    return jnp.full(labels.shape, kl)


def with_label_shares(logits, labels, base=None, lam=1.0):
    return base(logits, labels) + lam * label_share_penalty(logits, labels)


def base_loss(spec: str):
    """(name, fn) of a loss name or a best_loss.json (the drop-in `arl` loss with its
    family and coefficients)."""
    if spec.endswith(".json"):
        with open(spec) as fh:
            data = json.load(fh)
        name = os.path.basename(os.path.dirname(spec)) or spec
        fn = losses.get_loss("arl", coeffs=data["coeffs"], family=data["family"])
        return name, fn
    return spec, losses.LOSSES[spec]


def main(argv):
    names = []
    for spec in argv[0].split(","):
        if ":" not in spec:  # a loss of the package as it is, run beside the screens
            names.append(spec)
            continue
        uniform = spec.endswith(":u")
        base, lam = spec.removesuffix(":u").rsplit(":", 1)
        tag, fn = base_loss(base)
        name = f"prior{float(lam):g}{'u' if uniform else ''}_{tag}"
        losses.LOSSES[name] = (
            losses.with_class_prior(fn, float(lam)) if uniform
            else functools.partial(with_label_shares, base=fn, lam=float(lam)))
        names.append(name)
    meta_test.main(argv[1:] + ["--losses", *names])


if __name__ == "__main__":
    main(sys.argv[1:])

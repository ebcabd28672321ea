"""Hand-designed losses for noisy labels, and the input checks every loss shares.

Every loss is ``fn(logits [..., C], labels [...] int, *, where=None) -> [...]``
per-example values (optax's convention): example ``i``'s value depends on row ``i``
alone, so ``jax.vmap`` over single examples, micro-batches and padding masks agree
with the batched call. ``where`` (bool, broadcastable to ``labels``) marks the
examples to keep; the others get 0 (and a NaN there does not leak). Logits of any
float dtype (bfloat16 included) are cast to float32 first and the result is float32.
Use them through `arl_jax.losses`, which re-exports them and holds the registry
(`get_loss`, `LOSSES`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

# Wang et al. (2019) clamp the one-hot label at 1e-4 before the log, so RCE's
# constant is A = log(1e-4).
RCE_CLAMP = 1e-4
# Ye et al. (2023) floor every probability at 1e-7 before NNCE's log, so its
# constant is A = -log(1e-7).
NNCE_MIN_PROB = 1e-7


def validate_loss_inputs(logits: Any, labels: Any) -> None:
    """Raise ``ValueError`` for inputs that no loss here accepts.

    Shapes and dtypes are static, so they are checked even under ``jit``; the label
    range needs values, so it is checked only when ``labels`` is concrete and skipped
    silently when it is a tracer (inside ``jit``, ``vmap`` or ``grad``).

    Args:
      logits: ``[..., C]`` floating scores, ``C >= 2``.
      labels: ``[...]`` integer class indices in ``[0, C)``.
    """
    shape, label_shape = np.shape(logits), np.shape(labels)
    if len(shape) < 1 or shape[-1] < 2:
        raise ValueError(f"logits must have shape [..., C] with C >= 2; got {shape}")
    if label_shape != shape[:-1]:
        raise ValueError(
            f"labels shape {label_shape} must equal logits shape without its last "
            f"axis, {shape[:-1]} (logits {shape})"
        )
    if not jnp.issubdtype(_dtype(logits), jnp.floating):
        raise ValueError(f"logits must be floating point; got {_dtype(logits)}")
    if not jnp.issubdtype(_dtype(labels), jnp.integer):
        raise ValueError(f"labels must be integer class indices; got {_dtype(labels)}")
    if not isinstance(labels, jax.core.Tracer):
        values = np.asarray(labels)
        bad = (values < 0) | (values >= shape[-1])
        if bad.any():
            raise ValueError(
                f"labels must lie in [0, {shape[-1]}); got {np.unique(values[bad])}"
            )


def _dtype(x: Any) -> np.dtype:
    return x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype


def _check_params(params: Any, name: str, min_len: int, max_len: int | None) -> None:
    shape = np.shape(params)
    if len(shape) != 1:
        raise ValueError(
            f"{name} must be a 1-D vector; got shape {shape} "
            "(use jax.vmap over a population of parameter vectors)"
        )
    if shape[0] < min_len or (max_len is not None and shape[0] > max_len):
        want = f"{min_len}" if max_len == min_len else f"at least {min_len}"
        raise ValueError(f"{name} must have {want} entries; got {shape[0]}")


def _log_probs(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Check the inputs; return float32 ``log_softmax`` [..., C] and log p_y [...]."""
    validate_loss_inputs(logits, labels)
    log_p = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
    labels = jnp.asarray(labels)
    return log_p, jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]


def _one_hot(labels: jax.Array, log_p: jax.Array) -> jax.Array:
    return jax.nn.one_hot(labels, log_p.shape[-1], dtype=jnp.float32)



def per_example(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """Give a per-example loss ``fn(logits, labels, **hyper)`` a ``where=`` mask:
    examples where the mask is False get 0 (`jnp.where`, so no NaN leaks)."""

    @functools.wraps(fn)
    def masked(logits, labels, *args, where=None, **kwargs) -> jax.Array:
        out = fn(logits, labels, *args, **kwargs)
        if where is None:
            return out
        where = jnp.asarray(where)
        if not jnp.issubdtype(where.dtype, jnp.bool_):
            raise ValueError(f"where must be a boolean mask; got dtype {where.dtype}")
        return jnp.where(jnp.broadcast_to(where, out.shape), out, 0.0)

    return masked


@per_example
def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy ``-log p_y`` (optax's integer-label version).

    Standard; see e.g. Goodfellow, Bengio & Courville, "Deep Learning", 2016, 6.2.2.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    validate_loss_inputs(logits, labels)
    return optax.losses.softmax_cross_entropy_with_integer_labels(
        jnp.asarray(logits, jnp.float32), jnp.asarray(labels)
    )


@per_example
def label_smoothing(logits: jax.Array, labels: jax.Array, *, eps: float = 0.1):
    """Cross-entropy against ``(1 - eps) onehot(y) + eps / C`` (optax's smoothing).

    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
    CVPR 2016 (eps = 0.1).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      eps: smoothing mass spread uniformly over the C classes.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, _ = _log_probs(logits, labels)
    targets = optax.losses.smooth_labels(_one_hot(labels, log_p), eps)
    return optax.losses.softmax_cross_entropy(log_p, targets)


@per_example
def mae(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean absolute error ``1 - p_y``; symmetric, hence robust to symmetric noise.

    Ghosh, Kumar & Sastry, "Robust Loss Functions under Label Noise for Deep Neural
    Networks", AAAI 2017. Their ``||onehot(y) - p||_1`` is ``2 (1 - p_y)``; the factor
    2 is dropped as in Ma et al. (2020).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    _, log_py = _log_probs(logits, labels)
    return -jnp.expm1(log_py)  # 1 - p_y, accurate near p_y = 1


@per_example
def gce(logits: jax.Array, labels: jax.Array, *, q: float = 0.7) -> jax.Array:
    """Generalised cross-entropy ``(1 - p_y^q) / q``: CE as q -> 0, MAE at q = 1.

    Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural
    Networks with Noisy Labels", NeurIPS 2018 (q = 0.7; the untruncated form).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      q: exponent in (0, 1].

    Returns:
      ``[...]`` float32 per-example losses.
    """
    if isinstance(q, int | float) and not 0.0 < q <= 1.0:
        raise ValueError(f"gce: q must be in (0, 1]; got {q}")
    _, log_py = _log_probs(logits, labels)
    return -jnp.expm1(q * log_py) / q  # p^q = exp(q log p): finite gradient at p -> 0


@per_example
def taylor_ce(logits: jax.Array, labels: jax.Array, *, order: int = 2) -> jax.Array:
    """Taylor cross-entropy ``sum_{k=1..order} (1 - p_y)^k / k``.

    Feng et al., "Can Cross Entropy Loss Be Robust to Label Noise?", IJCAI 2020
    (order t = 2).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      order: number of terms kept, an integer >= 1.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    if int(order) != order or order < 1:
        raise ValueError(f"order must be an integer >= 1; got {order}")
    _, log_py = _log_probs(logits, labels)
    x = -jnp.expm1(log_py)  # 1 - p_y
    return sum(x**k / k for k in range(1, int(order) + 1))


@per_example
def poly1(logits: jax.Array, labels: jax.Array, *, eps: float = 1.0) -> jax.Array:
    """Poly-1: ``-log p_y + eps (1 - p_y)`` (optax's ``poly_loss_cross_entropy``).

    Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
    Functions", ICLR 2022. Default eps = 1.0 (the paper tunes it per task; optax's
    default 2.0 is its ImageNet value).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      eps: weight of the extra first-order term.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, _ = _log_probs(logits, labels)
    return optax.losses.poly_loss_cross_entropy(
        log_p, _one_hot(labels, log_p), epsilon=eps
    )


def _rce(log_p: jax.Array, labels: jax.Array) -> jax.Array:
    log_q = jnp.log(jnp.clip(_one_hot(labels, log_p), RCE_CLAMP, 1.0))  # [..., C]
    return -jnp.sum(jnp.exp(log_p) * log_q, axis=-1)


def _nce(log_p: jax.Array, log_py: jax.Array) -> jax.Array:
    return log_py / jnp.sum(log_p, axis=-1)


@per_example
def rce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Reverse cross-entropy ``-sum_k p_k log q_k``, q the one-hot clamped at 1e-4.

    Equals ``-log(1e-4) (1 - p_y)``: symmetric. Wang et al., "Symmetric Cross Entropy
    for Robust Learning with Noisy Labels", ICCV 2019.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, _ = _log_probs(logits, labels)
    return _rce(log_p, labels)


@per_example
def sce(logits, labels, *, alpha: float = 0.1, beta: float = 1.0) -> jax.Array:
    """Symmetric cross-entropy ``alpha CE + beta RCE``.

    Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels",
    ICCV 2019; defaults are the paper's CIFAR-10 setting (alpha 0.1, beta 1.0).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      alpha: weight of cross-entropy.
      beta: weight of reverse cross-entropy.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, log_py = _log_probs(logits, labels)
    return -alpha * log_py + beta * _rce(log_p, labels)


@per_example
def nce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Normalised cross-entropy ``log p_y / sum_k log p_k``; symmetric.

    Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels",
    ICML 2020.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, log_py = _log_probs(logits, labels)
    return _nce(log_p, log_py)


@per_example
def nce_rce(logits, labels, *, alpha: float = 1.0, beta: float = 1.0) -> jax.Array:
    """Active-passive loss ``alpha NCE + beta RCE``.

    Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels",
    ICML 2020; defaults are the paper's CIFAR-10 setting (alpha 1, beta 1).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      alpha: weight of NCE.
      beta: weight of RCE.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, log_py = _log_probs(logits, labels)
    return alpha * _nce(log_p, log_py) + beta * _rce(log_p, labels)


@per_example
def nce_mae(logits, labels, *, alpha: float = 1.0, beta: float = 1.0) -> jax.Array:
    """Active-passive loss ``alpha NCE + beta MAE``.

    Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels",
    ICML 2020; defaults are the paper's CIFAR-10 setting (alpha 1, beta 1).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      alpha: weight of NCE.
      beta: weight of MAE (``1 - p_y``).

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, log_py = _log_probs(logits, labels)
    return alpha * _nce(log_p, log_py) - beta * jnp.expm1(log_py)


def _nnce(log_p: jax.Array, labels: jax.Array) -> jax.Array:
    # z_k = A + log max(p_k, 1e-7) in [0, A]: how far p_k is above the floor.
    z = jnp.maximum(log_p - math.log(NNCE_MIN_PROB), 0.0)  # [..., C]
    z_y = jnp.take_along_axis(z, jnp.asarray(labels)[..., None], axis=-1)[..., 0]
    return 1.0 - z_y / jnp.sum(z, axis=-1)


@per_example
def nnce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Normalised negative cross-entropy ``1 - z_y / sum_k z_k``; symmetric.

    ``z_k = A + log max(p_k, 1e-7)`` with ``A = -log 1e-7``, so ``z_k`` is in ``[0,
    A]``: the cross-entropy of class ``k`` turned upside down. The loss is 0 when
    ``p_y = 1``, ``1 - 1/C`` at a uniform prediction, and its sum over the ``C``
    possible labels is ``C - 1`` whatever the prediction. Ye et al., "Active
    Negative Loss Functions for Learning with Noisy Labels", NeurIPS 2023.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, _ = _log_probs(logits, labels)
    return _nnce(log_p, labels)


@per_example
def anl_ce(logits, labels, *, alpha: float = 1.0, beta: float = 1.0) -> jax.Array:
    """Active-negative loss ``alpha NCE + beta NNCE`` (ANL-CE).

    Ye et al., "Active Negative Loss Functions for Learning with Noisy Labels",
    NeurIPS 2023; defaults are the paper's MNIST setting (alpha 1, beta 1). The paper
    also adds an L1 penalty ``delta |w|_1`` on the network's weights (delta 1e-6 on
    MNIST); that is a regulariser of the model, not a function of the logits, so it
    is not part of this loss.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      alpha: weight of NCE.
      beta: weight of NNCE.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, log_py = _log_probs(logits, labels)
    return alpha * _nce(log_p, log_py) + beta * _nnce(log_p, labels)


@per_example
def nfl(logits: jax.Array, labels: jax.Array, *, gamma: float = 0.5) -> jax.Array:
    """Normalised focal loss ``FL_y / sum_k FL_k``, ``FL_k = -(1 - p_k)^gamma log p_k``.

    Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels",
    ICML 2020 (gamma 0.5). The gradient flows through the normaliser, as in the
    paper's formula (their code detaches it). ``1 - p_k`` is floored at 1e-12 so the
    gradient of the power stays finite when ``p_k`` rounds to 1.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      gamma: focusing exponent >= 0.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, _ = _log_probs(logits, labels)
    focal = -jnp.maximum(-jnp.expm1(log_p), 1e-12) ** gamma * log_p  # [..., C]
    fl_y = jnp.take_along_axis(focal, jnp.asarray(labels)[..., None], axis=-1)
    return fl_y[..., 0] / jnp.sum(focal, axis=-1)


@per_example
def bootstrap_soft(logits, labels, *, beta: float = 0.95) -> jax.Array:
    """Soft bootstrapping: cross-entropy against ``beta onehot(y) + (1 - beta) p``.

    Reed et al., "Training Deep Neural Networks on Noisy Labels with Bootstrapping",
    ICLR workshop 2015 (beta 0.95). The prediction in the target is under
    ``stop_gradient``: the target is held fixed at each step, as in common
    implementations; letting the gradient through adds an entropy-minimisation term.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      beta: weight of the given label.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, _ = _log_probs(logits, labels)
    p = jax.lax.stop_gradient(jnp.exp(log_p))
    targets = beta * _one_hot(labels, log_p) + (1.0 - beta) * p
    return optax.losses.softmax_cross_entropy(log_p, targets)


@per_example
def bootstrap_hard(logits, labels, *, beta: float = 0.8) -> jax.Array:
    """Hard bootstrapping: cross-entropy against ``beta onehot(y) + (1 - beta) z``.

    ``z = onehot(argmax p)``, which carries no gradient. Reed et al., "Training Deep
    Neural Networks on Noisy Labels with Bootstrapping", ICLR workshop 2015 (beta 0.8).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      beta: weight of the given label.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    log_p, _ = _log_probs(logits, labels)
    z = jax.nn.one_hot(jnp.argmax(log_p, axis=-1), log_p.shape[-1], dtype=jnp.float32)
    targets = beta * _one_hot(labels, log_p) + (1.0 - beta) * jax.lax.stop_gradient(z)
    return optax.losses.softmax_cross_entropy(log_p, targets)

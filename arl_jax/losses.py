"""Loss functions for classification with noisy labels: the searched families, ARL
and the registry of every loss by name.

Every loss is ``fn(logits [..., C], labels [...] int) -> [...]`` per-example values
(optax's convention), computed in float32 whatever the logits' dtype. The parametric
families searched over take their parameter vector first, ``fn(params [P], logits,
labels)``; ``jax.vmap`` over ``params`` evaluates a whole population. The
hand-designed baselines live in `arl_jax.baselines` and are re-exported here. Inputs
are checked at the API boundary (`validate_loss_inputs`). A scheduled family
(`SCHEDULED_FAMILIES`) also takes the training progress, ``fn(params, logits, labels,
progress)`` with ``progress = step / (steps - 1)`` in ``[0, 1]``; `family_loss` calls
any family with the right arguments. A batch-driven family moves between the same
two ends with a statistic of its own batch, how well the predictions fit their
labels ("taylor_nce_fit", `batch_fit`) or how confident they are
("taylor_nce_conf", `batch_confidence`), so it needs nothing but ``(logits,
labels)``: a drop-in loss. A prior family ("taylor_nce_prior") adds to its base a
searched weight of `class_prior_penalty`, which keeps the batch's mean prediction
near the uniform class prior, so that no class collapses into another.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import inspect
import json
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from arl_jax.baselines import (
    NNCE_MIN_PROB,
    RCE_CLAMP,
    _check_params,
    _log_probs,
    _nce,
    _nnce,
    _one_hot,
    anl_ce,
    bootstrap_hard,
    bootstrap_soft,
    cross_entropy,
    gce,
    label_smoothing,
    mae,
    nce,
    nce_mae,
    nce_rce,
    nfl,
    nnce,
    poly1,
    rce,
    sce,
    taylor_ce,
    validate_loss_inputs,
)

__all__ = [
    "FAMILIES", "LOSSES", "NNCE_MIN_PROB", "POLYNOMIAL_FAMILIES", "RCE_CLAMP", "LossFn",
    "anl_ce", "arl_loss", "bootstrap_hard",
    "bootstrap_soft", "cross_entropy", "embed_coeffs", "family_init",
    "family_num_params", "gce", "get_loss", "label_smoothing", "load_pretrained",
    "loss_hyperparams", "mae", "nce", "nce_mae", "nce_rce", "nfl", "nnce",
    "normalise_coeffs", "poly1", "rce", "sce", "taylor_anl_loss", "taylor_ce",
    "taylor_ce_nce_loss", "taylor_loss",
    "taylor_nce_loss", "taylor_nce_sched_loss", "taylorglo_loss", "family_loss",
    "SCHEDULED_FAMILIES", "loss_falls", "scheduled_params", "validate_loss_inputs",
    "INTERPOLATED_FAMILIES", "BATCH_STATISTICS", "batch_confidence", "batch_fit",
    "taylor_nce_conf_loss", "taylor_nce_fit_loss",
    "PRIOR_FAMILIES", "class_prior_penalty", "taylor_nce_prior_loss",
    "with_class_prior", "per_example_part",
]

LossFn = Callable[[jax.Array, jax.Array], jax.Array]

# The weighted terms before each polynomial family's ``c`` (so ``c`` sits at index
# ``len(weights)``); the weights and the thetas after ``c`` are linear in the loss.
_POLY_WEIGHTS = {"taylor": (), "taylor_nce": ("nce",), "taylor_ce_nce": ("nce", "ce"),
                 "taylor_anl": ("nce", "nnce")}
# A two-ended family is its base polynomial family with weights that move linearly
# between two ends: ``params = [base params at the start..., end weights]``, the end
# weights being every base parameter but ``c`` (shared by both ends). A scheduled one
# moves with the training progress (which the caller passes), a batch-driven one
# with a statistic of its own batch (`batch_fit`, `batch_confidence`).
INTERPOLATED_FAMILIES = {"taylor_nce_sched": "taylor_nce",
                         "taylor_nce_fit": "taylor_nce",
                         "taylor_nce_conf": "taylor_nce"}
SCHEDULED_FAMILIES = {"taylor_nce_sched": "taylor_nce"}
# A prior family is its base polynomial family plus a last parameter, the weight of
# `class_prior_penalty`: ``params = [base params..., lambda]``.
PRIOR_FAMILIES = {"taylor_nce_prior": "taylor_nce"}
# The base polynomial family of every family built on one.
_BASE_FAMILY = {**INTERPOLATED_FAMILIES, **PRIOR_FAMILIES}
POLYNOMIAL_FAMILIES = (*_POLY_WEIGHTS, *INTERPOLATED_FAMILIES, *PRIOR_FAMILIES)
# How much each term falls from a uniform prediction over C classes to a perfect one.
_TERM_DROP = {"nce": lambda c: 1.0 / c, "ce": math.log, "nnce": lambda c: 1.0 - 1.0 / c}
# Each term's per-example value from log p [..., C], log p_y [...] and the labels.
_TERMS = {
    "nce": lambda log_p, log_py, labels: _nce(log_p, log_py),
    "ce": lambda log_p, log_py, labels: -log_py,
    "nnce": lambda log_p, log_py, labels: _nnce(log_p, labels),
}


def _poly_family_loss(family: str, params, logits, labels) -> jax.Array:
    """``sum_i w_i term_i + sum_k theta_k (p_y - c)^k`` for ``params = [w..., c,
    theta_1, ...]``, the terms named by ``_POLY_WEIGHTS[family]``."""
    terms = _POLY_WEIGHTS[family]
    _check_params(params, "params", len(terms) + 2, None)
    log_p, log_py = _log_probs(logits, labels)
    params = jnp.asarray(params, jnp.float32)
    active = sum(params[i] * _TERMS[term](log_p, log_py, labels)
                 for i, term in enumerate(terms))
    return active + _polynomial(params[len(terms):], jnp.exp(log_py))


def taylor_loss(coeffs: jax.Array, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """ARL's family: a polynomial in the probability of the labelled class.

    ``loss = sum_{k=1..K} theta_k (p_y - c)^k`` with ``coeffs = [c, theta_1, ...,
    theta_K]``, any ``K >= 1``. The constant term ``theta_0`` is left out: adding a
    constant to a loss changes no gradient, so training (and hence fitness) would not
    depend on it and the search would waste a dimension on it. With ``c = 1`` and
    ``theta_k = (-1)^k / k`` (`family_init`) this is the Taylor series of
    ``-log p_y`` around ``p_y = 1``; ``K = 1`` is MAE up to scale and a constant.

    Gao, Gouk & Hospedales, "Searching for Robustness: Loss Learning for Noisy
    Classification Tasks", ICCV 2021.

    Args:
      coeffs: ``[K + 1]`` float, ``[c, theta_1, ..., theta_K]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    _check_params(coeffs, "coeffs", 2, None)
    _, log_py = _log_probs(logits, labels)
    return _polynomial(jnp.asarray(coeffs, jnp.float32), jnp.exp(log_py))


def _polynomial(coeffs: jax.Array, p_y: jax.Array) -> jax.Array:
    """``sum_{k>=1} theta_k (p_y - c)^k`` for ``coeffs = [c, theta_1, ...]``."""
    d = p_y - coeffs[0]
    acc = jnp.zeros_like(d)
    for k in range(coeffs.shape[0] - 1, 0, -1):  # Horner: d (th1 + d (th2 + ...))
        acc = acc * d + coeffs[k]
    return acc * d


def taylor_nce_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """ARL's polynomial plus a searched weight of normalised cross-entropy.

    ``loss = a NCE + sum_{k=1..K} theta_k (p_y - c)^k`` with ``params = [a, c,
    theta_1, ..., theta_K]`` and ``NCE = log p_y / sum_j log p_j`` (Ma et al., ICML
    2020). The polynomial alone is a function of ``p_y`` only, which makes it either
    steep near ``p_y = 0`` (CE-like: it fits noisy labels) or flat there (MAE-like:
    it under-fits clean ones); the NCE term adds an "active" part that looks at every
    class while staying bounded in ``[0, 1]``. The family contains
    ARL's Taylor family (``a = 0``) and NCE+MAE (``a = 1, c = 1, theta_1 = -1``), so
    the search can find either or anything in between.

    Args:
      params: ``[K + 2]`` float, ``[a, c, theta_1, ..., theta_K]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    return _poly_family_loss("taylor_nce", params, logits, labels)


def taylor_ce_nce_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """`taylor_nce_loss` plus a searched weight of cross-entropy.

    ``loss = a NCE + b CE + sum_{k=1..K} theta_k (p_y - c)^k`` with ``params = [a, b,
    c, theta_1, ..., theta_K]``. The CE term is the one active loss the polynomial
    cannot follow near ``p_y = 0``. The family contains `taylor_nce_loss` (``b =
    0``), so ARL's Taylor family and NCE+MAE, and SCE (``a = 0, b = 0.1, c = 1,
    theta_1 = log 1e-4``, the published weights 0.1 and 1 of CE and RCE).

    Args:
      params: ``[K + 3]`` float, ``[a, b, c, theta_1, ..., theta_K]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    return _poly_family_loss("taylor_ce_nce", params, logits, labels)


def taylor_anl_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """`taylor_nce_loss` plus a searched weight of normalised negative cross-entropy.

    ``loss = a NCE + b NNCE + sum_{k=1..K} theta_k (p_y - c)^k`` with ``params = [a,
    b, c, theta_1, ..., theta_K]`` and `arl_jax.baselines.nnce` (Ye et al., NeurIPS
    2023). Unlike the polynomial, which sees ``p_y`` only, NNCE looks at every
    non-target class through ``log p_k`` while staying bounded and symmetric, so it
    pushes the wrong classes down without the unbounded pull of CE on ``p_y``. The
    family contains `taylor_nce_loss` (``b = 0``), so ARL's Taylor family and
    NCE+MAE, and ANL-CE (``a = b = 1``, every theta 0).

    Args:
      params: ``[K + 3]`` float, ``[a, b, c, theta_1, ..., theta_K]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    return _poly_family_loss("taylor_anl", params, logits, labels)


def _check_progress(progress, name: str = "progress") -> jax.Array:
    """``progress`` as a float32 scalar clipped to [0, 1]; a concrete value outside
    [0, 1] (or none) is an error that calls it `name`."""
    if progress is None:
        raise ValueError(
            "this loss changes over training: pass progress = step / (total_steps "
            "- 1), a number in [0, 1] (0 on the first step, 1 on the last)"
        )
    if isinstance(progress, int | float | np.number) and not 0.0 <= progress <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {progress}")
    return jnp.clip(jnp.asarray(progress, jnp.float32), 0.0, 1.0)


def _split_scheduled(family: str, params) -> tuple[int, int]:
    """``(i, m)``: the number of base weights before ``c`` and the base vector's length
    for a scheduled `family`'s ``params``; checks the length (``2 m - 1``)."""
    i = len(_POLY_WEIGHTS[INTERPOLATED_FAMILIES[family]])
    n = int(np.shape(params)[0])
    if n % 2 == 0 or n < 2 * (i + 2) - 1:
        raise ValueError(
            f"{family} params must have an odd length >= {2 * (i + 2) - 1} "
            f"(base parameters at the start, then the end weights); got {n}"
        )
    return i, (n + 1) // 2


def scheduled_params(
    family: str, params, progress, name: str = "progress"
) -> jax.Array:
    """The base family's parameter vector at `progress` in [0, 1]: the start vector
    moved linearly to the end weights (``c`` fixed).

    Args:
      family: a key of `INTERPOLATED_FAMILIES`.
      params: ``[2 m - 1]``, the base family's ``m`` parameters at the start, then its
        ``m - 1`` weights (all but ``c``) at the end.
      progress: a scalar in [0, 1] (may be traced): the training progress of a
        scheduled family, the batch statistic of a batch-driven one.
      name: what an error calls `progress` (``"fit"`` for a batch-driven family).

    Returns:
      ``[m]`` float32 parameters of the base family.
    """
    start, end = _scheduled_ends(family, jnp.asarray(params, jnp.float32), jnp)
    return start + _check_progress(progress, name) * (end - start)


def _scheduled_ends(family: str, params, xp=np):
    """The base family's vectors ``(start, end)`` of a scheduled `family`'s params
    (``xp``: numpy or jax.numpy)."""
    i, m = _split_scheduled(family, params)
    end = xp.concatenate([params[m:m + i], params[i:i + 1], params[m + i:]])
    return params[:m], end


def taylor_nce_sched_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array, progress=None
) -> jax.Array:
    """`taylor_nce_loss` whose weights change linearly over training.

    ``loss_t = (1 - t) loss_start + t loss_end``, with ``t = progress`` in [0, 1] and
    ``loss_start``, ``loss_end`` two members of "taylor_nce" that share ``c``:
    ``params = [a, c, theta_1..theta_K, a_end, theta_end_1..theta_end_K]``. With the
    end weights equal to the start ones it is the constant loss ``[a, c, theta...]``
    (`embed_coeffs`); so it contains "taylor_nce", and lets a search find a loss that
    fits fast early and turns robust late (or the other way round). The schedule is
    in relative progress, so a loss found with 400-step inner runs means the same
    thing for a 5,000-step run.

    Args:
      params: ``[2 K + 3]`` float, the start vector then the end weights.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      progress: ``step / (total_steps - 1)`` in [0, 1]; required.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    base = scheduled_params("taylor_nce_sched", params, progress)
    return _poly_family_loss("taylor_nce", base, logits, labels)


def _rescaled(p: jax.Array, num_classes: int) -> jax.Array:
    """The batch mean of a probability, gradient stopped, rescaled so that 1/C
    (a uniform prediction) gives 0 and 1 gives 1, clipped to [0, 1]."""
    chance = 1.0 / num_classes
    mean = jnp.mean(jax.lax.stop_gradient(p))
    return jnp.clip((mean - chance) / (1.0 - chance), 0.0, 1.0)


def batch_fit(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """How well a batch's predictions fit its labels, a scalar in [0, 1].

    The mean of ``p_y`` over every example (all leading axes), rescaled so that a
    uniform prediction gives 0 and a perfect one 1, with its gradient stopped: the
    loss's weights read it, but training does not push on it. Early in training it
    is near 0; it then rises towards the share of labels the network can fit, so it
    tells a loss both how far training has gone and how noisy the labels look.
    """
    _, log_py = _log_probs(logits, labels)
    return _rescaled(jnp.exp(log_py), logits.shape[-1])


def batch_confidence(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """How confident a batch's predictions are, whatever the labels: a scalar in
    [0, 1], the mean of ``max_k p_k`` rescaled as in `batch_fit` (gradient stopped).

    It rises as training goes on in every noise setting (a network that memorises
    noisy labels is confident too), so it stands in for the training progress that
    a scheduled loss needs from its caller. `labels` are only checked.
    """
    log_p, _ = _log_probs(logits, labels)
    return _rescaled(jnp.exp(jnp.max(log_p, axis=-1)), logits.shape[-1])


def taylor_nce_fit_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array, fit=None
) -> jax.Array:
    """`taylor_nce_loss` whose weights move with how well the batch fits its labels.

    ``loss = (1 - f) loss_start + f loss_end``, with ``f = batch_fit(logits,
    labels)`` and the same two ends as `taylor_nce_sched_loss`: ``params = [a, c,
    theta_1..theta_K, a_end, theta_end_1..theta_end_K]``. Where the scheduled loss
    needs the training progress from the caller, this one reads the state of
    training from its own batch, so it is a drop-in ``fn(logits, labels)``: a loss
    that fits fast while the network is far from its labels and turns robust once
    it fits them (or the other way round). The weights are set per batch, so a
    batch of one example is weighted by that example's ``p_y`` alone.

    Args:
      params: ``[2 K + 3]`` float, the start vector then the end weights.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      fit: ``None`` (computed with `batch_fit`) or a number in [0, 1] to use
        instead (to plot the loss at a given fit).

    Returns:
      ``[...]`` float32 per-example losses.
    """
    return _batch_driven_loss("taylor_nce_fit", params, logits, labels, fit)


def taylor_nce_conf_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array, fit=None
) -> jax.Array:
    """`taylor_nce_fit_loss` moved by `batch_confidence` (the mean top-class
    probability) instead of `batch_fit`: a drop-in stand-in for the progress of
    `taylor_nce_sched_loss` that, unlike the fit, does not stay low on noisy labels.

    Args:
      params: ``[2 K + 3]`` float, the start vector then the end weights.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      fit: ``None`` (computed with `batch_confidence`) or a number in [0, 1] to use
        instead (to plot the loss at a given confidence).

    Returns:
      ``[...]`` float32 per-example losses.
    """
    return _batch_driven_loss("taylor_nce_conf", params, logits, labels, fit)


# The statistic of its batch that moves each batch-driven family between its ends.
BATCH_STATISTICS = {"taylor_nce_fit": batch_fit, "taylor_nce_conf": batch_confidence}


def _batch_driven_loss(family: str, params, logits, labels, fit) -> jax.Array:
    """A batch-driven `family`'s loss: its base family at the point between the two
    ends that the batch's statistic (or `fit`, when given) puts it."""
    f = BATCH_STATISTICS[family](logits, labels) if fit is None else fit
    base = scheduled_params(family, params, f, "fit")
    return _poly_family_loss(INTERPOLATED_FAMILIES[family], base, logits, labels)


def class_prior_penalty(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """How far the batch's mean prediction is from the uniform class prior.

    ``KL(u || m) = sum_k (1/C) log((1/C) / m_k)`` with ``m = mean_i p_i`` over every
    example of the batch (all leading axes) and ``u`` uniform over the ``C``
    classes (Tanaka et al., "Joint Optimization Framework for Learning with Noisy
    Labels", CVPR 2018). It is 0 when the network predicts every class equally
    often and grows as one class's share falls: when a class collapses into
    another for the whole run (Fashion-MNIST's pullovers into "shirt" under
    asymmetric noise, docs/RESULTS.md section 12), a loss with little gradient at
    small ``p_y`` leaves it there, while this pulls it back whatever the labels
    say. It assumes balanced classes. The value is the batch's, repeated for every
    example (the batch mean of the per-example losses is the penalty); the
    gradient flows through ``m``. `labels` are only checked.

    Returns:
      ``[...]`` float32, the same value for every example.
    """
    log_p, _ = _log_probs(logits, labels)
    c = log_p.shape[-1]
    flat = log_p.reshape(-1, c)
    log_m = jax.nn.logsumexp(flat, axis=0) - jnp.log(flat.shape[0])
    return jnp.broadcast_to(-jnp.mean(log_m) - jnp.log(c), labels.shape)


def per_example_part(family: str, coeffs) -> tuple[str, list[float]]:
    """``(family, coeffs)`` of a loss's per-example part: for a prior family
    (`PRIOR_FAMILIES`) its base family without the penalty's weight, whose batch-wide
    value only adds the same constant to every example; any other loss unchanged.
    What a plot of the loss against ``p_y`` shows."""
    coeffs = [float(c) for c in coeffs]
    if family in PRIOR_FAMILIES:
        return PRIOR_FAMILIES[family], coeffs[:-1]
    return family, coeffs


def with_class_prior(
    loss: LossFn | str, weight: float = 1.0, **hyperparams: Any
) -> LossFn:
    """Any loss plus ``weight`` times `class_prior_penalty`: a drop-in loss.

    ``with_class_prior("nce_mae")(logits, labels)`` is ``nce_mae(logits, labels) +
    class_prior_penalty(logits, labels)``, per example like every loss here. With
    three seeds on Fashion-MNIST (docs/RESULTS.md section 15) NCE+MAE and NCE+RCE plus
    the penalty with weight 1 are ahead of every published loss with LeNet-5; they
    gain 3.7 and 5.3 points at asymmetric 0.4, where a class would otherwise
    collapse into another. It assumes balanced classes.

    Args:
      loss: a loss function of ``(logits, labels)`` or a name of `LOSSES`.
      weight: the penalty's weight (finite, ``>= 0``; 0 gives ``loss`` back).
      **hyperparams: bound to ``loss`` when it is a name (`get_loss`).
    """
    weight = float(weight)
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(
            f"with_class_prior: weight must be finite and >= 0, got {weight}"
        )
    if isinstance(loss, str):
        loss = get_loss(loss, **hyperparams)
    elif hyperparams:
        raise ValueError("with_class_prior: hyper-parameters are bound by name only; "
                         f"got {sorted(hyperparams)} with a function")

    def penalised(logits: jax.Array, labels: jax.Array) -> jax.Array:
        return loss(logits, labels) + weight * class_prior_penalty(logits, labels)

    return penalised


def taylor_nce_prior_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """`taylor_nce_loss` plus a searched weight of `class_prior_penalty`.

    ``loss = a NCE + sum_k theta_k (p_y - c)^k + lambda KL(u || m)`` with ``params =
    [a, c, theta_1, ..., theta_K, lambda]``. The polynomial's trade between fitting
    (gradient at small ``p_y``) and resisting noisy labels (little of it) has one
    failure that no setting of it avoids: a loss flat at small ``p_y`` resists wrong
    labels but also lets a whole class stay predicted as another; the penalty acts
    on the batch's class shares instead, which symmetric noise leaves alone. With
    ``lambda = 0`` it is "taylor_nce" (`embed_coeffs`). A drop-in loss of
    ``(logits, labels)``; it assumes balanced classes.

    Args:
      params: ``[K + 3]`` float, ``[a, c, theta_1, ..., theta_K, lambda]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    _check_params(params, "params", len(_POLY_WEIGHTS["taylor_nce"]) + 3, None)
    params = jnp.asarray(params, jnp.float32)
    return (_poly_family_loss("taylor_nce", params[:-1], logits, labels)
            + params[-1] * class_prior_penalty(logits, labels))


def taylorglo_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """TaylorGLO's family: a 3rd-order bivariate Taylor polynomial in (y, p).

    With ``params = [c_y, c_p, t_1, ..., t_6]``, one-hot label ``y_i``, softmax
    ``p_i``, ``v_i = y_i - c_y`` and ``u_i = p_i - c_p``, the loss is
    ``-(1/C) sum_i [t_1 u + t_2 u^2/2 + t_3 u^3/6 + t_4 v u + t_5 v u^2/2
    + t_6 v^2 u/2]``: the terms of the expansion around ``(c_y, c_p)`` without the
    constant and without the terms in ``v`` alone (they do not depend on the
    prediction, so they change no gradient). The factorial weights, the sign and the
    mean over classes follow the paper, so published parameter vectors can be used.

    Gonzalez & Miikkulainen, "Optimizing Loss Functions Through Multi-Variate Taylor
    Polynomial Parameterization", GECCO 2021 (arXiv:2002.00059).

    Args:
      params: ``[8]`` float, ``[c_y, c_p, t_1, ..., t_6]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    _check_params(params, "params", 8, 8)
    log_p, _ = _log_probs(logits, labels)
    t = jnp.asarray(params, jnp.float32)
    v = _one_hot(labels, log_p) - t[0]  # [..., C]
    u = jnp.exp(log_p) - t[1]  # [..., C]
    terms = (
        t[2] * u + t[3] * u**2 / 2 + t[4] * u**3 / 6
        + t[5] * v * u + t[6] * v * u**2 / 2 + t[7] * v**2 * u / 2
    )
    return -jnp.mean(terms, axis=-1)


FAMILIES: dict[str, Callable[..., jax.Array]] = {
    "taylor": taylor_loss,
    "taylorglo": taylorglo_loss,
    "taylor_nce": taylor_nce_loss,
    "taylor_ce_nce": taylor_ce_nce_loss,
    "taylor_anl": taylor_anl_loss,
    "taylor_nce_sched": taylor_nce_sched_loss,
    "taylor_nce_fit": taylor_nce_fit_loss,
    "taylor_nce_conf": taylor_nce_conf_loss,
    "taylor_nce_prior": taylor_nce_prior_loss,
}


def family_loss(family: str, params, logits, labels, progress=None) -> jax.Array:
    """Per-example losses of any family; `progress` (in [0, 1]) is used by the
    scheduled families (`SCHEDULED_FAMILIES`), where it is required, and ignored by
    the others."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {sorted(FAMILIES)}")
    if family in SCHEDULED_FAMILIES:
        return FAMILIES[family](params, logits, labels, progress)
    return FAMILIES[family](params, logits, labels)


def loss_falls(family: str, params, num_classes: int = 10) -> np.ndarray:
    """Whether each loss of a polynomial `family` falls from a uniform prediction to
    a perfect one (the drop `normalise_coeffs` divides by is positive).

    A loss that rises instead (it pays the network to move away from the label) is no
    loss to train with. For a scheduled family the drop is linear in the progress, so
    it is checked at the start and the end, which covers every point between; so is
    a batch-driven family's.

    Args:
      family: a polynomial family (`POLYNOMIAL_FAMILIES`).
      params: ``[..., P]`` parameter vectors.
      num_classes: ``C`` of the reference predictions.

    Returns:
      ``[...]`` bool numpy array.
    """
    if family not in POLYNOMIAL_FAMILIES:
        raise ValueError(f"loss_falls handles {sorted(POLYNOMIAL_FAMILIES)}; got "
                         f"family {family!r}")
    base = _BASE_FAMILY.get(family, family)
    params = np.asarray(params, np.float64)

    def falls(p):
        if family in INTERPOLATED_FAMILIES:
            ends = _scheduled_ends(family, p)
        else:  # a prior family's penalty does not change the drop
            ends = (p[:-1] if family in PRIOR_FAMILIES else p,)
        return all(_recentre(base, v, num_classes)[1] > 0 for v in ends)

    flat = params.reshape(-1, params.shape[-1])
    return np.array([falls(p) for p in flat], bool).reshape(params.shape[:-1])


def family_num_params(family: str, order: int) -> int:
    """Length of a parameter vector: ``order + 1`` for "taylor", ``order + 2`` for
    "taylor_nce", ``order + 3`` for "taylor_ce_nce" and "taylor_anl", 8 for
    "taylorglo".

    Args:
      family: a key of `FAMILIES`.
      order: the polynomial order K (>= 1); TaylorGLO is always 3rd order, so it is
        ignored there.

    Returns:
      The number of parameters P.
    """
    if family in _POLY_WEIGHTS:
        if int(order) != order or order < 1:
            raise ValueError(f"{family} order must be an integer >= 1; got {order}")
        return int(order) + len(_POLY_WEIGHTS[family]) + 1
    if family == "taylorglo":
        return 8
    if family in INTERPOLATED_FAMILIES:
        return 2 * family_num_params(INTERPOLATED_FAMILIES[family], order) - 1
    if family in PRIOR_FAMILIES:
        return family_num_params(PRIOR_FAMILIES[family], order) + 1
    raise ValueError(f"unknown family {family!r}; valid families: {sorted(FAMILIES)}")


def family_init(family: str, order: int) -> np.ndarray:
    """A sensible starting mean for CMA-ES: a cross-entropy-like member of the family.

    "taylor": ``c = 1``, ``theta_k = (-1)^k / k``, the Taylor series of ``-log p``
    around ``p = 1`` (``-log p = sum_k (1 - p)^k / k``) truncated at ``order``.
    "taylorglo": ``c_y = 0, c_p = 1, t_4 = 1, t_5 = -1``, the rest 0, which gives
    ``((1 - p_y) + (1 - p_y)^2 / 2) / C``: the second-order Taylor series of
    cross-entropy, divided by C by the family's mean over classes; the other classes
    contribute nothing (their ``v = 0`` and ``t_1 = t_2 = t_3 = 0``).
    "taylor_nce": NCE weight ``a = 0`` and the "taylor" start, so the search starts
    from the same cross-entropy-like loss; "taylor_ce_nce" and "taylor_anl": also
    ``b = 0``. The two-ended families (`INTERPOLATED_FAMILIES`): the "taylor_nce"
    start, the same at the end. The prior families: their base's start and
    ``lambda = 0``.

    Args:
      family: a key of `FAMILIES`.
      order: the polynomial order (ignored for "taylorglo").

    Returns:
      ``[family_num_params(family, order)]`` float32 array.
    """
    family_num_params(family, order)  # checks both
    if family in INTERPOLATED_FAMILIES:  # the base start, the same at both ends
        base = INTERPOLATED_FAMILIES[family]
        return np.asarray(embed_coeffs(base, family_init(base, order), family),
                          np.float32)
    if family in PRIOR_FAMILIES:
        base = family_init(PRIOR_FAMILIES[family], order)
        return np.concatenate([base, [0.0]]).astype(np.float32)
    if family in _POLY_WEIGHTS:
        k = np.arange(1, int(order) + 1)
        weights = np.zeros(len(_POLY_WEIGHTS[family]))
        return np.concatenate([weights, [1.0], (-1.0) ** k / k]).astype(np.float32)
    return np.array([0, 1, 0, 0, 0, 1, -1, 0], np.float32)


def _contains(into: str, family: str) -> bool:
    """Whether polynomial family `into` holds every loss of `family` (its weighted
    terms start with `family`'s: the others are set to 0; a two-ended family holds
    what its base holds, as a loss with equal ends; a prior family, with ``lambda =
    0``)."""
    if family in _BASE_FAMILY:
        return into == family
    into = _BASE_FAMILY.get(into, into)
    weights = _POLY_WEIGHTS[family]
    return _POLY_WEIGHTS[into][: len(weights)] == weights


def embed_coeffs(family: str, coeffs, into: str) -> list[float]:
    """The same loss written in a larger polynomial family.

    "taylor" is "taylor_nce" with ``a = 0``, which is "taylor_ce_nce" with a CE
    weight ``b = 0`` and "taylor_anl" with an NNCE weight ``b = 0``; the missing
    weights are inserted as zeros, so the loss is exactly the same function; a
    two-ended family (`INTERPOLATED_FAMILIES`) holds its base's losses
    with the same weights at the end as at the start, and a prior family with
    ``lambda = 0``. Lets a loss of one family be
    scored or searched from in a larger one.

    Args:
      family: the family `coeffs` belong to.
      coeffs: its parameter vector.
      into: a polynomial family (`POLYNOMIAL_FAMILIES`) that contains `family`.

    Returns:
      The parameter vector in `into`, as a list of floats.

    Raises:
      ValueError: if `into` does not contain `family`.
    """
    if family not in POLYNOMIAL_FAMILIES or into not in POLYNOMIAL_FAMILIES or not (
        _contains(into, family)
    ):
        raise ValueError(f"family {into!r} does not contain family {family!r}")
    params = [float(v) for v in np.asarray(coeffs, np.float64)]
    if family == into:
        return params
    base = _BASE_FAMILY.get(into, into)
    i = len(_POLY_WEIGHTS[family])
    pad = [0.0] * (len(_POLY_WEIGHTS[base]) - i)
    params = params[:i] + pad + params[i:]
    if into in INTERPOLATED_FAMILIES:  # the same weights at both ends: constant
        j = len(_POLY_WEIGHTS[base])
        params = params + params[:j] + params[j + 1:]
    if into in PRIOR_FAMILIES:  # no penalty
        params = params + [0.0]
    return params


def normalise_coeffs(family: str, coeffs, num_classes: int = 10) -> tuple[list, float]:
    """The same loss, re-centred at ``p_y = 1`` and put on cross-entropy's scale.

    A search returns a polynomial centred wherever CMA-ES left ``c`` (search K's is
    at ``c = 14.2``, so its values are ~13,000 over ``p_y`` in [0, 1]) and at an
    arbitrary overall scale, since fitness cannot see either: a constant changes no
    gradient, and Adam divides the gradient's scale out. For a drop-in loss both are
    rewritten: the polynomial is expanded around ``c = 1`` exactly (binomial
    theorem, float64; only the constant term, which no gradient sees, is dropped) and
    every linear weight (NCE, CE, NNCE, thetas) is divided by ``s / ln C``, where
    ``s`` is the drop of the loss from a uniform prediction (``p = 1/C`` for every
    class) to a perfect one (``p_y = 1``): afterwards the loss falls by ``ln C``
    between the two, as cross-entropy does, so SGD learning rates tuned for CE are
    the right order of magnitude. The gradient field is unchanged up to the positive
    factor ``ln C / s``; under Adam training is unchanged up to float rounding. A
    two-ended family's ends are re-centred alike and divided by one factor, from
    the drop halfway between them (at mid-training for a scheduled family; the mean
    of the two ends' drops), so the loss at every point between is the same function
    up to that one factor. A prior family's penalty weight is divided by the same
    factor (the penalty is 0 at both reference predictions, so it adds no drop).

    Args:
      family: a polynomial family (`POLYNOMIAL_FAMILIES`).
      coeffs: the family's parameter vector.
      num_classes: ``C`` of the reference predictions (the meta-train tasks' 10).

    Returns:
      ``(normalised coeffs as a list of floats, the factor s / ln C divided out)``.

    Raises:
      ValueError: for another family, or if the loss does not fall from a uniform
        to a perfect prediction (``s <= 0``: not a loss to ship).
    """
    if family not in POLYNOMIAL_FAMILIES:
        raise ValueError(
            f"normalise_coeffs handles {sorted(POLYNOMIAL_FAMILIES)}; got family "
            f"{family!r}"
        )
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes}")
    params = np.asarray(coeffs, np.float64)
    if family in INTERPOLATED_FAMILIES:  # both ends re-centred, one factor for both
        base = INTERPOLATED_FAMILIES[family]
        i = len(_POLY_WEIGHTS[base])
        (start, d0), (end, d1) = (_recentre(base, v, num_classes)
                                  for v in _scheduled_ends(family, params))
        out, drop = np.concatenate([start, end[:i], end[i + 1:]]), (d0 + d1) / 2
        what = "halfway between its ends (mid-training for a schedule) "
    elif family in PRIOR_FAMILIES:  # the base re-centred, the weight kept
        out, drop = _recentre(PRIOR_FAMILIES[family], params[:-1], num_classes)
        out, what = np.concatenate([out, params[-1:]]), ""
    else:
        out, drop = _recentre(family, params, num_classes)
        what = ""
    if not np.isfinite(drop) or drop <= 0:
        raise ValueError(
            f"this {family} loss does not fall from a uniform to a perfect prediction "
            f"{what}(drop {drop:.4g}); it cannot be put on cross-entropy's scale"
        )
    factor = drop / math.log(num_classes)
    i = len(_POLY_WEIGHTS[_BASE_FAMILY.get(family, family)])
    out[np.arange(len(out)) != i] /= factor  # every linear weight; c stays 1
    return [float(v) for v in out], factor


def _recentre(family: str, params: np.ndarray, num_classes: int):
    """``(params re-centred at c = 1, the drop from a uniform to a perfect
    prediction)`` for a base polynomial family, in float64."""
    i = len(_POLY_WEIGHTS[family])
    family_num_params(family, len(params) - i - 1)  # checks the length (order >= 1)
    weights, c, theta = params[:i], params[i], params[i + 1:]
    order, shift = len(theta), 1.0 - c  # p - c = (p - 1) + shift
    recentred = np.array([
        sum(theta[k - 1] * math.comb(k, j) * shift ** (k - j)
            for k in range(j, order + 1))
        for j in range(1, order + 1)
    ])
    uniform = 1.0 / num_classes
    poly_drop = float(np.sum(recentred * (uniform - 1.0) ** np.arange(1, order + 1)))
    active = sum(w * _TERM_DROP[term](num_classes)
                 for w, term in zip(weights, _POLY_WEIGHTS[family], strict=True))
    return np.concatenate([weights, [1.0], recentred]), float(active) + poly_drop


_PRETRAINED_KEYS = {"family", "coeffs", "fitness", "generation", "command", "seed",
                    "date", "provisional"}


@functools.cache
def _read_pretrained() -> dict[str, Any]:
    path = importlib.resources.files("arl_jax").joinpath("pretrained").joinpath(
        "arl.json"
    )
    data = json.loads(path.read_text())
    missing = _PRETRAINED_KEYS - set(data)
    if missing or data["family"] not in FAMILIES:
        raise ValueError(f"{path}: bad pretrained file (missing {sorted(missing)})")
    return data


def load_pretrained() -> dict[str, Any]:
    """The shipped ARL coefficients with their provenance (read once, then cached).

    Returns:
      A fresh dict from ``arl_jax/pretrained/arl.json`` with keys family, coeffs,
      fitness, generation, command, seed, date, provisional (and maybe note).
    """
    return copy.deepcopy(_read_pretrained())


def arl_loss(
    logits: jax.Array, labels: jax.Array, coeffs=None, family: str | None = None,
    progress=None,
) -> jax.Array:
    """The learned robust loss (ARL), a drop-in replacement for cross-entropy.

    Gao, Gouk & Hospedales, "Searching for Robustness: Loss Learning for Noisy
    Classification Tasks", ICCV 2021.

    The shipped loss (``coeffs=None``) is "taylor_nce_prior": a searched NCE weight
    and polynomial in ``p_y`` plus 3 times `class_prior_penalty`, a term of the
    whole batch (the same value on every example; its gradient flows through the
    batch's mean prediction). Average it over the batch, as with any loss here, and
    use it where the classes are roughly balanced, which the penalty assumes
    (docs/RESULTS.md sections 1 and 23).

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      coeffs: coefficients of the loss family `family` (``[K + 1]`` for
        `taylor_loss`); ``None`` uses the shipped pretrained ones with their own
        family (`load_pretrained`), and `family` is then ignored.
      family: a key of `FAMILIES`, the family that `coeffs` belong to (``None``:
        "taylor").
      progress: ``step / (total_steps - 1)`` in [0, 1], required by a scheduled
        family ("taylor_nce_sched", whose loss changes over training) and ignored by
        the others (the shipped loss is not scheduled; the batch-driven families
        read the state of training from their own batch).

    Returns:
      ``[...]`` float32 per-example losses.
    """
    if coeffs is None:
        pretrained = _read_pretrained()
        family, coeffs = pretrained["family"], np.asarray(pretrained["coeffs"])
    return family_loss(family or "taylor", jnp.asarray(coeffs, jnp.float32), logits,
                       labels, progress)


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "cross_entropy": cross_entropy,
    "label_smoothing": label_smoothing,
    "mae": mae,
    "gce": gce,
    "taylor_ce": taylor_ce,
    "poly1": poly1,
    "rce": rce,
    "sce": sce,
    "nce": nce,
    "nce_rce": nce_rce,
    "nce_mae": nce_mae,
    "nnce": nnce,
    "anl_ce": anl_ce,
    "nfl": nfl,
    "bootstrap_soft": bootstrap_soft,
    "bootstrap_hard": bootstrap_hard,
    "arl": arl_loss,
}


def loss_hyperparams(name: str) -> dict[str, Any]:
    """The hyper-parameters of loss ``name`` with their defaults (``{}`` if none)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {sorted(LOSSES)}")
    params = inspect.signature(LOSSES[name]).parameters.values()
    return {p.name: p.default for p in params if p.name not in ("logits", "labels")}


def get_loss(name: str, **hyperparams: Any) -> LossFn:
    """Look a loss up by name and bind its hyper-parameters.

    Args:
      name: a key of `LOSSES`.
      **hyperparams: keyword hyper-parameters of that loss (see `loss_hyperparams`).

    Returns:
      ``fn(logits, labels) -> [...]``.
    """
    valid = loss_hyperparams(name)
    unknown = sorted(set(hyperparams) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) {unknown} for loss {name!r}; "
            f"valid: {sorted(valid) or 'none'}"
        )
    return functools.partial(LOSSES[name], **hyperparams)

"""Loss functions for classification with noisy labels: the searched families, the
shipped ARL loss, and the registry of every loss by name.

Two kinds of function, as in optax:

- a *loss* is ``fn(logits [..., C], labels [...] int, *, where=None) -> [...]``
  per-example values: row ``i``'s value depends on row ``i`` alone, so ``jax.vmap``
  over single examples, micro-batches and padding masks agree with the batched call;
- an *objective* is ``fn(logits, labels, where=None) -> scalar``: the masked mean of
  a loss plus any batch-level term (the class-prior penalty, which looks at the
  batch's mean prediction). It is what a training step minimises.

The searched families take their parameter vector first, ``fn(params [P], logits,
labels)``; ``jax.vmap`` over ``params`` evaluates a whole population. A family is one
entry of `FAMILIES` (a `Family`: its per-example loss, batch term, parameter count,
starting point and place among the other families). The hand-designed baselines live
in `arl_jax.baselines` and are re-exported here.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.resources
import inspect
import json
import math
import os
from collections.abc import Callable, Mapping
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
    per_example,
    poly1,
    rce,
    sce,
    taylor_ce,
    validate_loss_inputs,
)

__all__ = [
    "ARL_LOSS_ENV", "FAMILIES", "LOSSES", "NNCE_MIN_PROB", "RCE_CLAMP", "Family",
    "LossFn", "ObjectiveFn", "anl_ce", "arl_loss", "arl_objective", "bootstrap_hard",
    "bootstrap_soft", "class_prior_penalty", "cross_entropy", "embed_coeffs",
    "family_init", "family_loss", "family_num_params", "family_objective", "gce",
    "get_loss", "get_objective", "label_smoothing", "load_loss", "load_objective",
    "load_pretrained", "loss_hyperparams", "mae", "masked_mean", "nce", "nce_mae",
    "nce_rce", "nfl", "nnce", "normalise_coeffs", "per_example",
    "poly1", "rce", "read_loss_file", "sce", "taylor_ce", "taylor_loss",
    "taylor_nce_loss", "taylor_nce_prior_loss", "taylorglo_loss",
    "validate_loss_inputs", "with_class_prior",
]

LossFn = Callable[..., jax.Array]
ObjectiveFn = Callable[..., jax.Array]

# An environment variable naming a user's loss file (a search's best_loss.json or an
# arl.json) that `arl_loss`/`arl_objective` use instead of the packaged one.
ARL_LOSS_ENV = "ARL_JAX_LOSS_FILE"


def masked_mean(values: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Mean of ``values [...]`` over the examples where ``where`` is True (all when
    ``None``); masked-out values (NaN included) do not reach the result."""
    if where is None:
        return jnp.mean(values)
    where = jnp.broadcast_to(jnp.asarray(where, bool), values.shape)
    total = jnp.sum(jnp.where(where, values, 0.0))
    return total / jnp.maximum(jnp.sum(where), 1)


# ----------------------------------------------------------------------------------
# The polynomial families: sum_i w_i term_i + sum_k theta_k (p_y - c)^k.

# How much each weighted term falls from a uniform prediction over C classes to a
# perfect one, and its per-example value from log p [..., C] and log p_y [...].
_TERM_DROP = {"nce": lambda c: 1.0 / c}
_TERMS = {"nce": lambda log_p, log_py: _nce(log_p, log_py)}


def _polynomial(coeffs: jax.Array, p_y: jax.Array) -> jax.Array:
    """``sum_{k>=1} theta_k (p_y - c)^k`` for ``coeffs = [c, theta_1, ...]``."""
    d = p_y - coeffs[0]
    acc = jnp.zeros_like(d)
    for k in range(coeffs.shape[0] - 1, 0, -1):  # Horner: d (th1 + d (th2 + ...))
        acc = acc * d + coeffs[k]
    return acc * d


def _poly_loss(terms: tuple[str, ...], params, logits, labels) -> jax.Array:
    """``sum_i w_i term_i + sum_k theta_k (p_y - c)^k`` for ``params = [w..., c,
    theta_1, ...]``."""
    _check_params(params, "params", len(terms) + 2, None)
    log_p, log_py = _log_probs(logits, labels)
    params = jnp.asarray(params, jnp.float32)
    active = sum(params[i] * _TERMS[term](log_p, log_py)
                 for i, term in enumerate(terms))
    return active + _polynomial(params[len(terms):], jnp.exp(log_py))


@per_example
def taylor_loss(coeffs: jax.Array, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """ARL's family: a polynomial in the probability of the labelled class.

    ``loss = sum_{k=1..K} theta_k (p_y - c)^k`` with ``coeffs = [c, theta_1, ...,
    theta_K]``, any ``K >= 1``. The constant term ``theta_0`` is left out: a constant
    changes no gradient, so the search would waste a dimension on it. With ``c = 1``
    and ``theta_k = (-1)^k / k`` (`family_init`) this is the Taylor series of
    ``-log p_y`` around ``p_y = 1``; ``K = 1`` is MAE up to scale and a constant.

    Gao, Gouk & Hospedales, "Searching for Robustness: Loss Learning for Noisy
    Classification Tasks", ICCV 2021.

    Args:
      coeffs: ``[K + 1]`` float, ``[c, theta_1, ..., theta_K]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    return _poly_loss((), coeffs, logits, labels)


def _taylor_nce(params, logits, labels) -> jax.Array:
    return _poly_loss(("nce",), params, logits, labels)


@per_example
def taylor_nce_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """ARL's polynomial plus a searched weight of normalised cross-entropy.

    ``loss = a NCE + sum_{k=1..K} theta_k (p_y - c)^k`` with ``params = [a, c,
    theta_1, ..., theta_K]`` and ``NCE = log p_y / sum_j log p_j`` (Ma et al., ICML
    2020). The polynomial alone sees only ``p_y``, which makes it either steep near
    ``p_y = 0`` (CE-like: it fits noisy labels) or flat there (MAE-like: it
    under-fits clean ones); the NCE term adds an "active" part that looks at every
    class while staying bounded. The family contains ARL's Taylor family (``a = 0``)
    and NCE+MAE (``a = 1, c = 1, theta_1 = -1``).

    Args:
      params: ``[K + 2]`` float, ``[a, c, theta_1, ..., theta_K]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses.
    """
    return _taylor_nce(params, logits, labels)


def class_prior_penalty(
    logits: jax.Array, where: jax.Array | None = None, axis: int | tuple | None = None
) -> jax.Array:
    """How far a batch's mean prediction is from the uniform class prior.

    ``KL(u || m) = sum_k (1/C) log((1/C) / m_k)`` with ``m`` the mean of the softmax
    predictions over the batch and ``u`` uniform over the ``C`` classes (Tanaka et
    al., "Joint Optimization Framework for Learning with Noisy Labels", CVPR 2018).
    It is 0 when the network predicts every class equally often and grows as one
    class's share falls: when a class collapses into another under asymmetric noise,
    a loss with little gradient at small ``p_y`` leaves it there, while this pulls it
    back. It assumes balanced classes. A batch-level term: one value for the batch,
    not per example; add it to an objective (`arl_objective`, `with_class_prior`).

    Args:
      logits: ``[..., C]`` scores.
      where: optional bool mask over the examples (``logits.shape[:-1]``); only
        the examples where it is True enter the mean prediction.
      axis: the leading axes that form the batch (default: all of them). For an
        ensemble ``[E, B, C]`` pass ``axis=1`` to get one penalty per member.

    Returns:
      float32 penalty: a scalar, or one per index of the axes not in ``axis``.
    """
    logits = jnp.asarray(logits)
    if logits.ndim < 1 or logits.shape[-1] < 2:
        raise ValueError(f"logits must have shape [..., C] with C >= 2; got "
                         f"{logits.shape}")
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    c = log_p.shape[-1]
    lead = tuple(range(log_p.ndim - 1))
    axes = lead if axis is None else tuple(
        a % (log_p.ndim - 1) for a in np.atleast_1d(axis))
    if where is None:
        count = math.prod(log_p.shape[a] for a in axes)
        log_m = jax.nn.logsumexp(log_p, axis=axes) - jnp.log(count)  # [..., C]
    else:
        where = jnp.broadcast_to(jnp.asarray(where, bool), log_p.shape[:-1])[..., None]
        masked = jnp.where(where, log_p, -jnp.inf)
        count = jnp.maximum(jnp.sum(where, axis=axes), 1)
        log_m = jax.nn.logsumexp(masked, axis=axes) - jnp.log(count)
    return -jnp.mean(log_m, axis=-1) - jnp.log(c)


def _prior_penalty_term(params, logits, where=None) -> jax.Array:
    """``lambda * class_prior_penalty`` with ``lambda = params[-1]``."""
    return jnp.asarray(params, jnp.float32)[-1] * class_prior_penalty(logits, where)


@per_example
def taylor_nce_prior_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """The per-example part of the "taylor_nce_prior" family: `taylor_nce_loss` of
    ``params[:-1]``; its objective (`family_objective`) adds ``params[-1]`` times
    `class_prior_penalty` to the batch mean.

    ``objective = mean_i (a NCE_i + sum_k theta_k (p_y,i - c)^k) + lambda KL(u ||
    m)`` with ``params = [a, c, theta_1, ..., theta_K, lambda]``. A loss flat at
    small ``p_y`` resists wrong labels but also lets a whole class stay predicted as
    another; the penalty acts on the batch's class shares instead, which symmetric
    noise leaves alone. With ``lambda = 0`` it is "taylor_nce".

    Args:
      params: ``[K + 3]`` float, ``[a, c, theta_1, ..., theta_K, lambda]``.
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.

    Returns:
      ``[...]`` float32 per-example losses (without the batch term).
    """
    _check_params(params, "params", 4, None)
    return _taylor_nce(jnp.asarray(params, jnp.float32)[:-1], logits, labels)


@per_example
def taylorglo_loss(
    params: jax.Array, logits: jax.Array, labels: jax.Array
) -> jax.Array:
    """TaylorGLO's family: a 3rd-order bivariate Taylor polynomial in (y, p).

    With ``params = [c_y, c_p, t_1, ..., t_6]``, one-hot label ``y_i``, softmax
    ``p_i``, ``v_i = y_i - c_y`` and ``u_i = p_i - c_p``, the loss is
    ``-(1/C) sum_i [t_1 u + t_2 u^2/2 + t_3 u^3/6 + t_4 v u + t_5 v u^2/2
    + t_6 v^2 u/2]``: the terms of the expansion around ``(c_y, c_p)`` without the
    constant and without the terms in ``v`` alone (they change no gradient). The
    factorial weights, the sign and the mean over classes follow the paper, so
    published parameter vectors can be used.

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


# ----------------------------------------------------------------------------------
# The family table: adding a family is one entry here.


@dataclasses.dataclass(frozen=True)
class Family:
    """One searchable loss family.

    Attributes:
      loss: per-example ``fn(params, logits, labels, *, where=None) -> [...]``.
      reference: the paper it comes from.
      weights: for a polynomial family, the weighted terms before ``c`` (``c`` sits
        at index ``len(weights)``); ``None`` for a family of another form.
      extra: parameters after the polynomial (the prior family's ``lambda``).
      batch_term: ``fn(params, logits, where=None) -> scalar`` added to the batch
        mean by `family_objective`, or ``None``.
      fixed_size: the parameter count of a family without an order (TaylorGLO).
      base: the family this one extends (it holds every loss of ``base``).
    """

    loss: Callable[..., jax.Array]
    reference: str
    weights: tuple[str, ...] | None = ()
    extra: int = 0
    batch_term: Callable[..., jax.Array] | None = None
    fixed_size: int | None = None
    base: str | None = None

    @property
    def polynomial(self) -> bool:
        """Whether the family is ``sum_i w_i term_i + polynomial in p_y``."""
        return self.weights is not None


_ARL = "Gao, Gouk & Hospedales, ICCV 2021"
FAMILIES: Mapping[str, Family] = {
    "taylor": Family(taylor_loss, _ARL),
    "taylor_nce": Family(taylor_nce_loss, f"{_ARL} + NCE (Ma et al., ICML 2020)",
                         weights=("nce",), base="taylor"),
    "taylor_nce_prior": Family(
        taylor_nce_prior_loss, "taylor_nce + class prior (Tanaka et al., CVPR 2018)",
        weights=("nce",), extra=1, batch_term=_prior_penalty_term, base="taylor_nce"),
    "taylorglo": Family(taylorglo_loss, "Gonzalez & Miikkulainen, GECCO 2021",
                        weights=None, fixed_size=8),
}


def _family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; valid: {sorted(FAMILIES)}")
    return FAMILIES[name]


def family_loss(family: str, params, logits, labels, where=None) -> jax.Array:
    """Per-example losses ``[...]`` of any family (without its batch term)."""
    return _family(family).loss(params, logits, labels, where=where)


def family_objective(family: str, params, logits, labels, where=None) -> jax.Array:
    """The scalar a training step minimises with a family's loss: the masked mean of
    its per-example losses plus its batch term (if any)."""
    fam = _family(family)
    out = masked_mean(fam.loss(params, logits, labels, where=where), where)
    if fam.batch_term is not None:
        out = out + fam.batch_term(params, logits, where)
    return out


def family_num_params(family: str, order: int) -> int:
    """Length of a parameter vector: ``order + 1`` for "taylor", ``order + 2`` for
    "taylor_nce", ``order + 3`` for "taylor_nce_prior", 8 for "taylorglo" (whose
    order is ignored).

    Args:
      family: a key of `FAMILIES`.
      order: the polynomial order K (an integer >= 1).
    """
    fam = _family(family)
    if fam.fixed_size is not None:
        return fam.fixed_size
    if int(order) != order or order < 1:
        raise ValueError(f"{family} order must be an integer >= 1; got {order}")
    return int(order) + len(fam.weights) + 1 + fam.extra


def family_init(family: str, order: int) -> np.ndarray:
    """A sensible starting mean for CMA-ES: a cross-entropy-like member.

    Polynomial families: every weight 0, ``c = 1``, ``theta_k = (-1)^k / k`` (the
    Taylor series of ``-log p`` around ``p = 1``, ``-log p = sum_k (1 - p)^k / k``,
    truncated at ``order``) and any extra parameter (the prior weight) 0.
    "taylorglo": ``c_y = 0, c_p = 1, t_4 = 1, t_5 = -1``, the rest 0, which gives
    ``((1 - p_y) + (1 - p_y)^2 / 2) / C``: the second-order series of
    cross-entropy divided by C.

    Returns:
      ``[family_num_params(family, order)]`` float32 array.
    """
    n = family_num_params(family, order)  # checks both
    fam = FAMILIES[family]
    if not fam.polynomial:
        return np.array([0, 1, 0, 0, 0, 1, -1, 0], np.float32)
    k = np.arange(1, int(order) + 1)
    out = np.concatenate([np.zeros(len(fam.weights)), [1.0], (-1.0) ** k / k,
                          np.zeros(fam.extra)])
    assert len(out) == n
    return out.astype(np.float32)


def _contains(into: str, family: str) -> bool:
    """Whether family `into` holds every loss of `family` (by following `base`)."""
    while into is not None:
        if into == family:
            return True
        into = FAMILIES[into].base
    return False


def embed_coeffs(family: str, coeffs, into: str) -> list[float]:
    """The same loss written in a larger family: "taylor" is "taylor_nce" with NCE
    weight ``a = 0``, which is "taylor_nce_prior" with ``lambda = 0``. The missing
    weights are zeros, so the loss is exactly the same function.

    Raises:
      ValueError: if `into` does not contain `family`.
    """
    if family not in FAMILIES or into not in FAMILIES or not _contains(into, family):
        raise ValueError(f"family {into!r} does not contain family {family!r}")
    src, dst = FAMILIES[family], FAMILIES[into]
    params = [float(v) for v in np.asarray(coeffs, np.float64)]
    if family == into:
        return params
    i, end = len(src.weights), len(params) - src.extra
    weights = params[:i] + [0.0] * (len(dst.weights) - i)
    return weights + params[i:end] + params[end:] + [0.0] * (dst.extra - src.extra)


def normalise_coeffs(family: str, coeffs, num_classes: int = 10) -> tuple[list, float]:
    """The same loss, re-centred at ``p_y = 1`` and put on cross-entropy's scale.

    A search returns a polynomial centred wherever CMA-ES left ``c`` and at an
    arbitrary overall scale, since fitness sees neither: a constant changes no
    gradient, and Adam divides the gradient's scale out. For a drop-in loss both are
    rewritten: the polynomial is expanded around ``c = 1`` exactly (binomial
    theorem, float64; only the constant term is dropped) and every linear weight
    (NCE, thetas, the prior weight) is divided by ``s / ln C``, where ``s`` is the
    drop of the per-example loss from a uniform prediction to a perfect one: the loss
    then falls by ``ln C`` between the two, as cross-entropy does. The gradient field
    is unchanged up to the positive factor ``ln C / s``.

    Returns:
      ``(normalised coeffs as a list of floats, the factor s / ln C divided out)``.

    Raises:
      ValueError: for a non-polynomial family, or if the loss does not fall from a
        uniform to a perfect prediction (``s <= 0``: not a loss to ship).
    """
    fam = _family(family)
    if not fam.polynomial:
        raise ValueError(f"normalise_coeffs handles the polynomial families; got "
                         f"family {family!r}")
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes}")
    params = np.asarray(coeffs, np.float64)
    body = params[: len(params) - fam.extra]
    out, drop = _recentre(fam.weights, body, num_classes)
    if not np.isfinite(drop) or drop <= 0:
        raise ValueError(
            f"this {family} loss does not fall from a uniform to a perfect prediction "
            f"(drop {drop:.4g}); it cannot be put on cross-entropy's scale"
        )
    factor = drop / math.log(num_classes)
    out = np.concatenate([out, params[len(body):]])
    i = len(fam.weights)
    out[np.arange(len(out)) != i] /= factor  # every linear weight; c stays 1
    return [float(v) for v in out], factor


def _recentre(terms: tuple[str, ...], params: np.ndarray, num_classes: int):
    """``(params re-centred at c = 1, the drop from a uniform to a perfect
    prediction)`` for a polynomial family's ``[w..., c, theta...]``, in float64."""
    i = len(terms)
    if len(params) < i + 2:
        raise ValueError(f"need at least {i + 2} parameters (order >= 1); got "
                         f"{len(params)}")
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
                 for w, term in zip(weights, terms, strict=True))
    return np.concatenate([weights, [1.0], recentred]), float(active) + poly_drop


# ----------------------------------------------------------------------------------
# Loss files (a search's best_loss.json, the shipped arl.json) and the ARL loss.

_PRETRAINED_KEYS = {"family", "coeffs", "fitness", "generation", "command", "seed",
                    "date", "provisional"}


def read_loss_file(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """``{"family", "coeffs", ...}`` of a loss file (a path) or dict, checked: a known
    family and as many finite coefficients as that family takes."""
    where = "loss"
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        where = os.fspath(source)
        try:
            with open(source) as fh:
                data = json.load(fh)
        except OSError as err:
            raise ValueError(f"cannot read loss file {where}: {err.strerror}") from None
        except ValueError as err:
            raise ValueError(f"loss file {where} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or "family" not in data or "coeffs" not in data:
        raise ValueError(f"{where}: a loss file needs 'family' and 'coeffs' keys")
    fam = data["family"]
    if fam not in FAMILIES:
        raise ValueError(f"{where}: unknown family {fam!r}; valid: {sorted(FAMILIES)}")
    coeffs = np.asarray(data["coeffs"], np.float64)
    if coeffs.ndim != 1 or not np.all(np.isfinite(coeffs)) or not np.all(
        np.abs(coeffs) < np.finfo(np.float32).max
    ):
        raise ValueError(f"{where}: 'coeffs' must be a list of finite float32 numbers")
    if FAMILIES[fam].polynomial:
        order = len(coeffs) - family_num_params(fam, 1) + 1
        ok = order >= 1
    else:
        ok = len(coeffs) == family_num_params(fam, 1)
    if not ok:
        raise ValueError(f"{where}: {len(coeffs)} coefficients do not fit family {fam}")
    return data


@functools.cache
def _read_packaged() -> dict[str, Any]:
    path = importlib.resources.files("arl_jax").joinpath("pretrained", "arl.json")
    data = read_loss_file(json.loads(path.read_text()))
    missing = _PRETRAINED_KEYS - set(data)
    if missing:
        raise ValueError(f"{path}: bad pretrained file (missing {sorted(missing)})")
    return data


def _shipped(loss_file=None) -> dict[str, Any]:
    """The loss file in use: `loss_file`, else $ARL_JAX_LOSS_FILE, else the packaged
    arl.json."""
    source = loss_file or os.environ.get(ARL_LOSS_ENV)
    return read_loss_file(source) if source else _read_packaged()


def load_pretrained(loss_file=None) -> dict[str, Any]:
    """The ARL coefficients in use with their provenance: from `loss_file`, else the
    file named by $ARL_JAX_LOSS_FILE, else the packaged ``arl_jax/pretrained/arl.json``
    (read once, then cached).

    Returns:
      A fresh dict with keys family, coeffs and the provenance the file holds.
    """
    return copy.deepcopy(_shipped(loss_file))


def _coeffs_of(coeffs, family, loss_file) -> tuple[str, jax.Array]:
    if coeffs is not None and family is None:
        raise ValueError(
            "arl_loss: coeffs= needs family= (e.g. family='taylor_nce_prior'); or use "
            "arl_jax.losses.load_loss(path_or_dict) for a best_loss.json"
        )
    if coeffs is None:
        data = _shipped(loss_file)
        family, coeffs = data["family"], data["coeffs"]
    return family, jnp.asarray(coeffs, jnp.float32)


def arl_loss(
    logits: jax.Array, labels: jax.Array, *, where: jax.Array | None = None,
    coeffs=None, family: str | None = None, loss_file=None,
) -> jax.Array:
    """The learned robust loss (ARL), per example: a drop-in for cross-entropy.

    Gao, Gouk & Hospedales, "Searching for Robustness: Loss Learning for Noisy
    Classification Tasks", ICCV 2021.

    The shipped loss is family "taylor_nce_prior": a searched NCE weight and
    polynomial in ``p_y`` (this function), plus a searched weight (0.91) of
    `class_prior_penalty` of the batch. The penalty is a batch-level term, so it is
    not here: train with `arl_objective`, which adds it to the batch mean, to get
    the shipped recipe.

    Args:
      logits, labels: ``[..., C]`` scores, ``[...]`` int labels in ``[0, C)``.
      where: optional bool mask over the examples; masked examples get 0.
      coeffs, family: another loss of a family in `FAMILIES` (both or neither).
      loss_file: a best_loss.json/arl.json path to use instead of the shipped loss
        (also settable for the whole process with $ARL_JAX_LOSS_FILE).

    Returns:
      ``[...]`` float32 per-example losses.
    """
    family, coeffs = _coeffs_of(coeffs, family, loss_file)
    return family_loss(family, coeffs, logits, labels, where)


def arl_objective(
    logits: jax.Array, labels: jax.Array, where: jax.Array | None = None, *,
    coeffs=None, family: str | None = None, loss_file=None,
) -> jax.Array:
    """The shipped recipe as one scalar to minimise: the (masked) batch mean of
    `arl_loss` plus the family's batch term (0.91 x `class_prior_penalty` for the
    shipped loss). Arguments as in `arl_loss`."""
    family, coeffs = _coeffs_of(coeffs, family, loss_file)
    return family_objective(family, coeffs, logits, labels, where)


def load_loss(source: str | os.PathLike | Mapping[str, Any]) -> LossFn:
    """The per-example loss ``fn(logits, labels, *, where=None)`` of a loss file (a
    search's best_loss.json, an arl.json) or of a dict with family and coeffs."""
    data = read_loss_file(source)
    return functools.partial(arl_loss, family=data["family"], coeffs=data["coeffs"])


def load_objective(source: str | os.PathLike | Mapping[str, Any]) -> ObjectiveFn:
    """The objective ``fn(logits, labels, where=None) -> scalar`` of a loss file:
    `load_loss`'s mean plus the family's batch term."""
    data = read_loss_file(source)
    return functools.partial(arl_objective, family=data["family"],
                             coeffs=data["coeffs"])


def with_class_prior(loss: LossFn | str, weight: float = 1.0,
                     **hyperparams: Any) -> ObjectiveFn:
    """The objective of any loss plus ``weight`` times `class_prior_penalty`.

    ``with_class_prior("nce_mae")(logits, labels)`` is the batch mean of
    ``nce_mae(logits, labels)`` plus ``class_prior_penalty(logits)``. It assumes
    balanced classes.

    Args:
      loss: a per-example loss function or a name of `LOSSES`.
      weight: the penalty's weight (finite, ``>= 0``).
      **hyperparams: bound to ``loss`` when it is a name (`get_loss`).

    Returns:
      ``fn(logits, labels, where=None) -> scalar``.
    """
    weight = float(weight)
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"with_class_prior: weight must be finite and >= 0, got "
                         f"{weight}")
    if isinstance(loss, str):
        loss = get_loss(loss, **hyperparams)
    elif hyperparams:
        raise ValueError("with_class_prior: hyper-parameters are bound by name only; "
                         f"got {sorted(hyperparams)} with a function")

    def objective(logits, labels, where=None) -> jax.Array:
        values = loss(logits, labels, where=where)
        return masked_mean(values, where) + weight * class_prior_penalty(logits,
                                                                         where)

    return objective


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
_NOT_HYPER = ("logits", "labels", "where", "coeffs", "family", "loss_file")


def loss_hyperparams(name: str) -> dict[str, Any]:
    """The hyper-parameters of loss ``name`` with their defaults (``{}`` if none)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {sorted(LOSSES)}")
    params = inspect.signature(LOSSES[name]).parameters.values()
    return {p.name: p.default for p in params if p.name not in _NOT_HYPER}


def get_loss(name: str, **hyperparams: Any) -> LossFn:
    """Look a per-example loss up by name and bind its hyper-parameters.

    Args:
      name: a key of `LOSSES`.
      **hyperparams: keyword hyper-parameters of that loss (see `loss_hyperparams`).

    Returns:
      ``fn(logits, labels, *, where=None) -> [...]``.
    """
    valid = loss_hyperparams(name)
    unknown = sorted(set(hyperparams) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter(s) {unknown} for loss {name!r}; "
            f"valid: {sorted(valid) or 'none'}"
        )
    return functools.partial(LOSSES[name], **hyperparams)


def get_objective(name: str, **hyperparams: Any) -> ObjectiveFn:
    """The objective ``fn(logits, labels, where=None) -> scalar`` that training with
    loss ``name`` minimises: the batch mean, and for "arl" the shipped batch term
    too (`arl_objective`)."""
    if name == "arl":
        if hyperparams:
            raise ValueError(f"loss 'arl' takes no hyper-parameters; got "
                             f"{sorted(hyperparams)}")
        return arl_objective
    loss = get_loss(name, **hyperparams)
    return lambda logits, labels, where=None: masked_mean(
        loss(logits, labels, where=where), where)

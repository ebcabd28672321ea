"""Label-noise models: pure, jit-able functions of a JAX key.

Each model takes a key first and returns int32 labels shaped like its input. Static
arguments (`num_classes`, `mapping`, `include_true`) must be Python values; under
`jax.jit` mark them static (`jax.jit(symmetric, static_argnums=3)`). `rate` may be a
traced value: the range check then cannot run and is skipped. Bad concrete inputs
raise ValueError before anything is traced.

`apply_noise(key, dataset, "symmetric:0.4")` corrupts a `Dataset`'s training labels
only; validation and test labels stay clean.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from arl_jax.data import Dataset

NOISE_KINDS = ("none", "symmetric", "asymmetric", "pairflip", "instance", "nearest")

# Class-conditional flips between visually similar classes. MNIST-like digits and
# CIFAR-10 follow Patrini et al. (CVPR 2017, "Making deep neural networks robust to
# label noise: a loss correction approach"), used since by GCE, SCE, APL and ARL.
DIGITS_MAPPING = types.MappingProxyType({2: 7, 3: 8, 5: 6, 6: 5, 7: 1})
# Fashion-MNIST: BOOT -> SNEAKER, SNEAKER -> SANDAL, PULLOVER -> SHIRT, COAT -> DRESS
# (classes 9->7, 7->5, 2->6, 4->3), the class-dependent noise of Zhang & Sabuncu,
# "Generalized cross entropy loss ..." (NeurIPS 2018, Sec. 4), reused by Kim et al.,
# "NLNL: negative learning for noisy labels" (ICCV 2019).
FASHION_MNIST_MAPPING = types.MappingProxyType({9: 7, 7: 5, 2: 6, 4: 3})
# CIFAR-10: truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog.
CIFAR10_MAPPING = types.MappingProxyType({9: 1, 2: 0, 4: 7, 3: 5, 5: 3})
# The official CIFAR-100 fine -> coarse (superclass) labels: `coarse_labels` of the
# python release (https://www.cs.toronto.edu/~kriz/cifar.html), indexed by fine id
# (fine ids are the alphabetical class names, as in TFDS). Each superclass has 5.
# fmt: off
CIFAR100_COARSE = np.array([
     4,  1, 14,  8,  0,  6,  7,  7, 18,  3,
     3, 14,  9, 18,  7, 11,  3,  9,  7, 11,
     6, 11,  5, 10,  7,  6, 13, 15,  3, 15,
     0, 11,  1, 10, 12, 14, 16,  9, 11,  5,
     5, 19,  8,  8, 15, 13, 14, 17, 18, 10,
    16,  4, 17,  4,  2,  0, 17,  4, 18, 17,
    10,  3,  2, 12, 12, 16, 12,  1,  9, 19,
     2, 10,  0,  1, 16, 12,  9, 13, 15, 13,
    16, 19,  2,  4,  6, 19,  5,  5,  8, 19,
    18,  1,  2, 15,  6,  0, 17,  8, 14, 13,
], dtype=np.int32)  # [100]
# fmt: on
CIFAR100_COARSE.setflags(write=False)


def _cifar100_mapping() -> Mapping[int, int]:
    """Each fine class -> the next fine class (by id, cyclically) of its superclass."""
    out = {}
    for coarse in range(20):
        fine = np.flatnonzero(CIFAR100_COARSE == coarse)  # sorted, 5 ids
        for i, f in enumerate(fine):
            out[int(f)] = int(fine[(i + 1) % len(fine)])
    return types.MappingProxyType(out)


CIFAR100_MAPPING = _cifar100_mapping()
# dataset name -> (mapping, number of classes)
ASYMMETRIC_MAPPINGS: Mapping[str, tuple[Mapping[int, int], int]] = (
    types.MappingProxyType(
        {
            "mnist": (DIGITS_MAPPING, 10),
            "emnist/digits": (DIGITS_MAPPING, 10),
            "usps": (DIGITS_MAPPING, 10),
            "digits": (DIGITS_MAPPING, 10),
            "digits28": (DIGITS_MAPPING, 10),
            "fontdigits": (DIGITS_MAPPING, 10),
            "fontdigits_mild": (DIGITS_MAPPING, 10),
            "fontdigits_blend": (DIGITS_MAPPING, 10),
            "fontdigits_blend_hard": (DIGITS_MAPPING, 10),
            "mnist1d": (DIGITS_MAPPING, 10),
            "fashion_mnist": (FASHION_MNIST_MAPPING, 10),
            "cifar10": (CIFAR10_MAPPING, 10),
            "cifar100": (CIFAR100_MAPPING, 100),
        }
    )
)


def symmetric(
    key: jax.Array,
    labels: jax.Array,
    rate: float | jax.Array,
    num_classes: int,
    include_true: bool = False,
) -> jax.Array:
    """Symmetric (uniform) noise: each label flips with probability `rate` to a class
    drawn uniformly from the `num_classes - 1` other classes.

    With `include_true=True` the new class is drawn from all classes, so the label
    actually changes with probability `rate * (C - 1) / C`.

    Args:
      key: a JAX PRNG key.
      labels: int array of classes in [0, num_classes).
      rate: flip probability in [0, 1).
      num_classes: number of classes C (static).
      include_true: draw over all classes instead of the others.

    Returns:
      int32 noisy labels, shaped like `labels`.
    """
    num_classes = _check_num_classes(num_classes)
    _check_rate(rate)
    labels = _check_labels(labels, num_classes)
    return _symmetric(key, labels, rate, num_classes, include_true)


def asymmetric(
    key: jax.Array,
    labels: jax.Array,
    rate: float | jax.Array,
    mapping: str | Mapping[int, int] | np.ndarray,
    num_classes: int | None = None,
) -> jax.Array:
    """Asymmetric (class-conditional) noise: a label of class `src` with an entry
    `src -> dst` in `mapping` becomes `dst` with probability `rate`; classes without
    an entry never change. With a transition matrix ``T [C, C]`` (rows sum to 1) a
    label ``i`` is replaced with probability `rate` by a class drawn from ``T[i]``.

    Args:
      key: a JAX PRNG key.
      labels: int array of classes.
      rate: flip probability in [0, 1).
      mapping: a dataset name in `ASYMMETRIC_MAPPINGS` (mnist, emnist/digits, usps,
        digits, mnist1d: 2->7, 3->8, 5<->6, 7->1; fashion_mnist: see
        `FASHION_MNIST_MAPPING`; cifar10: truck->automobile, bird->airplane,
        deer->horse, cat<->dog; cifar100: the next class within its superclass)
        or a dict {src: dst} of non-negative ints, or a row-stochastic matrix
        ``[C, C]``. Static: under jit pass a name as a static argument, or close
        over a dict with functools.partial.
      num_classes: the number of classes C (a dict's targets must lie below it);
        implied by a dataset name or a matrix.

    Returns:
      int32 noisy labels, shaped like `labels`.
    """
    _check_rate(rate)
    if isinstance(mapping, np.ndarray | jax.Array) and np.ndim(mapping) == 2:
        matrix = _check_matrix(mapping, num_classes)
        labels = _check_labels(labels, matrix.shape[0])
        k_flip, k_class = jax.random.split(key)
        drawn = jax.random.categorical(k_class, jnp.log(jnp.asarray(matrix))[labels])
        flip = jax.random.bernoulli(k_flip, rate, labels.shape)
        return jnp.where(flip, drawn.astype(jnp.int32), labels)
    table, implied = _mapping_table(mapping, num_classes)
    labels = _check_labels(labels, implied)
    return _asymmetric(key, labels, rate, jnp.asarray(table))


def pairflip(
    key: jax.Array, labels: jax.Array, rate: float | jax.Array, num_classes: int
) -> jax.Array:
    """Pair-flip noise (Han et al., "Co-teaching", NeurIPS 2018): each label `y`
    becomes `(y + 1) mod num_classes` with probability `rate`.

    Returns:
      int32 noisy labels, shaped like `labels`.
    """
    num_classes = _check_num_classes(num_classes)
    _check_rate(rate)
    labels = _check_labels(labels, num_classes)
    return _pairflip(key, labels, num_classes, rate)


def nearest_class_mapping(
    features, labels, num_classes: int
) -> Mapping[int, int]:
    """Each class -> the class whose mean input is nearest (squared Euclidean
    distance between the class means of `features`, flattened per example): a
    data-driven stand-in for the "visually similar" pairs of the hand-made
    asymmetric mappings, for any dataset. On Fashion-MNIST it pairs pullover with
    coat, sandal with sneaker, T-shirt with shirt. A class absent from `labels`
    maps to itself.

    Args:
      features: array [n, ...] of inputs.
      labels: int array [n] of clean classes in [0, num_classes).
      num_classes: number of classes C.

    Returns:
      a read-only dict {class: nearest other class}.
    """
    num_classes = _check_num_classes(num_classes)
    y = np.asarray(_check_labels(labels, num_classes))
    x = np.asarray(features)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} feature rows for {len(y)} labels")
    x = x.reshape(len(y), -1)
    present = np.array([np.any(y == c) for c in range(num_classes)])
    means = np.zeros((num_classes, x.shape[1]))
    for c in np.flatnonzero(present):
        means[c] = x[y == c].mean(0, dtype=np.float64)
    dist = ((means[:, None] - means[None]) ** 2).sum(-1)
    dist[:, ~present] = np.inf
    np.fill_diagonal(dist, np.inf)
    return types.MappingProxyType({
        c: int(dist[c].argmin()) if present[c] and present.sum() > 1 else c
        for c in range(num_classes)})  # fmt: skip


def nearest(
    key: jax.Array, features, labels: jax.Array, rate: float, num_classes: int
) -> jax.Array:
    """Nearest-class noise: every label flips with probability `rate` to the class
    whose mean input is nearest to its class's (`nearest_class_mapping`, computed
    from `features` and the clean `labels`). Like the hand-made asymmetric mappings
    it sends labels to a similar class, but every class flips, on any dataset: on
    Fashion-MNIST at 0.4 a bounded (MAE-like) loss can let a class collapse into
    its neighbour, which the digits mapping rarely shows.

    Returns:
      int32 noisy labels, shaped like `labels`.
    """
    mapping = nearest_class_mapping(features, labels, num_classes)
    return asymmetric(key, labels, rate, mapping)


def instance_dependent(
    key: jax.Array,
    features: jax.Array,
    labels: jax.Array,
    rate: float | jax.Array,
    num_classes: int,
    norm_std: float = 0.1,
) -> jax.Array:
    """Instance-dependent noise of Xia et al., "Part-dependent label noise: towards
    instance-dependent label noise" (NeurIPS 2020), as in the authors' generator
    (`get_instance_noisy_label`):

    1. per-sample flip rates q_i ~ N(rate, norm_std^2) truncated to [0, 1];
    2. a random projection W ~ N(0, 1) of shape [C, d, C];
    3. scores s_i = x_i^T W[y_i] (d = features per example, flattened), the true
       class masked out; sample i flips with probability q_i to a class drawn from
       softmax(s_i) over the other classes.

    The realised flip rate is mean(q_i): `rate` for rate >= 0.3 or so, a little more
    below (the truncation at 0 lifts the mean: about 0.13 for rate 0.1). Rate 0
    changes nothing. Cost: O(n d C^2) flops (one [n, d] x [d, C] product per class).

    Args:
      key: a JAX PRNG key.
      features: float array [n, ...]; flattened per example.
      labels: int array [n] of classes in [0, num_classes).
      rate: mean flip rate in [0, 1).
      num_classes: number of classes C (static).
      norm_std: standard deviation of the per-sample rates (0.1 in the paper).

    Returns:
      int32 noisy labels [n].
    """
    num_classes = _check_num_classes(num_classes)
    _check_rate(rate)
    labels = _check_labels(labels, num_classes)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if not (isinstance(norm_std, int | float) and norm_std > 0):
        raise ValueError(f"norm_std must be a positive number, got {norm_std!r}")
    x = jnp.asarray(features, jnp.float32).reshape(labels.shape[0], -1)  # [n, d]
    return _instance(key, x, labels, rate, num_classes, float(norm_std))


# Jitted cores: one compilation per shape; the public wrappers validate first.
@functools.partial(jax.jit, static_argnums=(3, 4))
def _symmetric(key, labels, rate, num_classes, include_true):
    k_flip, k_class = jax.random.split(key)
    flip = jax.random.bernoulli(k_flip, rate, labels.shape)
    if include_true:
        new = jax.random.randint(k_class, labels.shape, 0, num_classes, jnp.int32)
    else:  # a uniform non-zero offset is a uniform draw over the other classes
        offset = jax.random.randint(k_class, labels.shape, 1, num_classes, jnp.int32)
        new = (labels + offset) % num_classes
    return jnp.where(flip, new, labels)


@jax.jit
def _asymmetric(key, labels, rate, table):
    size = table.shape[0]
    target = jnp.where(labels < size, table[jnp.clip(labels, 0, size - 1)], labels)
    flip = jax.random.bernoulli(key, rate, labels.shape)
    return jnp.where(flip, target, labels)


@functools.partial(jax.jit, static_argnums=2)
def _pairflip(key, labels, num_classes, rate):
    flip = jax.random.bernoulli(key, rate, labels.shape)
    return jnp.where(flip, (labels + 1) % num_classes, labels)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _instance(key, x, labels, rate, num_classes, norm_std):
    n = labels.shape[0]
    k_q, k_w, k_flip, k_class = jax.random.split(key, 4)
    lower, upper = (0.0 - rate) / norm_std, (1.0 - rate) / norm_std
    q = rate + norm_std * jax.random.truncated_normal(k_q, lower, upper, (n,))
    q = jnp.where(rate > 0, jnp.clip(q, 0.0, 1.0), 0.0)  # [n]
    w = jax.random.normal(k_w, (num_classes, x.shape[1], num_classes))  # [C, d, C]

    def add_class(c, scores):  # scores [n, C]: rows of class c get x @ W[c]
        return jnp.where((labels == c)[:, None], x @ w[c], scores)

    zeros = jnp.zeros((n, num_classes), jnp.float32)
    scores = jax.lax.fori_loop(0, num_classes, add_class, zeros)
    # Flip with q_i, then draw from softmax over the other classes: one draw from
    # the reference's P_i = q_i softmax(s_i) + (1 - q_i) e_{y_i}.
    true = jax.nn.one_hot(labels, num_classes, dtype=bool)
    other = jax.random.categorical(k_class, jnp.where(true, -jnp.inf, scores))
    flip = jax.random.bernoulli(k_flip, q)
    return jnp.where(flip, other.astype(jnp.int32), labels)


def parse_noise_spec(spec: str) -> tuple[str, float]:
    """Parse "KIND:RATE" (KIND in symmetric, asymmetric, pairflip, instance, nearest) or
    "none" into (kind, rate); "none" gives ("none", 0.0).

    Raises ValueError for a malformed spec, an unknown kind, or a rate outside
    [0, 1) or not finite.
    """
    if not isinstance(spec, str):
        raise ValueError(f"noise spec must be a string, got {spec!r}")
    text = spec.strip().lower()
    if text == "none":
        return "none", 0.0
    kind, sep, rate_text = text.partition(":")
    kind = kind.strip()
    if not sep or kind not in NOISE_KINDS[1:]:
        raise ValueError(
            f"malformed noise spec {spec!r}: want 'none' or 'KIND:RATE' with KIND in "
            f"{', '.join(NOISE_KINDS[1:])}, e.g. 'symmetric:0.4'"
        )
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(
            f"noise spec {spec!r}: rate {rate_text!r} is not a number"
        ) from None
    _check_rate(rate)
    return kind, rate


def apply_noise(key: jax.Array, dataset: Dataset, spec: str) -> Dataset:
    """A copy of `dataset` whose `y_train` is corrupted as `spec` says (see
    `parse_noise_spec`), or replaced by the dataset's own noisy labels NAME for the
    spec ``labels:NAME`` (real human noise); validation and test sets are untouched.

    "asymmetric" uses the mapping registered for `dataset.name` (ValueError when
    there is none); "instance" and "nearest" use `dataset.x_train` as the features.
    """
    if isinstance(spec, str) and spec.startswith("labels:"):
        key = spec[len("labels:"):]
        if key not in dataset.noisy_labels:
            have = ", ".join(dataset.noisy_labels) or "none"
            raise ValueError(f"noise spec {spec!r}: dataset {dataset.name!r} has no "
                             f"noisy labels {key!r} (it has: {have})")
        return dataclasses.replace(dataset, y_train=dataset.noisy_labels[key])
    kind, rate = parse_noise_spec(spec)
    if kind == "none":
        return dataset
    y, c = dataset.y_train, dataset.num_classes
    if kind == "symmetric":
        noisy = symmetric(key, y, rate, c)
    elif kind == "asymmetric":
        if dataset.name not in ASYMMETRIC_MAPPINGS:
            raise ValueError(
                f"no asymmetric noise mapping for dataset {dataset.name!r}; datasets "
                f"with one: {', '.join(ASYMMETRIC_MAPPINGS)}"
            )
        noisy = asymmetric(key, y, rate, dataset.name)
    elif kind == "pairflip":
        noisy = pairflip(key, y, rate, c)
    elif kind == "nearest":
        noisy = nearest(key, dataset.x_train, y, rate, c)
    else:
        noisy = instance_dependent(key, dataset.x_train, y, rate, c)
    return dataclasses.replace(dataset, y_train=np.asarray(noisy, dtype=np.int32))


def realised_transition(clean, noisy, num_classes: int) -> np.ndarray:
    """The empirical transition matrix T[i, j] = P(noisy = j | clean = i), float64
    [C, C]; rows of classes absent from `clean` are all zero."""
    num_classes = _check_num_classes(num_classes)
    clean = np.asarray(clean).ravel()
    noisy = np.asarray(noisy).ravel()
    if clean.shape != noisy.shape:
        raise ValueError(f"clean {clean.shape} and noisy {noisy.shape} differ")
    for name, arr in (("clean", clean), ("noisy", noisy)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} labels must be integers, got {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} labels outside 0..{num_classes - 1}")
    counts = np.bincount(
        clean.astype(np.int64) * num_classes + noisy,
        minlength=num_classes * num_classes,
    )
    counts = counts.reshape(num_classes, num_classes).astype(np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)


def realised_rate(clean, noisy) -> float:
    """The share of labels that differ between `clean` and `noisy`: the noise rate
    that a label set (e.g. a dataset's real human labels) realises."""
    clean, noisy = np.asarray(clean).ravel(), np.asarray(noisy).ravel()
    if clean.shape != noisy.shape:
        raise ValueError(f"clean {clean.shape} and noisy {noisy.shape} differ")
    return float(np.mean(clean != noisy)) if clean.size else 0.0


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_num_classes(num_classes) -> int:
    if _is_tracer(num_classes) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"num_classes must be a static int, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return int(num_classes)


def _check_rate(rate) -> None:
    """ValueError unless `rate` is a finite scalar in [0, 1); tracers pass."""
    if _is_tracer(rate):
        if jnp.ndim(rate) != 0:
            raise ValueError(f"rate must be a scalar, got shape {jnp.shape(rate)}")
        return
    try:
        value = np.asarray(rate, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"rate must be a number, got {rate!r}") from None
    if value.ndim != 0:
        raise ValueError(f"rate must be a scalar, got shape {value.shape}")
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"noise rate must be in [0, 1), got {rate!r}")


def _check_labels(labels, num_classes: int | None) -> jax.Array:
    """int32 labels; ValueError for a non-integer dtype or (when concrete) a label
    outside [0, num_classes) (or < 0 when num_classes is None)."""
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f"labels must be integers, got {jnp.result_type(labels)}")
    if not _is_tracer(labels):
        arr = np.asarray(labels)
        if arr.size and arr.min() < 0:
            raise ValueError(f"labels must be >= 0, got {arr.min()}")
        if arr.size and num_classes is not None and arr.max() >= num_classes:
            raise ValueError(f"label {arr.max()} is outside 0..{num_classes - 1}")
    return jnp.asarray(labels, jnp.int32)


def _check_matrix(matrix, num_classes: int | None) -> np.ndarray:
    """A row-stochastic ``[C, C]`` float64 matrix, or a ValueError (without the
    array in the message)."""
    m = np.asarray(matrix, np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"a transition matrix must be square [C, C] with C >= 2; got "
                         f"shape {m.shape}")
    if num_classes is not None and m.shape[0] != num_classes:
        raise ValueError(f"a transition matrix of shape {m.shape} does not fit "
                         f"num_classes={num_classes}")
    if not np.all(np.isfinite(m)) or (m < 0).any() or not np.allclose(m.sum(1), 1.0,
                                                                     atol=1e-6):
        raise ValueError("a transition matrix needs finite entries >= 0 and rows "
                         "that sum to 1")
    return m


def _mapping_table(mapping, num_classes: int | None = None
                   ) -> tuple[np.ndarray, int | None]:
    """(table, num_classes): table[c] = target of class c (c itself if unmapped)."""
    if isinstance(mapping, str):
        if mapping not in ASYMMETRIC_MAPPINGS:
            raise ValueError(
                f"no asymmetric noise mapping for {mapping!r}; known: "
                f"{', '.join(ASYMMETRIC_MAPPINGS)} (or pass a dict {{src: dst}})"
            )
        mapping, num_classes = ASYMMETRIC_MAPPINGS[mapping]
    elif not isinstance(mapping, Mapping):
        what = (f"an array of shape {np.shape(mapping)}"
                if hasattr(mapping, "shape") else type(mapping).__name__)
        raise ValueError(f"mapping must be a dataset name, a dict {{src: dst}} or a "
                         f"[C, C] transition matrix; got {what}")
    items = list(mapping.items())
    if not all(isinstance(v, int | np.integer) and v >= 0 for kv in items for v in kv):
        raise ValueError(f"mapping must map non-negative ints, got {dict(items)}")
    if num_classes is not None:
        num_classes = _check_num_classes(num_classes)
        bad = [kv for kv in items if max(kv) >= num_classes]
        if bad:
            raise ValueError(f"mapping {dict(bad)} names a class >= num_classes="
                             f"{num_classes}")
    size = num_classes or (max((max(k, v) for k, v in items), default=0) + 1)
    table = np.arange(size, dtype=np.int32)
    for src, dst in items:
        table[src] = dst
    return table, num_classes

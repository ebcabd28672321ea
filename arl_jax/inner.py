"""The inner run: train a network from scratch with one candidate loss, as one pure
function, then vmap it over a population of losses and over seeds.

    inner_train = make_inner_train(cfg)            # (loss_params, key, data) -> Metrics
    evaluate = make_evaluate(cfg)                  # jit(vmap_pop(vmap_seeds(...)))
    metrics = evaluate(pop_params, keys, data)     # every leaf [pop, seeds]

Divergence: a step whose mean training loss is non-finite or larger than
``cfg.max_loss`` in magnitude, or whose gradient has a non-finite norm, is not applied
(parameters and optimiser state are kept by a select, so no NaN enters them) and marks
the run diverged for good; every later update is skipped too. A diverged run reports
``val_acc = test_acc = 0`` and ``train_loss = inf``. The magnitude bound matters for
Adam: it normalises gradients, so a loss scaled by 1e8 trains without a single NaN,
yet such a loss lies far outside the range the search means to explore and leaves
float32 gradients a few powers of ten from overflow; `max_loss = inf` turns the bound
off. Under vmap each candidate's flag and select are its own, so a diverging
candidate never changes another's result.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from arl_jax import losses
from arl_jax.models import ArchConfig, build_model, get_arch

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


def _hashable(value: Any) -> Any:
    """Lists and arrays (e.g. ARL coefficients) as tuples, so the config hashes."""
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(float(v) for v in np.asarray(value).ravel())
    return value


@dataclasses.dataclass(frozen=True)
class InnerConfig:
    """Static settings of one inner training run (frozen, hashable: it keys the
    compile cache of `make_evaluate`).

    The defaults are the recipe the search relies on, checked by
    ``tests/test_inner.py::test_default_recipe_fashion_mnist`` (clean labels,
    cross-entropy, ``Data.from_dataset(data.load("fashion_mnist"))``): MLP
    784-256-256-10, Adam, lr 2e-3 with cosine decay to 0, batch 128, 400 steps
    (0.95 epoch of the 54k training split), about 1 s a run once compiled on a
    2-core CPU. Measured over 16 seeds: 84.9-85.5% test accuracy (pixels / 255, as
    `data.load` gives them; 86.1-86.6% on standardised pixels). Cheaper recipes
    missed the 84% bar or cleared it by too little to be reliable (4 seeds each):
    300 steps 84.3-85.0%, 200 steps 83.6-84.1%, mlp-s (one hidden layer of 128)
    84.0-84.5%; a constant learning rate needs about 1000 steps and still varies
    84.9-87.0% between seeds.

    Attributes:
      arch: a name in `models.ARCHS` or an `ArchConfig`.
      num_classes: number of classes (the model's logits).
      loss: a parametric family in `losses.FAMILIES` ("taylor", "taylorglo"), whose
        parameters are the searched ``loss_params``, or a baseline name in
        `losses.LOSSES` ("cross_entropy", "gce", "arl", ...), which ignores them.
      loss_hparams: ``((name, value), ...)`` keyword arguments of a baseline, e.g.
        ``(("q", 0.7),)`` for GCE; a dict is accepted and sorted into a tuple.
      optimizer: "adam", "adamw" (decoupled weight decay) or "sgd" (with momentum).
      lr: peak learning rate.
      schedule: "constant", "cosine" (decay to 0) or "warmup_cosine" (linear warm-up
        over ``warmup_fraction`` of the steps, then cosine decay to 0).
      warmup_fraction: share of the steps spent warming up.
      batch_size: training batch size; each epoch is a fresh permutation of the
        training set and the last incomplete batch is dropped.
      steps: number of optimiser steps, unless ``epochs`` is set.
      epochs: if set, the number of steps is ``round(epochs * (n_train //
        batch_size))``, computed from the data's (static) shape at trace time.
      weight_decay: L2 penalty added to the gradient (adam, sgd) or decoupled
        (adamw); 0 disables it.
      momentum: SGD momentum (0 for plain SGD).
      grad_clip: clip the gradient's global norm to this value; 0 disables it.
      max_loss: a step whose mean loss exceeds this in magnitude marks divergence.
      eval_batch_size: examples per forward pass when evaluating val and test; 0
        (the default) picks it (`eval_batch`).
    """

    arch: str | ArchConfig = "mlp"
    num_classes: int = 10
    loss: str = "cross_entropy"
    loss_hparams: tuple[tuple[str, float], ...] = ()
    optimizer: str = "adam"
    lr: float = 2e-3
    schedule: str = "cosine"
    warmup_fraction: float = 0.05
    batch_size: int = 128
    steps: int = 400
    epochs: float | None = None
    weight_decay: float = 0.0
    momentum: float = 0.9
    grad_clip: float = 0.0
    max_loss: float = 1e6
    eval_batch_size: int = 0

    def __post_init__(self):
        get_arch(self.arch)  # raises on an unknown name
        hp = self.loss_hparams
        hp = hp.items() if isinstance(hp, dict) else hp
        hp = tuple(sorted((str(k), _hashable(v)) for k, v in hp))
        object.__setattr__(self, "loss_hparams", hp)
        if self.loss not in losses.FAMILIES and self.loss not in losses.LOSSES:
            names = sorted({*losses.FAMILIES, *losses.LOSSES})
            raise ValueError(f"unknown loss {self.loss!r}; choose from {names}")
        if self.loss in losses.FAMILIES and self.loss_hparams:
            raise ValueError(f"loss family {self.loss!r} takes no loss_hparams")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if self.num_classes < 2 or self.batch_size < 1 or self.eval_batch_size < 0:
            raise ValueError("num_classes >= 2, batch_size >= 1, eval_batch_size >= 0")
        if self.steps < 1 or (self.epochs is not None and self.epochs <= 0):
            raise ValueError("steps must be >= 1 and epochs > 0")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def num_steps(self, num_train: int) -> int:
        """Optimiser steps for a training set of ``num_train`` examples."""
        if num_train < self.batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} > {num_train} training examples"
            )
        if self.epochs is None:
            return self.steps
        return max(1, round(self.epochs * (num_train // self.batch_size)))


@struct.dataclass
class Data:
    """One task's arrays on the device: noisy training labels, clean val and test.

    ``x_*`` float32 ``[N, *input_shape]``, ``y_*`` int32 ``[N]``.
    """

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    x_test: jax.Array
    y_test: jax.Array

    @classmethod
    def from_dataset(cls, ds: Any) -> Data:
        """Copy a `data.Dataset` (numpy) to the default device, once."""
        fields = {}
        for split in ("train", "val", "test"):
            fields[f"x_{split}"] = np.asarray(getattr(ds, f"x_{split}"), np.float32)
            fields[f"y_{split}"] = np.asarray(getattr(ds, f"y_{split}"), np.int32)
        return cls(**jax.device_put(fields))


@struct.dataclass
class Metrics:
    """Summaries of one inner run (leaves ``[]``, or ``[pop, seeds]`` from evaluate).

    ``val_acc``/``test_acc``: clean accuracies in [0, 1] (0 when diverged);
    ``train_loss``: mean loss over the last epoch's steps (inf when diverged);
    ``diverged``: bool.
    """

    val_acc: jax.Array
    test_acc: jax.Array
    train_loss: jax.Array
    diverged: jax.Array


def make_schedule(cfg: InnerConfig, steps: int) -> optax.Schedule:
    """The learning-rate schedule of ``cfg`` over ``steps`` steps."""
    if cfg.schedule == "constant":
        return optax.constant_schedule(cfg.lr)
    if cfg.schedule == "cosine":
        return optax.cosine_decay_schedule(cfg.lr, steps)
    warmup = max(1, int(cfg.warmup_fraction * steps))
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.lr, warmup, max(steps, warmup + 1)
    )


def build_optimizer(cfg: InnerConfig, steps: int) -> optax.GradientTransformation:
    """Gradient clipping, weight decay and the optimiser of ``cfg`` as one chain."""
    lr = make_schedule(cfg, steps)
    parts = []
    if cfg.grad_clip > 0:
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    if cfg.weight_decay > 0 and cfg.optimizer != "adamw":
        parts.append(optax.add_decayed_weights(cfg.weight_decay))
    if cfg.optimizer == "adam":
        parts.append(optax.adam(lr))
    elif cfg.optimizer == "adamw":
        parts.append(optax.adamw(lr, weight_decay=cfg.weight_decay))
    else:
        parts.append(optax.sgd(lr, momentum=cfg.momentum or None))
    return optax.chain(*parts)


def make_loss(cfg: InnerConfig) -> Callable[..., jax.Array]:
    """``objective(loss_params [P], logits [B, C], labels [B]) -> scalar``: what a
    step minimises. A family's objective uses ``loss_params`` (its batch mean plus
    its batch term, `losses.family_objective`); a named loss ignores them
    (`losses.get_objective`)."""
    if cfg.loss in losses.FAMILIES:
        return lambda p, logits, labels: losses.family_objective(
            cfg.loss, p, logits, labels)
    objective = losses.get_objective(cfg.loss, **dict(cfg.loss_hparams))
    return lambda p, logits, labels: objective(logits, labels)


def batch_indices(
    key: jax.Array, num_train: int, batch_size: int, steps: int
) -> jax.Array:
    """Training-example indices ``[steps, batch_size]``: epoch ``e`` is the permutation
    drawn with ``fold_in(key, e)``, its last incomplete batch dropped."""
    per_epoch = num_train // batch_size
    epochs = -(-steps // per_epoch)
    keys = jax.vmap(lambda e: jax.random.fold_in(key, e))(jnp.arange(epochs))
    perms = jax.vmap(lambda k: jax.random.permutation(k, num_train))(keys)  # [E, N]
    idx = perms[:, : per_epoch * batch_size].reshape(epochs * per_epoch, batch_size)
    return idx[:steps]  # [steps, B]


def _select(ok: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


def _train_step(model, loss_fn, tx, max_loss, state, x, y, loss_params, dropout_key):
    """One guarded optimiser step; returns the new state and the step's loss."""
    params, opt_state, diverged = state

    def objective(p):
        logits = model.apply(p, x, train=True, rngs={"dropout": dropout_key})  # [B, C]
        return loss_fn(loss_params, logits.astype(jnp.float32), y)

    loss, grads = jax.value_and_grad(objective)(params)
    updates, new_opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    ok = jnp.isfinite(loss) & (jnp.abs(loss) <= max_loss)
    ok = ok & jnp.isfinite(optax.global_norm(grads)) & ~diverged
    params, opt_state = _select(ok, (new_params, new_opt_state), (params, opt_state))
    return (params, opt_state, diverged | ~ok), loss


# Evaluation passes on accelerators, where a large batch fills the device.
ACCELERATOR_EVAL_BATCH = 2048
# On a CPU: the training batch, at least this. A pass of 2,048 images through the
# CNN holds about 700 MB of activations, far beyond the cache, and the benchmark's CNN
# run took 1.1-1.3x longer with it (docs/PERFORMANCE.md).
MIN_CPU_EVAL_BATCH = 128


def eval_batch(cfg: InnerConfig) -> int:
    """Examples per evaluation pass: ``cfg.eval_batch_size``, or where it is 0 the
    training batch size (at least `MIN_CPU_EVAL_BATCH`) on a CPU and
    `ACCELERATOR_EVAL_BATCH` elsewhere. Accuracy does not depend on it."""
    if cfg.eval_batch_size:
        return cfg.eval_batch_size
    if jax.default_backend() == "cpu":
        return max(cfg.batch_size, MIN_CPU_EVAL_BATCH)
    return ACCELERATOR_EVAL_BATCH


def accuracy(
    model: nn.Module, params: Any, x: jax.Array, y: jax.Array, batch_size: int
) -> jax.Array:
    """Share of ``x [N, ...]`` classified as ``y [N]``, in passes of ``batch_size``."""

    def correct(xy):  # one example; lax.map vmaps it over chunks of batch_size
        logits = model.apply(params, xy[0][None])[0]  # [C]
        return jnp.argmax(logits) == xy[1]

    return jnp.mean(jax.lax.map(correct, (x, y), batch_size=batch_size))


def make_inner_train(
    cfg: InnerConfig,
) -> Callable[[jax.Array, jax.Array, Data], Metrics]:
    """Build ``inner_train(loss_params [P], key, data) -> Metrics`` for ``cfg``.

    The returned function is pure and traceable: it initialises the model from
    ``key``, trains for ``cfg.num_steps(n_train)`` steps in one ``lax.scan`` and
    evaluates on the clean val and test sets. ``loss_params`` are cast to float32;
    baselines ignore them (pass a dummy ``[1]`` vector).
    """
    model = build_model(cfg.arch, cfg.num_classes)
    loss_fn = make_loss(cfg)
    passes = eval_batch(cfg)

    def inner_train(loss_params: jax.Array, key: jax.Array, data: Data) -> Metrics:
        """Train from scratch with the loss ``loss_params``; return summaries only."""
        loss_params = jnp.asarray(loss_params, jnp.float32)  # [P]
        n = data.x_train.shape[0]
        steps = cfg.num_steps(n)
        tx = build_optimizer(cfg, steps)
        k_init, k_shuffle, k_dropout = jax.random.split(key, 3)
        params = model.init(k_init, data.x_train[:1])
        idx = batch_indices(k_shuffle, n, cfg.batch_size, steps)  # [steps, B]

        def step(state, xs):
            t, batch = xs
            x, y = data.x_train[batch], data.y_train[batch]  # [B, ...], [B]
            k_drop = jax.random.fold_in(k_dropout, t)
            return _train_step(model, loss_fn, tx, cfg.max_loss, state, x, y,
                               loss_params, k_drop)

        state = (params, tx.init(params), jnp.array(False))
        (params, _, diverged), step_losses = jax.lax.scan(
            step, state, (jnp.arange(steps), idx)
        )  # step_losses [steps]
        last = min(steps, n // cfg.batch_size)  # the last epoch's steps
        train_loss = jnp.mean(step_losses[-last:])
        val = accuracy(model, params, data.x_val, data.y_val, passes)
        test = accuracy(model, params, data.x_test, data.y_test, passes)
        return Metrics(
            val_acc=jnp.where(diverged, 0.0, val),
            test_acc=jnp.where(diverged, 0.0, test),
            train_loss=jnp.where(diverged, jnp.inf, train_loss),
            diverged=diverged,
        )

    return inner_train


# On a CPU a population is trained in groups that fit the caches (docs/PERFORMANCE.md):
# a group works on CPU_CACHE_BYTES at most (24 MiB; this machine's L3 is 32 MiB), so
# about 8 MNIST-1D MLPs (2.7 MB each: weights, gradient, Adam moments, activations)
# and 2 LeNets (their im2col patches are 40 MB a batch, so 2 is for the two cores).
# Measured on 2 cores, ms per candidate and step: MLP 0.47 in groups of 8, 0.68 as
# one group of 64, 0.73 one at a time; CNN 53 in groups of 2, 81 of 8, 75 alone.
CPU_CACHE_BYTES = 24 * 2**20
MIN_POP_CHUNK = 2


@functools.lru_cache(maxsize=256)
def candidate_bytes(cfg: InnerConfig, input_shape: tuple[int, ...]) -> int:
    """Rough bytes one candidate's training step works on: its parameters four times
    (weights, gradient, two Adam moments) and the forward pass's intermediates on a
    batch twice (their values and gradients), counted from the traced program."""
    model = build_model(cfg.arch, cfg.num_classes)
    x = jax.ShapeDtypeStruct((cfg.batch_size, *input_shape), jnp.float32)
    key = jax.random.key(0)
    params = jax.eval_shape(model.init, key, x)

    def forward(p, x):
        return model.apply(p, x, train=True, rngs={"dropout": key})

    jaxpr = jax.make_jaxpr(forward)(params, x)
    acts = sum(v.aval.size * v.aval.dtype.itemsize
               for eqn in jaxpr.eqns for v in eqn.outvars)
    weights = sum(p.size * p.dtype.itemsize for p in jax.tree.leaves(params))
    return int(4 * weights + 2 * acts)


def default_pop_chunk(
    cfg: InnerConfig, input_shape: tuple[int, ...], num_devices: int = 1
) -> int | None:
    """Candidates trained at once: on a CPU as many as fit `CPU_CACHE_BYTES` (at
    least `MIN_POP_CHUNK`) per device; ``None`` (the whole population in one step)
    on accelerators, whose parallelism wants every candidate at once."""
    if jax.default_backend() != "cpu":
        return None
    fit = CPU_CACHE_BYTES // max(candidate_bytes(cfg, tuple(input_shape)), 1)
    return max(MIN_POP_CHUNK, fit) * num_devices


def batch_inner_train(inner_train: Callable, pop_chunk: int | None = None) -> Callable:
    """``vmap`` over the population (loss_params) of ``vmap`` over keys (seeds).

    ``(pop_params [pop, P], keys [S], data) -> Metrics`` with leaves ``[pop, S]``.
    Every candidate sees the same keys (common random numbers), and since the
    initialisation and the batch order depend on the key alone they are computed
    once per seed, not once per candidate.

    With ``pop_chunk``, a population larger than it is trained in ``G = ceil(pop /
    pop_chunk)`` groups of about ``pop / G`` candidates, one group after another
    (``lax.map``); each group is vmapped as above. Group ``g`` holds candidates ``g,
    g + G, g + 2G, ...``, so a population split over devices in contiguous blocks
    stays split the same way within every group. The result does not depend on the
    grouping: every candidate's run is independent of the others.
    """
    over_seeds = jax.vmap(inner_train, in_axes=(None, 0, None))
    over_pop = jax.vmap(over_seeds, in_axes=(0, None, None))
    if not pop_chunk:
        return over_pop

    def grouped(pop_params: jax.Array, keys: jax.Array, data: Data) -> Metrics:
        pop = pop_params.shape[0]
        groups = -(-pop // pop_chunk)
        if groups <= 1:
            return over_pop(pop_params, keys, data)
        size = -(-pop // groups)  # candidates per group
        extra = groups * size - pop  # padding: copies of the last candidate
        padded = jnp.concatenate([pop_params, jnp.repeat(pop_params[-1:], extra, 0)])
        xs = padded.reshape(size, groups, -1).swapaxes(0, 1)  # [G, size, P]
        out = jax.lax.map(lambda p: over_pop(p, keys, data), xs)  # [G, size, S]

        def ungroup(a):
            return a.swapaxes(0, 1).reshape(groups * size, *a.shape[2:])[:pop]

        return jax.tree.map(ungroup, out)

    return grouped


def make_population_train(cfg: InnerConfig, num_devices: int = 1) -> Callable:
    """``batch_inner_train(make_inner_train(cfg), pop_chunk)`` with the group size
    `default_pop_chunk` picks for the data's shapes (read when it is traced), for
    ``num_devices`` devices sharing the population. Not jitted."""
    inner_train = make_inner_train(cfg)

    def population_train(pop_params: jax.Array, keys: jax.Array, data: Data):
        chunk = default_pop_chunk(cfg, data.x_train.shape[1:], num_devices)
        return batch_inner_train(inner_train, chunk)(pop_params, keys, data)

    return population_train


@functools.lru_cache(maxsize=64)
def make_evaluate(cfg: InnerConfig) -> Callable[[jax.Array, jax.Array, Data], Metrics]:
    """``jit(make_population_train(cfg))``: every candidate of ``pop_params [pop,
    P]`` trained on every key of ``keys [S]``; leaves ``[pop, S]``.

    Cached per ``cfg``, so it compiles once per (cfg, data shapes) and later
    generations reuse the executable. Pass ``data`` as an argument (not a closure
    constant) so it stays on the device and out of the compiled program.
    """
    return jax.jit(make_population_train(cfg))

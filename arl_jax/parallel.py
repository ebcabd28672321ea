"""Devices: a mesh with a population axis, shardings, multi-host start.

The population (candidate losses) is split over devices with
``NamedSharding(mesh, P("pop"))``; keys, data and ES state are replicated with
``P()``. The mesh is a plain ``jax.sharding.Mesh`` (Auto axes): ``jax.make_mesh``
defaults to Explicit axes, under which sharding annotations change meaning.

Typical use (see `make_sharded_evaluate`)::

    mesh = make_mesh()
    evaluate = make_sharded_evaluate(inner_cfg, mesh)
    data = replicate(Data.from_dataset(ds), mesh)        # once
    metrics = evaluate(pop_params, keys, data)           # leaves [pop, seeds]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

POP = "pop"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1D mesh over ``devices`` (default: all devices, every host) with axis "pop"."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.array(devices), (POP,))


def pad_population(x: Any, multiple: int) -> tuple[Any, int]:
    """Pad the leading (population) axis of ``x`` to a multiple of ``multiple``.

    Padding repeats the last row, so padded candidates are valid losses that train
    like a real one (no NaN, no special case); drop them with ``y[:n]``.

    Args:
      x: an array ``[pop, ...]`` or a pytree of such arrays.
      multiple: usually the number of devices in the mesh.

    Returns:
      ``(padded, n)``: leaves ``[pop_padded, ...]`` and the original ``pop``.
    """
    leaves = jax.tree.leaves(x)
    if not leaves or multiple < 1:
        raise ValueError(
            "pad_population needs a non-empty population and multiple >= 1"
        )
    n = leaves[0].shape[0]
    if n < 1:
        raise ValueError("pad_population: the population is empty")
    extra = (-n) % multiple

    def pad(a):
        if extra == 0:
            return a
        xp = np if isinstance(a, np.ndarray) else jnp
        return xp.concatenate([a, xp.repeat(a[-1:], extra, axis=0)], axis=0)

    return jax.tree.map(pad, x), n


def population_sharding(mesh: Mesh) -> NamedSharding:
    """``NamedSharding(mesh, P("pop"))``: leading axis split over devices."""
    return NamedSharding(mesh, P(POP))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """``NamedSharding(mesh, P())``: a full copy on every device."""
    return NamedSharding(mesh, P())


def shard_population(x: Any, mesh: Mesh) -> Any:
    """Put ``x`` (leaves ``[pop, ...]``, pop divisible by the mesh size) on the mesh,
    split along the leading axis."""
    size = mesh.devices.size
    for leaf in jax.tree.leaves(x):
        if leaf.shape[0] % size:
            raise ValueError(
                f"population {leaf.shape[0]} does not divide over {size} devices; "
                "pad it first with pad_population"
            )
    return jax.device_put(x, population_sharding(mesh))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copy ``tree`` (data, keys, ES state) to every device of the mesh."""
    return jax.device_put(tree, replicated_sharding(mesh))


def shard_evaluate(evaluate: Callable, mesh: Mesh) -> Callable:
    """Wrap a batched ``evaluate(pop_params [pop, P], keys [S], data)`` for ``mesh``.

    The returned function pads the population to a multiple of the device count,
    runs one jitted call with the population sharded ``P("pop")`` and keys and data
    replicated, and drops the padding. When no padding was needed every output leaf
    keeps the sharding ``NamedSharding(mesh, P("pop"))``.
    """
    pop_s, rep_s = population_sharding(mesh), replicated_sharding(mesh)
    run = jax.jit(evaluate, in_shardings=(pop_s, rep_s, rep_s), out_shardings=pop_s)

    def sharded_evaluate(pop_params: jax.Array, keys: jax.Array, data: Any) -> Any:
        padded, n = pad_population(pop_params, mesh.devices.size)
        # device_put reshards inputs committed elsewhere (e.g. the ES state's device);
        # it is a no-op for data already replicated with `replicate`.
        padded = jax.device_put(padded, pop_s)
        keys, data = jax.device_put((keys, data), rep_s)
        out = run(padded, keys, data)  # leaves [pop_padded, S]
        if padded.shape[0] == n:
            return out
        return jax.tree.map(lambda a: a[:n], out)

    return sharded_evaluate


@functools.lru_cache(maxsize=64)
def make_sharded_evaluate(cfg: Any, mesh: Mesh) -> Callable:
    """`shard_evaluate` of ``inner.make_evaluate(cfg)``: compiled once per (cfg, mesh,
    data shapes); cached, so calling it every generation is free. On a CPU each
    device trains its candidates in cache-sized groups (`inner.default_pop_chunk`;
    the groups are strided, so they stay split over the devices)."""
    from arl_jax.inner import make_population_train

    return shard_evaluate(make_population_train(cfg, mesh.devices.size), mesh)


def maybe_initialize_distributed(enabled: bool) -> bool:
    """Start multi-host JAX (``jax.distributed.initialize()``) only when ``enabled``.

    The coordinator address, process count and id come from the environment (SLURM,
    Cloud TPU, or ``JAX_COORDINATOR_ADDRESS`` etc.). Call it before any other JAX
    call. Returns whether it initialised.
    """
    if not enabled:
        return False
    jax.distributed.initialize()
    return True


def is_main_process() -> bool:
    """True on process 0, the only process that writes files and logs."""
    return jax.process_index() == 0


def to_host(tree: Any) -> Any:
    """Numpy copies of ``tree``'s arrays on every process (gathers across hosts when
    an array spans devices this process cannot address)."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)

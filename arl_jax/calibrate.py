"""Group sizes for a CPU measured on the machine, not assumed: a short calibration
that times a few training steps of a population in groups of each candidate size,
cached per machine (CPU model, cores, jax version) and per shape of the run.

    ARL_JAX_CALIBRATE=1 python -m arl_jax ...   # calibrate what is not cached yet

`inner.default_pop_chunk` reads the cache first; without an entry it calibrates
when ``ARL_JAX_CALIBRATE=1`` and otherwise keeps its cache-size rule. The group
size changes only the speed, never a result (each candidate's run is independent of
the others, `tests/test_inner.py`). The cache is a JSON file,
``$ARL_JAX_CACHE_DIR/calibration.json`` (default ``~/.cache/arl_jax``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

GROUP_SIZES = (2, 4, 8, 16)
STEPS = 20  # training steps a timed call runs: a few ms each, enough to rank


def enabled() -> bool:
    """Whether a missing entry is calibrated (``ARL_JAX_CALIBRATE=1``)."""
    return os.environ.get("ARL_JAX_CALIBRATE", "") == "1"


def cache_path() -> str:
    """``$ARL_JAX_CACHE_DIR/calibration.json``, default ``~/.cache/arl_jax``."""
    root = os.environ.get("ARL_JAX_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "arl_jax")
    return os.path.join(root, "calibration.json")


def machine_key() -> str:
    """The CPU model, core count and jax version: what a group size depends on."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f
                     if ln.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{model} | {os.cpu_count()} cores | jax {jax.__version__}"


def run_key(cfg: Any, input_shape: Sequence[int], num_devices: int = 1) -> str:
    """What decides the speed of one step: architecture, batch, classes, input
    shape, optimiser and the devices sharing the population."""
    return (f"{cfg.arch!r} | batch {cfg.batch_size} | classes {cfg.num_classes} | "
            f"input {tuple(input_shape)} | {cfg.optimizer} | devices {num_devices}")


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            table = json.load(f)
        return table if isinstance(table, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or unreadable: calibrate again


def lookup(cfg: Any, input_shape: Sequence[int], num_devices: int = 1) -> int | None:
    """The cached group size for this machine and run, or ``None``."""
    entry = _read(cache_path()).get(machine_key(), {}).get(
        run_key(cfg, input_shape, num_devices))
    return int(entry["pop_chunk"]) if isinstance(entry, dict) else None


def store(cfg: Any, input_shape: Sequence[int], num_devices: int, record: dict):
    """Write ``record`` (with its ``pop_chunk``) for this machine and run; the file
    is replaced whole (write, then rename), so a reader never sees half of it."""
    path = cache_path()
    table = _read(path)
    table.setdefault(machine_key(), {})[run_key(cfg, input_shape, num_devices)] = record
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def time_group(cfg: Any, input_shape: Sequence[int], size: int,
               repeats: int = 2) -> float:
    """Seconds per candidate of `STEPS` training steps for a group of ``size``
    candidates (``jit(vmap(inner_train))`` on random data of the run's shapes),
    best of ``repeats`` after a call that compiles."""
    from arl_jax import inner  # inner imports this module

    steps = STEPS
    short = dataclasses.replace(cfg, steps=steps, epochs=None)
    n = cfg.batch_size * steps
    k_x, k_y = jax.random.split(jax.random.key(0))
    x = jax.random.normal(k_x, (n, *input_shape))
    y = jax.random.randint(k_y, (n,), 0, cfg.num_classes)
    small = (x[: cfg.batch_size], y[: cfg.batch_size])
    data = inner.Data(x, y, *small, *small)
    run = jax.jit(inner.batch_inner_train(inner.make_inner_train(short), None))
    from arl_jax import losses

    # A family's starting mean (order 4); a named loss ignores its parameters.
    init = (losses.family_init(cfg.loss, 4) if cfg.loss in losses.FAMILIES
            else jnp.zeros(1))
    pop_params = jnp.tile(jnp.asarray(init, jnp.float32), (size, 1))
    keys = jax.random.key(1)[None]
    jax.block_until_ready(run(pop_params, keys, data))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(pop_params, keys, data))
        best = min(best, time.perf_counter() - t0)
    return best / size


def calibrate(cfg: Any, input_shape: Sequence[int], num_devices: int = 1,
              sizes: Sequence[int] | None = None) -> int:
    """Time each group size in ``sizes`` (per device; default `GROUP_SIZES`), cache
    and return the fastest per candidate, times ``num_devices``."""
    per = {int(s): time_group(cfg, input_shape, int(s))
           for s in sizes or GROUP_SIZES}
    best = min(per, key=per.get)
    record = {"pop_chunk": best * num_devices, "steps": STEPS,
              "s_per_candidate": {str(s): t for s, t in per.items()},
              "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    store(cfg, input_shape, num_devices, record)
    return best * num_devices

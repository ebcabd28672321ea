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
import hashlib
import json
import os
import platform
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

POP = "pop"
T = TypeVar("T")


# The instruction-set extensions that decide a CPU's matmul speed, recorded with the
# benchmark's timings: AVX2 / AVX-512 vectors, bfloat16 and float16 dot products, AMX
# tiles.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16",
             "amx_tile")


def cpu_model_and_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, list[str]]:
    """The CPU's model name, with its family and model numbers where given (virtual
    machines often name every AMD EPYC alike), and which of `CPU_FLAGS` it has (from
    ``cpuinfo``; `platform.processor()` and no flags where it cannot be read)."""
    first: dict[str, str] = {}  # the first processor's fields
    try:
        with open(cpuinfo) as f:
            for ln in f:
                key, _, value = ln.partition(":")
                first.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = first.get("model name") or platform.processor()
    if first.get("cpu family") and first.get("model"):
        model += f" (family {first['cpu family']}, model {first['model']})"
    flags = set(first.get("flags", "").split())
    return model, [f for f in CPU_FLAGS if f in flags]


# On a CPU a population trains faster split over one XLA device per core than on one
# device, each device training its own cache-sized groups at the same time: a pop-64
# generation of the benchmark's MLP run on 2 cores took 1.12-1.29x less time on 2
# devices than on 1 (AVX2 and AVX-512 EPYCs, docs/PERFORMANCE.md). Each device keeps
# at least CANDIDATES_PER_CPU_DEVICE candidates, the group size measured there.
CANDIDATES_PER_CPU_DEVICE = 8
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def cpu_device_count(pop: int) -> int:
    """How many CPU devices `split_cpu` gives a population of `pop`: one a core this
    process may use, at most `pop` / `CANDIDATES_PER_CPU_DEVICE`, at least 1."""
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    return max(1, min(cores, pop // CANDIDATES_PER_CPU_DEVICE))


def split_cpu(pop: int) -> int:
    """Before JAX starts: give the CPU platform `cpu_device_count(pop)` devices, so
    that `make_mesh` spreads a population over the cores. Returns that count, or 0
    where nothing changed: ``XLA_FLAGS`` already sets a device count (set it to 1 to
    train on one device), ``JAX_PLATFORMS`` names no cpu, JAX has started, or one
    device results. With an accelerator the default devices stay the accelerator's.
    """
    from jax._src import xla_bridge

    flags = os.environ.get("XLA_FLAGS", "")
    platforms = os.environ.get("JAX_PLATFORMS", "")
    n = cpu_device_count(pop)
    if (DEVICE_COUNT_FLAG in flags or xla_bridge.backends_are_initialized()
            or (platforms and "cpu" not in platforms.split(",")) or n < 2):
        return 0
    os.environ["XLA_FLAGS"] = f"{flags} {DEVICE_COUNT_FLAG}={n}".strip()
    return n


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


def put(tree: Any, sharding: NamedSharding) -> Any:
    """``jax.device_put(tree, sharding)`` that also works when `sharding` spans
    devices of other processes.

    In a multi-process run every process holds the same value of each leaf (the
    search derives everything from the seed), and each puts on its own devices
    their part of it (`jax.make_array_from_callback`); arrays that already span
    the processes are resharded by `jax.device_put`. Key arrays keep their type.
    """
    if jax.process_count() == 1 or sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(x: Any) -> Any:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.device_put(x, sharding)
        dtype = getattr(x, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            data = one(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, host.__getitem__)

    return jax.tree.map(one, tree)


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
    return put(x, population_sharding(mesh))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copy ``tree`` (data, keys, ES state) to every device of the mesh."""
    return put(tree, replicated_sharding(mesh))


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
        padded = put(padded, pop_s)
        keys, data = put((keys, data), rep_s)
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


AUTO = "auto"


# Help texts of the multi-process flags, shared by every command's config.
HELP = {
    "coordinator": "multi-process run: HOST:PORT of process 0, the same in every "
    "process; 'auto' lets jax.distributed detect the cluster (SLURM, Cloud TPU, "
    "Kubernetes); '' (default) runs one process",
    "num_processes": "number of processes of a multi-process run (with "
    "--coordinator HOST:PORT; 0: detected by --coordinator auto)",
    "process_id": "this process's index 0 .. N-1, 0 on the coordinator's host (with "
    "--coordinator HOST:PORT; -1: detected by --coordinator auto)",
    "peer_timeout": "seconds a multi-process run waits for every process to join, and "
    "for a process that stopped answering, before it exits with an error",
}


def check_distributed_flags(coordinator: str, num_processes: int, process_id: int,
                            peer_timeout: int = 1) -> None:
    """Refuse inconsistent ``--coordinator/--num-processes/--process-id`` (and a
    ``--peer-timeout`` below 1 s) before anything starts; the message names the flag
    and the fix.

    ``coordinator`` is ``""`` (one process), ``"auto"`` (`jax.distributed.initialize`
    detects SLURM, Cloud TPU, Kubernetes ...; the two numbers may be left unset, 0 and
    -1) or ``HOST:PORT`` (both numbers required).
    """
    if peer_timeout < 1:
        raise ValueError(f"--peer-timeout must be >= 1 (got {peer_timeout})")
    if not coordinator:
        if num_processes > 1 or process_id > 0:
            raise ValueError(
                "--num-processes/--process-id need --coordinator HOST:PORT (the "
                "address of process 0), or --coordinator auto on a cluster")
        return
    if coordinator != AUTO:
        host, sep, port = coordinator.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"--coordinator must be HOST:PORT, e.g. 10.0.0.1:12355, or auto "
                f"(got {coordinator!r})")
        if num_processes < 1:
            raise ValueError(f"--coordinator {coordinator} needs --num-processes N "
                             "(the number of processes started, >= 1)")
        if process_id < 0:
            raise ValueError(f"--coordinator {coordinator} needs --process-id I "
                             f"(0 .. {num_processes - 1}, 0 on the coordinator's host)")
    if num_processes < 0 or (num_processes == 0 and process_id >= 0):
        raise ValueError("--num-processes must be >= 1 when --process-id is given "
                         "(0 leaves both to --coordinator auto)")
    if num_processes and process_id >= num_processes:
        raise ValueError(f"--process-id must be in 0 .. {num_processes - 1} for "
                         f"--num-processes {num_processes} (got {process_id})")


def initialize_distributed(
    coordinator: str = "", num_processes: int = 0, process_id: int = -1,
    *, timeout_s: int = 60,
) -> bool:
    """Start JAX's multi-process runtime; call it before any other JAX call.

    ``coordinator`` ``""`` does nothing (one process: returns False). ``"auto"`` calls
    ``jax.distributed.initialize()``, which reads the cluster (SLURM, Cloud TPU,
    ``JAX_COORDINATOR_ADDRESS`` ...); ``HOST:PORT`` starts process ``process_id`` of
    ``num_processes``, process 0 serving on PORT. CPU collectives go through gloo
    (XLA's CPU client has none by default), so processes on CPUs form one runtime
    too. A peer that is missing at the start, or that dies later, ends this process
    with an error after about ``timeout_s`` seconds (connect and heartbeat
    timeouts) instead of a hang.
    """
    check_distributed_flags(coordinator, num_processes, process_id)
    if not coordinator:
        return False
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict[str, Any] = {
        "initialization_timeout": timeout_s,
        "heartbeat_timeout_seconds": max(timeout_s // 2, 5),
        "shutdown_timeout_seconds": timeout_s,
    }
    if coordinator != AUTO:
        kwargs["coordinator_address"] = coordinator
    if num_processes > 0:
        kwargs["num_processes"] = num_processes
    if process_id >= 0:
        kwargs["process_id"] = process_id
    try:
        jax.distributed.initialize(**kwargs)
    except Exception as err:  # noqa: BLE001 - XLA raises several kinds
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise RuntimeError(
            f"jax.distributed.initialize failed (--coordinator {coordinator}, "
            f"--num-processes {num_processes}, --process-id {process_id}): {first}. "
            f"Start every process within --peer-timeout ({timeout_s} s) of the "
            "others, with the same --coordinator and --num-processes and its own "
            "--process-id") from None
    return True


def source_hash() -> str:
    """A short hash of this checkout's ``arl_jax`` sources (every ``.py`` and
    ``.json`` under the package), so processes can check that they run one code."""
    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".py", ".json")):
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()[:16]


def allgather_text(text: str) -> list[str]:
    """`text` of every process, in process order (a collective: every process
    calls it at the same point)."""
    raw = np.frombuffer(text.encode(), np.uint8)
    sizes = multihost_utils.process_allgather(np.array([raw.size], np.int32))
    buf = np.zeros(int(sizes.max()), np.uint8)
    buf[: raw.size] = raw
    every = multihost_utils.process_allgather(buf)  # [processes, max_size]
    return [bytes(row[: int(n)]).decode() for row, n in zip(every, sizes.ravel())]


def check_processes_agree(record: dict[str, Any]) -> None:
    """Stop with an error naming the difference when the processes of a run do not
    hold the same `record` (resolved settings, code and package versions, the
    checkpoint they resume). A collective: every process must call it, once, at
    the start; it does nothing in a one-process run.

    Raises:
      ValueError: ``process I differs from process 0: KEY: value0 != valueI; ...``.
    """
    if jax.process_count() == 1:
        return
    mine = json.dumps(record, sort_keys=True, default=str)
    every = allgather_text(mine)
    first = json.loads(every[0])
    for i, text in enumerate(every[1:], start=1):
        if text == every[0]:
            continue
        other = json.loads(text)
        diff = [f"{k}: {first.get(k)!r} != {other.get(k)!r}"
                for k in sorted(set(first) | set(other))
                if first.get(k) != other.get(k)]
        raise ValueError(
            f"process {i} differs from process 0: {'; '.join(diff)}. Start every "
            "process with the same command (only --process-id differs), the same "
            "code and packages, and a run folder every process reads the same")


def log(*args: Any, **kwargs: Any) -> None:
    """`print` on process 0 only, so an N-process run prints one log."""
    if jax.process_index() == 0:
        print(*args, **kwargs)


def run_guarded(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``; in a multi-process run an error (a peer that died and broke a
    collective, or this process's own) ends this process at once, non-zero, with the
    traceback and a last line that says what to do. Exiting normally would first
    wait at JAX's shutdown barrier for the processes that are gone."""
    if jax.process_count() == 1:
        return fn(*args)
    me = f"process {jax.process_index()} of {jax.process_count()}"
    try:
        return fn(*args)
    except SystemExit as stop:
        if stop.code in (None, 0):
            raise
        message = stop.code if isinstance(stop.code, str) else f"exit {stop.code}"
        print(f"{message} ({me})", file=sys.stderr, flush=True)
    except BaseException as err:  # noqa: BLE001 - every error must end the process
        traceback.print_exc()
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(f"error: {me} stops: {type(err).__name__}: {first}\n"
              "error: if another process died or was stopped, its log says why; "
              "start every process again with the same command (add --resume OUT "
              "to continue from the last checkpoint)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def is_main_process() -> bool:
    """True on process 0, the only process that writes files and logs."""
    return jax.process_index() == 0


def to_host(tree: Any) -> Any:
    """Numpy copies of ``tree``'s arrays on every process. An array that spans devices
    of other processes (the population's results) is gathered whole, which is a
    collective: every process must call this with the same tree. Arrays this process
    holds entirely (the replicated ES state) are copied as they are."""

    def host(x: Any) -> np.ndarray:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return multihost_utils.process_allgather(x, tiled=True)
        return np.asarray(x)

    return jax.tree.map(host, tree)

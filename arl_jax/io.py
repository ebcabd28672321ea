"""Files of a run: atomic writes and checkpoints.

Every file is written to a temporary name beside its target, synced and renamed over
it, so a reader (or a run killed at any point, SIGKILL included) sees the old file or
the new one, never half of one; a failed write (a full disk) removes its temporary
and leaves the old file.

A checkpoint is one ``.npz`` of plain arrays, named by their path in the state's
pytree, plus a JSON record (the history, the hash of the run's config, a checksum of
the arrays): no pickled classes, so a library's refactor of its state class does not
break a resume, and a mismatch or a corrupted file is a clear refusal.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
from typing import Any

import jax
import numpy as np

CHECKPOINT = "checkpoint.npz"
_META = "__meta__"


def _atomic_write(path: str, write: Any, mode: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """Write `text` to `path` so that a reader (or a crash) never sees half a file."""
    _atomic_write(path, lambda fh: fh.write(text), "w")


def _finite(obj: Any) -> Any:
    """`obj` with every non-finite float as None, so that the file is valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str, obj: Any) -> None:
    """`atomic_write_text` of `obj` as indented, strictly valid JSON (NaN and inf
    are written as null)."""
    text = json.dumps(_finite(obj), indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_json_dict(path: str) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when the file is missing, unreadable or
    holds something else (callers say what that means for them)."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able config (keys sorted)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _leaves(tree: Any) -> dict[str, np.ndarray]:
    """``{path: numpy array}`` of a pytree's leaves (`jax.tree_util.keystr` paths)."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def _checksum(arrays: dict[str, np.ndarray], meta_text: str) -> str:
    h = hashlib.sha256(meta_text.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(run_dir: str, state: Any, record: dict[str, Any]) -> str:
    """Write the pytree `state` (host arrays) and the JSON-able `record` as the run's
    checkpoint; returns its path."""
    arrays = _leaves(state)
    meta_text = json.dumps(_finite(record), sort_keys=True, allow_nan=False)
    meta = {"record": meta_text, "checksum": _checksum(arrays, meta_text)}
    payload = {**arrays, _META: np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    path = os.path.join(run_dir, CHECKPOINT)
    _atomic_write(path, lambda fh: np.savez(fh, **payload), "wb")
    return path


def load_checkpoint(run_dir: str, template: Any) -> tuple[Any, dict] | None:
    """``(state, record)`` of the run's checkpoint, the state in the structure and
    dtypes of `template`; None if there is none yet.

    Raises:
      ValueError: the file is unreadable, corrupted (checksum), or holds another
        state structure than `template`'s.
    """
    path = os.path.join(run_dir, CHECKPOINT)
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop(_META).tobytes().decode())
        record_text = meta["record"]
    except Exception as err:  # noqa: BLE001 - any failure is a corrupted file
        raise ValueError(f"{path} is unreadable or truncated ({type(err).__name__}); "
                         "delete it to restart the search, or use another --out"
                         ) from None
    if _checksum(arrays, record_text) != meta.get("checksum"):
        raise ValueError(f"{path} is corrupted (checksum mismatch); delete it to "
                         "restart the search, or use another --out")
    want = _leaves(template)
    if set(want) != set(arrays) or any(
        arrays[k].shape != np.shape(v) for k, v in want.items()
    ):
        raise ValueError(f"{path} holds another search state than this run's settings "
                         "make (another family, order or population size)")
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = [jax.numpy.asarray(arrays[jax.tree_util.keystr(k)], dtype=v.dtype)
              for k, v in flat]
    return jax.tree.unflatten(treedef, leaves), json.loads(record_text)


# ----------------------------------------------------------------------------------
# A run folder has one owner: one kind of command, one live process at a time.

LOCK = ".arl_lock"
OWNER = "owner.json"
# What each command leaves in its folder, to recognise folders written before the
# owner record existed.
_MARKERS = {"meta_search": ("checkpoint.npz", "metrics.jsonl", "best_loss.json"),
            "meta_test": ("runs.csv",), "score_pool": ("scores.json",)}
_HELD: set[str] = set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_kind(folder: str) -> str | None:
    try:
        with open(os.path.join(folder, OWNER)) as fh:
            return json.load(fh).get("kind")
    except (OSError, ValueError, AttributeError):
        pass
    for kind, files in _MARKERS.items():
        if any(os.path.exists(os.path.join(folder, f)) for f in files):
            return kind
    return None


def claim_folder(folder: str, kind: str, command: str, flag: str = "--out") -> None:
    """Make `folder` this process's run folder, or raise ValueError saying why not.

    Refused: a path that is a file or cannot be written; a folder that holds another
    kind of run (a meta-test into a search's folder); a folder another live process
    of this machine is writing (its lock names the PID and the command). A lock left
    by a killed process (its PID is gone) is taken over. The lock is released when
    this process exits; the owner record (`owner.json`) stays.
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{flag} {folder} is a file; give a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{flag} {folder}: cannot create it ({err.strerror})"
                         ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {folder} is not writable; choose another {flag}")
    other = _owner_kind(folder)
    if other is not None and other != kind:
        raise ValueError(f"{flag} {folder} holds a {other} run; a {kind} run needs a "
                         f"folder of its own: choose another {flag}")
    path = os.path.abspath(os.path.join(folder, LOCK))
    if path in _HELD:
        return
    me = {"pid": os.getpid(), "host": os.uname().nodename, "command": command}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as fh:
                    held = json.load(fh)
            except (OSError, ValueError):
                held = {}
            pid = held.get("pid")
            if isinstance(pid, int) and held.get("host") == me["host"] and _alive(pid):
                raise ValueError(
                    f"{flag} {folder} is in use by process {pid} "
                    f"({held.get('command', '?')}); wait for it to end, or choose "
                    f"another {flag}") from None
            with contextlib.suppress(FileNotFoundError):  # stale: its process died
                os.remove(path)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    else:
        raise ValueError(f"{flag} {folder}: could not take its lock {path}")
    _HELD.add(path)
    atexit.register(_release, path, me["pid"])
    if other is None:
        atomic_write_json(os.path.join(folder, OWNER), {"kind": kind,
                                                         "command": command})


def _release(path: str, pid: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        with open(path) as fh:
            if json.load(fh).get("pid") == pid:
                os.remove(path)
    _HELD.discard(path)


def release_folder(folder: str) -> None:
    """Release this process's lock on `folder` before it exits (in-process reuse)."""
    _release(os.path.abspath(os.path.join(folder, LOCK)), os.getpid())

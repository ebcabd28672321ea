"""Checkpoints of a search: written atomically after every generation.

A checkpoint is one pickle of host numpy arrays and plain Python values (the CMA-ES
state, the generation reached, the history). It is written to a temporary file, synced
and renamed over the last one, so a run killed at any point (SIGKILL included) leaves
either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import jax
import numpy as np

CHECKPOINT = "checkpoint.pkl"


def to_host(tree: Any) -> Any:
    """Every JAX array leaf of `tree` as a numpy array (keeps dtypes); other leaves
    (the JSON-able history) stay as they are."""
    return jax.tree.map(
        lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, tree
    )


def save(run_dir: str, payload: dict[str, Any]) -> str:
    """Write `payload` (arrays moved to host) as the run's checkpoint; its path."""
    path = os.path.join(run_dir, CHECKPOINT)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as fh:
        pickle.dump(to_host(payload), fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load(run_dir: str) -> dict[str, Any] | None:
    """The run's last checkpoint, or None if it has none yet."""
    path = os.path.join(run_dir, CHECKPOINT)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as fh:
        return pickle.load(fh)


def restore_like(template: Any, saved: Any) -> Any:
    """`saved` (host arrays) in the structure and dtypes of `template` (a pytree)."""
    leaves, treedef = jax.tree.flatten(template)
    saved_leaves = jax.tree.leaves(saved)
    if len(saved_leaves) != len(leaves):
        raise ValueError("checkpoint does not match this configuration's ES state")
    return jax.tree.unflatten(
        treedef,
        [jax.numpy.asarray(s, dtype=t.dtype) for s, t in zip(saved_leaves, leaves)],
    )

"""Train named losses side by side through the inner engine (meta-test, hold-out).

A loss to compare is a `LossSpec`: a family with coefficients (the learned ARL) or a
baseline name with its hyper-parameters. Every loss trains through the same
`inner.make_evaluate`, seeds vmapped, so the search and the benchmarks train alike.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from arl_jax import data as data_lib
from arl_jax import inner, losses, tasks


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A loss to train with: `loss` is a family or a baseline name of `losses`."""

    name: str  # the label in tables
    loss: str
    params: tuple[float, ...] = (0.0,)  # family coefficients; ignored by baselines
    hparams: tuple[tuple[str, float], ...] = ()


def baseline_specs(names: Sequence[str] | None = None) -> list[LossSpec]:
    """Baselines at their published defaults (``None``: every registered loss but
    `arl`; an empty list: none)."""
    if names is None:
        names = [n for n in losses.LOSSES if n != "arl"]
    return [LossSpec(n, n) for n in names]


def loss_file_label(path: str) -> str:
    """The table label of a loss file: ``arl[RUN_DIR]`` for a search's
    ``RUN_DIR/best_loss.json``, ``arl[PATH]`` for any other file, with the folder's
    whole path (relative to the working directory when inside it), so that two
    searches in folders of the same name never share a row."""
    path = os.path.abspath(path)
    if os.path.basename(path) == "best_loss.json":
        path = os.path.dirname(path)
    rel = os.path.relpath(path)
    return f"arl[{path if rel.startswith('..') else rel}]"


def arl_spec(name: str = "arl", loss_file: str | None = None) -> LossSpec:
    """The shipped ARL (or the `best_loss.json` of a search) as a family spec."""
    info = losses.read_loss_file(loss_file) if loss_file else losses.load_pretrained()
    coeffs = tuple(float(c) for c in info["coeffs"])
    return LossSpec(name, info["family"], coeffs)


class Comparer:
    """Compiled evaluations of one training `recipe`, cached per (arch, classes,
    loss)."""

    def __init__(self, recipe: tasks.Recipe):
        self.recipe = recipe
        self._cache: dict[tuple, Callable] = {}

    def evaluator(self, arch: str, num_classes: int, spec: LossSpec) -> Callable:
        """`evaluate(params [1, P], keys [seeds], data)` for `spec` (cached)."""
        key = (arch, num_classes, spec.loss, spec.hparams, len(spec.params))
        if key not in self._cache:
            cfg = self.recipe.inner_config(
                arch=arch, num_classes=num_classes, loss=spec.loss,
                loss_hparams=spec.hparams,
            )
            self._cache[key] = inner.make_evaluate(cfg)
        return self._cache[key]

    def run(
        self,
        spec: LossSpec,
        arch: str,
        dataset: data_lib.Dataset,
        keys: jax.Array,
    ) -> dict[str, np.ndarray]:
        """Train `spec` once per key on `dataset`; per-seed metrics `[seeds]`."""
        fn = self.evaluator(arch, dataset.num_classes, spec)
        params = jnp.asarray(spec.params, jnp.float32)[None]  # [1, P]
        m = fn(params, keys, inner.Data.from_dataset(dataset))
        return {
            "val_acc": np.asarray(m.val_acc)[0],
            "test_acc": np.asarray(m.test_acc)[0],
            "train_loss": np.asarray(m.train_loss)[0],
            "diverged": np.asarray(m.diverged)[0],
        }


def summarise(runs: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Mean and std of test accuracy per loss, JSON-able."""
    return {
        name: {
            "test_acc_mean": float(r["test_acc"].mean()),
            "test_acc_std": float(r["test_acc"].std()),
            "diverged": int(r["diverged"].sum()),
        }
        for name, r in runs.items()
    }

"""Domain randomisation: the meta-train pool and the tasks drawn from it.

A task is (dataset, architecture, noise spec, key). Each generation of the search draws
`tasks` of them; every candidate loss of the generation is trained on the same tasks
with the same keys (common random numbers), so fitness differences come from the loss.
Randomising datasets, architectures and noise is what makes the learned loss reusable
(Gao et al. 2021, Sec. 1).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from arl_jax import data as data_lib
from arl_jax import inner, models, noise


@dataclasses.dataclass(frozen=True)
class NoiseRange:
    """One noise kind with its rate range, parsed from e.g. `symmetric:0.2-0.8`; or
    a dataset's own noisy labels (`labels:NAME`: kind "labels", `key` NAME)."""

    kind: str
    low: float
    high: float
    key: str = ""

    def spec(self, rate: float) -> str:
        """The `noise.apply_noise` spec string for `rate`."""
        if self.kind in ("none", "labels"):
            return "none" if self.kind == "none" else f"labels:{self.key}"
        return f"{self.kind}:{rate:.4f}"


# What a recipe (and meta_test's flags) may name.
RECIPE_OPTIMIZERS = ("adam", "sgd")
RECIPE_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a network is trained: what a user picks besides the loss."""

    optimizer: str = "adam"  # adam | sgd (momentum 0.9)
    lr: float = 2e-3  # peak learning rate
    schedule: str = "cosine"  # constant | cosine (decay to 0)
    steps: int = 400
    batch_size: int = 128
    standardize: bool = False  # inputs shifted and scaled by the training set's

    def inner_config(self, **fields: Any) -> inner.InnerConfig:
        """The `inner.InnerConfig` that trains with this recipe; `fields` give the
        rest (arch, num_classes, loss, ...). Standardising is the data's business."""
        return inner.InnerConfig(
            optimizer=self.optimizer, lr=self.lr, schedule=self.schedule,
            steps=self.steps, batch_size=self.batch_size, **fields,
        )

    def spec(self) -> str:
        """The spec `parse_recipe` reads, e.g. "adam:0.001:constant:4000:128"."""
        text = (f"{self.optimizer}:{self.lr:g}:{self.schedule}:{self.steps}:"
                f"{self.batch_size}")
        return text + (":std" if self.standardize else "")


RECIPE_SYNTAX = ("OPTIMIZER:LR:SCHEDULE:STEPS:BATCH[:std] with OPTIMIZER adam|sgd, "
                 "SCHEDULE constant|cosine, :std to standardise the inputs, e.g. "
                 "adam:1e-3:constant:1000:128:std")


def parse_recipe(text: str, flag: str = "--recipes") -> Recipe:
    """One recipe from its spec (see `RECIPE_SYNTAX`); errors name `flag`."""
    parts = text.strip().split(":")
    std = len(parts) == 6 and parts[5] == "std"
    if len(parts) != 5 and not std:
        raise ValueError(f"{flag}: {text!r} is not {RECIPE_SYNTAX}")
    optimizer, lr, schedule, steps, batch = parts[:5]
    try:
        recipe = Recipe(optimizer, float(lr), schedule, int(steps), int(batch), std)
    except ValueError:
        raise ValueError(f"{flag}: {text!r}: LR must be a number and STEPS, BATCH "
                         f"integers ({RECIPE_SYNTAX})") from None
    if optimizer not in RECIPE_OPTIMIZERS:
        raise ValueError(f"{flag}: {text!r}: optimizer must be adam or sgd")
    if schedule not in RECIPE_SCHEDULES:
        raise ValueError(f"{flag}: {text!r}: schedule must be constant or cosine")
    if not 0 < recipe.lr < 1e30:
        raise ValueError(f"{flag}: {text!r}: LR must be positive and finite")
    if recipe.steps < 1 or recipe.batch_size < 1:
        raise ValueError(f"{flag}: {text!r}: STEPS and BATCH must be >= 1")
    return recipe


@dataclasses.dataclass(frozen=True)
class Task:
    """One meta-train task: where the candidates train, with which net, noise and
    training recipe."""

    dataset: str
    arch: str
    noise: str  # a `noise.apply_noise` spec, e.g. "symmetric:0.4312"
    index: int  # position in the generation: the task's key is fold_in(key, index)
    recipe: Recipe = Recipe()
    train_size: int = 0  # training examples (0: the pool's own size)


def split_list(text: str) -> tuple[str, ...]:
    """`"a, b,c"` -> `("a", "b", "c")`; empty items dropped."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


NOISE_SYNTAX = (
    "KIND:RATE, KIND:R1,R2,... (a list) or KIND:LOW-HIGH (a range), space or comma "
    "separated, e.g. symmetric:0.2,0.4 asymmetric:0.2-0.4 none; labels:NAME trains "
    "on the dataset's own noisy labels NAME"
)


def _parse_rates(text: str) -> tuple[float, float]:
    """`0.4` -> (0.4, 0.4); `0.2-0.8` -> (0.2, 0.8); `2e-1` is a number, not a range."""
    try:
        rate = float(text)
        return rate, rate
    except ValueError:
        pass
    cut = [i for i, ch in enumerate(text) if ch == "-" and i > 0
           and text[i - 1] not in "eE"]  # fmt: skip
    if len(cut) != 1:
        raise ValueError(text)
    return float(text[: cut[0]]), float(text[cut[0] + 1:])


def parse_noise_ranges(
    items: str | tuple[str, ...] | list[str], flag: str = "--noise"
) -> tuple[NoiseRange, ...]:
    """Parse noise settings, the one syntax of every command line, into `NoiseRange`s.

    `items` is a string or a list of strings, each a comma-separated list: an entry
    `KIND:SPEC` starts a kind, an entry `SPEC` alone adds a rate to the kind before
    it, and `none` is clean labels. A SPEC is a rate (`0.4`, `2e-1`) or a range
    `LOW-HIGH` (drawn uniformly per task by the search). So `symmetric:0.2,0.4
    asymmetric:0.2` and `symmetric:0.2,symmetric:0.4,asymmetric:0.2` are the same.
    Raises `ValueError` naming `flag` for an unknown kind, a rate that is not a
    finite number in [0, 1), or nothing at all.
    """
    items = (items,) if isinstance(items, str) else tuple(items)
    out: list[NoiseRange] = []
    for item in items:
        kind = None
        for entry in (e.strip() for e in item.split(",")):
            if not entry:
                continue
            if entry == "none":
                out.append(NoiseRange("none", 0.0, 0.0))
                kind = None
                continue
            if ":" in entry:
                kind, _, entry = entry.partition(":")
                kind = kind.strip()
            if kind == "labels":
                if not entry.strip():
                    raise ValueError(f"{flag}: labels: needs the name of the "
                                     "dataset's noisy labels, e.g. labels:worse_label")
                out.append(NoiseRange("labels", 0.0, 0.0, entry.strip()))
                kind = None
                continue
            if kind not in noise.NOISE_KINDS or kind == "none":
                raise ValueError(
                    f"{flag}: cannot parse {item!r}; expected {NOISE_SYNTAX}, with "
                    f"KIND in {', '.join(noise.NOISE_KINDS[1:])}"
                )
            try:
                low, high = _parse_rates(entry.strip())
            except ValueError:
                raise ValueError(f"{flag}: {entry!r} in {item!r} is not a rate or a "
                                 f"range LOW-HIGH; expected {NOISE_SYNTAX}") from None
            if not (0.0 <= low <= high < 1.0):
                raise ValueError(
                    f"{flag}: rates in {item!r} must satisfy 0 <= low <= high < 1"
                )
            out.append(NoiseRange(kind, low, high))
    if not out:
        raise ValueError(f"{flag}: no noise given; expected {NOISE_SYNTAX}")
    return tuple(out)


def noise_fits(kind: str, dataset: str) -> bool:
    """Whether the noise `kind` is defined for `dataset` (asymmetric needs a map;
    "labels" is checked against the loaded dataset, by `noise.apply_noise`)."""
    return kind != "asymmetric" or dataset in noise.ASYMMETRIC_MAPPINGS


@functools.lru_cache(maxsize=32)
def load_clean(
    name: str, train_size: int, val_size: int, test_size: int, seed: int,
    standardize: bool = False, first: int = 0,
) -> data_lib.Dataset:
    """Load `name` once and cut it to fixed sizes (fixed shapes: one compile); then
    keep the `first` training examples of that cut (`take_train`; 0: all), and
    `standardize` as `data.standardize`."""
    ds = subsample(data_lib.load(name, seed=seed), train_size, val_size, test_size,
                   seed)
    ds = take_train(ds, first)
    return data_lib.standardize(ds) if standardize else ds


def subsample(
    ds: data_lib.Dataset, train_size: int, val_size: int, test_size: int, seed: int
) -> data_lib.Dataset:
    """The first `n` examples of each split after a seeded shuffle (0 keeps all)."""
    rng = np.random.default_rng(seed)

    def cut(n: int, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        if n <= 0 or n >= len(arrays[0]):
            return arrays
        idx = rng.permutation(len(arrays[0]))[:n]
        return tuple(a[idx] for a in arrays)

    names = list(ds.noisy_labels)
    x_tr, y_tr, *noisy = cut(train_size, ds.x_train, ds.y_train,
                             *(ds.noisy_labels[k] for k in names))
    x_va, y_va = cut(val_size, ds.x_val, ds.y_val)
    x_te, y_te = cut(test_size, ds.x_test, ds.y_test)
    return dataclasses.replace(
        ds, x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va, x_test=x_te,
        y_test=y_te, noisy_labels=dict(zip(names, noisy, strict=True)))


def take_train(ds: data_lib.Dataset, n: int) -> data_lib.Dataset:
    """The first `n` training examples of `ds` (and of its noisy label sets); the
    validation and test splits unchanged. A shuffled cut (`subsample`) makes this a
    random subset, and the subsets of two sizes nest."""
    if n <= 0 or n >= len(ds.y_train):
        return ds
    return dataclasses.replace(
        ds, x_train=ds.x_train[:n], y_train=ds.y_train[:n],
        noisy_labels={k: v[:n] for k, v in ds.noisy_labels.items()})


def parse_train_sizes(text: str, flag: str = "--train-sizes") -> tuple[int, ...]:
    """`"250,1000,4000"` -> (250, 1000, 4000): two or more distinct sizes >= 1."""
    try:
        sizes = tuple(int(v) for v in split_list(text))
    except ValueError:
        raise ValueError(f"{flag}: not a list of integers: {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1 or len(set(sizes)) < len(sizes):
        raise ValueError(f"{flag}: give two or more distinct sizes >= 1, e.g. "
                         f"250,1000,4000 (got {text!r}); one size is --train-size")
    return sizes


def compatible_archs(dataset: data_lib.Dataset, archs: tuple[str, ...]) -> list[str]:
    """The architectures of `archs` that accept `dataset`'s input shape."""
    return [a for a in archs if models.arch_supports(a, dataset.input_shape)]


def sample_tasks(
    rng: np.random.Generator,
    n: int,
    datasets: tuple[str, ...],
    archs_for: dict[str, list[str]],
    noises: tuple[NoiseRange, ...],
    stratify: bool = False,
    recipes: tuple[Recipe, ...] = (Recipe(),),
    train_sizes: tuple[int, ...] = (0,),
) -> list[Task]:
    """Draw `n` tasks: dataset uniformly, then a compatible arch and noise, then a rate.

    Datasets cycle (task i uses dataset (offset + i) mod len) so a generation with as
    many tasks as datasets covers every dataset once; the offset is random. With
    `stratify`, the noise ranges cycle the same way (task i uses the range (offset2 +
    i) mod len among those that fit its dataset), so a generation with as many tasks
    as ranges scores every range once instead of whichever ones the draw favours.
    Each task's recipe is drawn uniformly from `recipes`, then its training-set
    size from `train_sizes` (no draw where there is one, so the draws of a pool
    without them do not depend on them).
    """
    offset = int(rng.integers(len(datasets)))
    # Drawn only when used, so unstratified draws match those of earlier versions.
    noise_offset = int(rng.integers(len(noises))) if stratify else 0
    tasks = []
    for i in range(n):
        name = datasets[(offset + i) % len(datasets)]
        arch = archs_for[name][int(rng.integers(len(archs_for[name])))]
        fits = [r for r in noises if noise_fits(r.kind, name)]
        if stratify:
            r = fits[(noise_offset + i) % len(fits)]
        else:
            r = fits[int(rng.integers(len(fits)))]
        rate = float(rng.uniform(r.low, r.high)) if r.high > r.low else r.low
        recipe = (recipes[int(rng.integers(len(recipes)))] if len(recipes) > 1
                  else recipes[0])
        size = (train_sizes[int(rng.integers(len(train_sizes)))]
                if len(train_sizes) > 1 else train_sizes[0])
        tasks.append(Task(name, arch, r.spec(rate), i, recipe, size))
    return tasks


def noisy_task_data(
    key: jax.Array, clean: data_lib.Dataset, spec: str
) -> data_lib.Dataset:
    """`clean` with the task's label noise applied to `y_train` only."""
    return noise.apply_noise(key, clean, spec)

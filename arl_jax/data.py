"""Datasets -> numpy arrays, once, outside jit.

`load(name, ...)` returns a `Dataset`: float32 features, int32 labels, and a clean
validation split taken from the training set. Scaling, per dataset:

| name | input_shape | features | test split |
| --- | --- | --- | --- |
| synthetic | (dim,) | Gaussian mixture, noise std 1 | fresh draws (num_test) |
| digits | (8, 8, 1) | pixel / 16 in [0, 1] | fixed 20% (seed 1234) |
| digits28 | (28, 28, 1) | digits upscaled, distorted, in [0, 1] | as digits |
| fontdigits | (28, 28, 1) | font digits, distorted, in [0, 1] | own draws |
| fontdigits_mild | (28, 28, 1) | as fontdigits, half the warps | own draws |
| fontdigits_blend | (28, 28, 1) | mild, laid over by other classes | own draws |
| fontdigits_blend_hard | (28, 28, 1) | as blend, heavier overlays | own draws |
| mnist1d | (40,) | as generated: mean 0, std 1 over all samples | last 20% |
| fashion_mnist, mnist, kmnist, emnist/digits | (28, 28, 1) | pixel / 255 | official |
| svhn_cropped, cifar10, cifar100 | (32, 32, 3) | pixel / 255 | official |
| usps | (16, 16, 1) | LIBSVM [-1, 1] mapped to [0, 1] | official (usps.t) |
| clothing1m | (s, s, 3), s = image_size | pixel / 255 after resize | official clean |

TFDS datasets use their train and test splits (svhn_cropped: 73,257 / 26,032; its
"extra" split is not read). Clothing1M's training labels are its real noisy labels
and its validation set is the official clean one (`val_fraction` is unused); use
the noise spec "none" with it.

Your own data, in every command line and in `load`:

- ``npz:PATH``: a NumPy ``.npz`` with ``x_train``, ``y_train``, ``x_test``,
  ``y_test`` (features ``[n, ...]`` float, labels ``[n]`` int in ``[0, C)``),
  optionally ``x_val``/``y_val`` (else ``val_fraction`` of train), ``num_classes``,
  and ``noisy_<name>`` arrays: other labels of the training examples (e.g. real
  human annotations), used with the noise spec ``labels:<name>``.
- ``tfds:NAME[:TRAIN_SPLIT:TEST_SPLIT][@LABEL_KEY]``: any prepared TFDS image
  dataset, e.g. ``tfds:cifar10_n`` (clean labels ``label``; its ``worse_label``,
  ``aggre_label``, ``random_label1`` ... become noise specs ``labels:worse_label``).
- `register(name, loader)`: a name for a function returning a `Dataset` (e.g.
  `Dataset.from_arrays`), usable wherever a dataset name is.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
from collections.abc import Callable

import numpy as np

from arl_jax import data_readers as readers
from arl_jax.data_generated import (  # noqa: F401 - re-exported: data.make_*
    DIGITS_TEST_FRACTION,
    FONTDIGITS_BLEND,
    FONTDIGITS_BLEND_HARD,
    FONTDIGITS_FONTS,
    FONTDIGITS_MILD_WARPS,
    TEST_SPLIT_SEED,
    _fontdigits_loader,
    _load_digits,
    _load_digits28,
    _load_mnist1d,
    _load_synthetic,
    make_digits28,
    make_fontdigits,
    make_synthetic,
)

DATASETS = (
    "synthetic",
    "digits",
    "digits28",
    "fontdigits",
    "fontdigits_mild",
    "fontdigits_blend",
    "fontdigits_blend_hard",
    "mnist1d",
    "fashion_mnist",
    "mnist",
    "kmnist",
    "emnist/digits",
    "svhn_cropped",
    "cifar10",
    "cifar100",
    "usps",
    "clothing1m",
)
NUM_CLASSES = {name: 10 for name in DATASETS} | {"cifar100": 100, "clothing1m": 14}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One dataset's splits as read-only numpy arrays (features float32 [n, *shape],
    labels int32 [n]). Only `y_train` is ever noisy (see `arl_jax.noise`)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str
    input_shape: tuple[int, ...]
    # Other labels of the training examples, aligned with y_train (e.g. real human
    # noisy labels), by name: the noise spec "labels:NAME" trains on them.
    noisy_labels: types.MappingProxyType = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({}))

    def __post_init__(self):
        noisy = {}
        for key, labels in dict(self.noisy_labels).items():
            y = np.asarray(labels)
            if not np.issubdtype(y.dtype, np.integer) or y.shape != np.shape(
                    self.y_train):
                raise ValueError(f"noisy labels {key!r} must be integers shaped like "
                                 f"y_train {np.shape(self.y_train)}; got {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= int(self.num_classes)):
                raise ValueError(f"noisy labels {key!r} outside "
                                 f"0..{self.num_classes - 1}")
            y = y.astype(np.int32)
            y.setflags(write=False)
            noisy[str(key)] = y
        object.__setattr__(self, "noisy_labels", types.MappingProxyType(noisy))
        shape = tuple(int(d) for d in self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "num_classes", int(self.num_classes))
        for split in ("train", "val", "test"):
            x = np.asarray(getattr(self, f"x_{split}"), dtype=np.float32)
            y = np.asarray(getattr(self, f"y_{split}"))
            if not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
                raise ValueError(f"y_{split} must hold integers, got {y.dtype}")
            y = y.astype(np.int32, copy=False)
            if x.shape[1:] != shape or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"{split}: x {x.shape} and y {y.shape} do not fit input_shape "
                    f"{shape} (want x [n, *input_shape], y [n])"
                )
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"y_{split} outside 0..{self.num_classes - 1}")
            x.setflags(write=False)
            y.setflags(write=False)
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)

    def __repr__(self) -> str:
        noisy = f", noisy_labels={list(self.noisy_labels)}" if self.noisy_labels else ""
        return (
            f"Dataset(name={self.name!r}, num_classes={self.num_classes}, "
            f"input_shape={self.input_shape}, train={len(self.y_train)}, "
            f"val={len(self.y_val)}, test={len(self.y_test)}{noisy})"
        )

    @classmethod
    def from_arrays(
        cls, x_train, y_train, x_test, y_test, *, x_val=None, y_val=None,
        noisy_labels: dict | None = None, num_classes: int | None = None,
        name: str = "arrays", val_fraction: float = 0.1, seed: int = 0,
    ) -> Dataset:
        """A dataset of your own arrays.

        Args:
          x_train, y_train, x_test, y_test: features ``[n, ...]`` and clean integer
            labels ``[n]`` in ``[0, num_classes)``.
          x_val, y_val: a clean validation split; if not given, `val_fraction` of
            the training set (chosen with `seed`) becomes it.
          noisy_labels: ``{name: [n_train] int}`` other labels of the training
            examples (e.g. real human annotations), for the noise spec
            ``labels:name``.
          num_classes: default ``max label + 1``.
          name: what tables and errors call it.
        """
        y_train = np.asarray(y_train)
        noisy = {k: np.asarray(v) for k, v in (noisy_labels or {}).items()}
        for k, v in noisy.items():
            if v.shape != y_train.shape:
                raise ValueError(f"noisy labels {k!r} have shape {v.shape}; y_train "
                                 f"has {y_train.shape}")
        if num_classes is None:
            every = [y_train, np.asarray(y_test), *noisy.values()]
            every += [] if y_val is None else [np.asarray(y_val)]
            num_classes = max(2, int(max(int(v.max()) for v in every if v.size)) + 1)
        if (x_val is None) != (y_val is None):
            raise ValueError("give both x_val and y_val, or neither")
        if x_val is None:
            x_train, y_train, x_val, y_val, idx = split_train_val(
                np.asarray(x_train), y_train, val_fraction, seed, return_index=True)
            noisy = {k: v[idx] for k, v in noisy.items()}
        x_train = np.asarray(x_train)
        return cls(x_train, y_train, x_val, y_val, x_test, y_test,
                   num_classes=num_classes, name=name,
                   input_shape=x_train.shape[1:], noisy_labels=noisy)


def load(
    name: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    data_dir: str | os.PathLike | None = None,
    **kwargs,
) -> Dataset:
    """Load dataset `name` (one of `DATASETS`) as numpy arrays.

    Args:
      name: dataset name; an unknown one gets a ValueError listing `DATASETS`.
      seed: seed of the validation split: `val_fraction` of the training set, chosen
        by `np.random.default_rng(seed).permutation`; the rest, in that permuted
        order, is `x_train`. The test split never depends on `seed`.
      val_fraction: in [0, 1); the validation labels stay clean.
      data_dir: where to look for local files (fashion_mnist, usps, clothing1m;
        `$ARL_DATA_DIR` is searched after it) and the TFDS data folder.
      **kwargs: per dataset:
        synthetic: num_train=5000, num_test=1000, dim=20, num_classes=10,
          clusters_per_class=3, separation=6.0, data_seed=0 (see `make_synthetic`);
        digits28: data_seed=0 (the distortions, see `make_digits28`);
        fontdigits, fontdigits_mild, fontdigits_blend, fontdigits_blend_hard:
          num_train=12000, num_test=2000, data_seed=0 (see `make_fontdigits`,
          `FONTDIGITS_MILD_WARPS`, `FONTDIGITS_BLEND`, `FONTDIGITS_BLEND_HARD`);
        mnist1d: num_samples=5000 (train + test), data_seed=42;
        TFDS datasets (and fashion_mnist without local files): download=False;
        clothing1m: image_size=32, max_train=None, max_eval=None.

    Returns:
      A `Dataset`. Missing data raises FileNotFoundError saying how to get it; a
      checksum mismatch raises ValueError.
    """
    check_name(name)
    if name in _REGISTERED:
        ds = _REGISTERED[name]()
        if not isinstance(ds, Dataset):
            raise ValueError(f"the loader registered as {name!r} returned "
                             f"{type(ds).__name__}, not a Dataset")
        return ds
    if not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not (math.isfinite(val_fraction) and 0.0 <= val_fraction < 1.0):
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    prefix, _, rest = name.partition(":")
    if prefix == "npz":
        raw = _read_npz(rest)
    elif prefix == "tfds":
        tfds_name, splits, label_key = parse_tfds_name(rest)
        raw = readers.read_tfds(tfds_name, data_dir, splits=splits,
                                label_key=label_key, **kwargs)
    else:
        raw = _LOADERS[name](data_dir=data_dir, **kwargs)
    noisy = dict(raw.noisy or {})
    if raw.x_val is not None:  # an official clean validation split
        x_tr, y_tr, x_val, y_val = raw.x_train, raw.y_train, raw.x_val, raw.y_val
    else:
        x_tr, y_tr, x_val, y_val, idx = split_train_val(
            raw.x_train, raw.y_train, val_fraction, seed, return_index=True
        )
        noisy = {k: v[idx] for k, v in noisy.items()}
    num_classes = kwargs.get("num_classes", raw.num_classes or NUM_CLASSES.get(name))
    if num_classes is None:  # a file of the user's: the largest label + 1
        every = [raw.y_train, raw.y_test, *noisy.values()]
        num_classes = max(2, max(int(v.max()) for v in every if v.size) + 1)
    return Dataset(
        x_tr,
        y_tr,
        x_val,
        y_val,
        raw.x_test,
        raw.y_test,
        num_classes=num_classes,
        name=name,
        input_shape=raw.x_train.shape[1:],
        noisy_labels=noisy,
    )


def standardize(ds: Dataset) -> Dataset:
    """`ds` with every split's features shifted and scaled by the training set's
    mean and standard deviation (one scalar each, over all features), as a user who
    "standardises the pixels" does."""
    mean = np.float32(ds.x_train.mean())
    std = np.float32(max(float(ds.x_train.std()), 1e-6))

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float32)

    return dataclasses.replace(ds, x_train=scale(ds.x_train), x_val=scale(ds.x_val),
                               x_test=scale(ds.x_test))


def parse_tfds_name(text: str) -> tuple[str, tuple[str, str], str]:
    """``NAME[:TRAIN:TEST][@LABEL_KEY]`` -> (name, (train split, test split), label
    key); defaults ``("train", "test")`` and ``"label"``."""
    text, _, label_key = text.partition("@")
    name, *splits = text.split(":")
    if not name or len(splits) not in (0, 2) or not all(splits):
        raise ValueError(f"tfds:{text}: expected tfds:NAME[:TRAIN_SPLIT:TEST_SPLIT]"
                         "[@LABEL_KEY], e.g. tfds:cifar10_n or tfds:mnist:train:test")
    return name, tuple(splits) or ("train", "test"), label_key or "label"


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: str) -> readers.RawData:
    """A user's ``.npz`` (see the module docstring for its keys)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"npz:{path}: cannot read it ({err})") from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"npz:{path}: missing arrays {missing}; it needs "
                         f"{', '.join(NPZ_KEYS)} (optional x_val, y_val, num_classes, "
                         "noisy_<name>)")
    noisy = {k[len("noisy_"):]: v for k, v in arrays.items() if k.startswith("noisy_")}
    for k in ("y_train", "y_test", "y_val", *(f"noisy_{n}" for n in noisy)):
        if k in arrays and not np.issubdtype(arrays[k].dtype, np.integer):
            raise ValueError(f"npz:{path}: {k} must hold integer labels; got "
                             f"{arrays[k].dtype}")
    return readers.RawData(
        arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
        arrays.get("x_val"), arrays.get("y_val"), noisy or None,
        int(arrays["num_classes"]) if "num_classes" in arrays else None)


_REGISTERED: dict[str, Callable[[], Dataset]] = {}


def register(name: str, loader: Callable[[], Dataset] | Dataset) -> None:
    """Make `name` a dataset name (for `load`, the search and the meta-test): a
    function returning a `Dataset`, or a `Dataset` itself."""
    if not name or ":" in name or name in _LOADERS:
        raise ValueError(f"cannot register {name!r}: a built-in name, empty, or with "
                         "':' (reserved for npz: and tfds:)")
    _REGISTERED[name] = loader if callable(loader) else (lambda: loader)


def check_name(name: str) -> None:
    """Raise ValueError (naming the fix) unless `name` is a dataset `load` knows: a
    built-in name, a registered one, ``npz:PATH`` of an existing file, or
    ``tfds:NAME...``. Cheap: nothing is read."""
    prefix, sep, rest = name.partition(":")
    if sep and prefix == "npz":
        if not os.path.isfile(rest):
            raise ValueError(f"dataset npz:{rest}: no such file")
        return
    if sep and prefix == "tfds":
        parse_tfds_name(rest)
        return
    if name not in _LOADERS and name not in _REGISTERED:
        valid = ", ".join([*DATASETS, *_REGISTERED])
        raise ValueError(f"unknown dataset {name!r}; valid names: {valid}, "
                         "npz:PATH or tfds:NAME")


def split_train_val(
    x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int,
    return_index: bool = False,
) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val[, train_index]): the first round(val_fraction
    * n) indices of `np.random.default_rng(seed).permutation(n)` go to validation,
    the rest to train (their indices into `x` are `train_index`)."""
    n = len(y)
    n_val = int(round(val_fraction * n))
    if n_val >= n:
        raise ValueError(f"val_fraction {val_fraction} leaves no training example")
    perm = np.random.default_rng(seed).permutation(n)
    val, train = perm[:n_val], perm[n_val:]
    out = (x[train], y[train], x[val], y[val])
    return (*out, train) if return_index else out


def _load_fashion_mnist(*, data_dir=None, download: bool = False) -> readers.RawData:
    """Local gz IDX files (sha256-checked) when found, else TFDS."""
    directory = readers.find_fashion_mnist(data_dir)
    if directory is not None:
        return readers.read_fashion_mnist(directory)
    try:
        return readers.read_tfds("fashion_mnist", data_dir, download=download)
    except (FileNotFoundError, ImportError) as err:
        raise FileNotFoundError(
            "Fashion-MNIST not found. Install the Debian package "
            "(apt-get install dataset-fashion-mnist, files in "
            f"{readers.SYSTEM_FASHION_MNIST_DIR}), or put "
            f"{', '.join(readers.FASHION_MNIST_FILES)} in data_dir or $ARL_DATA_DIR "
            "(or their fashion-mnist/ subfolder). TFDS fallback: " + str(err)
        ) from err


def _tfds_loader(tfds_name: str, transpose: bool = False) -> Callable:
    def loader(*, data_dir=None, download: bool = False) -> readers.RawData:
        return readers.read_tfds(
            tfds_name, data_dir, download=download, transpose=transpose
        )

    return loader


def _load_mnist(*, data_dir=None, download: bool = False) -> readers.RawData:
    """MNIST from the offline pickle (`make data`) when there is one, else TFDS."""
    path = readers.find_mnist_pickle(data_dir)
    if path is not None:
        return readers.read_mnist_pickle(path)
    return readers.read_tfds("mnist", data_dir, download=download)


def _load_usps(*, data_dir=None) -> readers.RawData:
    return readers.read_usps(data_dir)


def _load_clothing1m(*, data_dir=None, **kwargs) -> readers.RawData:
    return readers.read_clothing1m(data_dir, **kwargs)


_LOADERS: dict[str, Callable[..., readers.RawData]] = {
    "synthetic": _load_synthetic,
    "digits": _load_digits,
    "digits28": _load_digits28,
    "fontdigits": _fontdigits_loader("fontdigits"),
    "fontdigits_mild": _fontdigits_loader("fontdigits_mild"),
    "fontdigits_blend": _fontdigits_loader("fontdigits_blend"),
    "fontdigits_blend_hard": _fontdigits_loader("fontdigits_blend_hard"),
    "mnist1d": _load_mnist1d,
    "fashion_mnist": _load_fashion_mnist,
    "mnist": _load_mnist,
    "kmnist": _tfds_loader("kmnist"),
    # EMNIST is stored transposed relative to MNIST; swap back to MNIST's layout.
    "emnist/digits": _tfds_loader("emnist/digits", transpose=True),
    "svhn_cropped": _tfds_loader("svhn_cropped"),
    "cifar10": _tfds_loader("cifar10"),
    "cifar100": _tfds_loader("cifar100"),
    "usps": _load_usps,
    "clothing1m": _load_clothing1m,
}
assert set(_LOADERS) == set(DATASETS)

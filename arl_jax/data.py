"""Datasets -> numpy arrays, once, outside jit.

`load(name, ...)` returns a `Dataset`: float32 features, int32 labels, and a clean
validation split taken from the training set. Scaling, per dataset:

| name | input_shape | features | test split |
| --- | --- | --- | --- |
| synthetic | (dim,) | Gaussian mixture, noise std 1 | fresh draws (num_test) |
| digits | (8, 8, 1) | pixel / 16 in [0, 1] | fixed 20% (seed 1234) |
| digits28 | (28, 28, 1) | digits upscaled, distorted, in [0, 1] | as digits |
| mnist1d | (40,) | as generated: mean 0, std 1 over all samples | last 20% |
| fashion_mnist, mnist, kmnist, emnist/digits | (28, 28, 1) | pixel / 255 | official |
| svhn_cropped, cifar10, cifar100 | (32, 32, 3) | pixel / 255 | official |
| usps | (16, 16, 1) | LIBSVM [-1, 1] mapped to [0, 1] | official (usps.t) |
| clothing1m | (s, s, 3), s = image_size | pixel / 255 after resize | official clean |

TFDS datasets use their train and test splits (svhn_cropped: 73,257 / 26,032; its
"extra" split is not read). Clothing1M's training labels are its real noisy labels
and its validation set is the official clean one (`val_fraction` is unused); use
the noise spec "none" with it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import random
from collections.abc import Callable

import numpy as np

from arl_jax import data_readers as readers

DATASETS = (
    "synthetic",
    "digits",
    "digits28",
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
# Seed of the fixed test split of datasets that ship without one (digits): the test
# set must not move with `seed`, so that test accuracies compare across seeds.
TEST_SPLIT_SEED = 1234
DIGITS_TEST_FRACTION = 0.2


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

    def __post_init__(self):
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
        return (
            f"Dataset(name={self.name!r}, num_classes={self.num_classes}, "
            f"input_shape={self.input_shape}, train={len(self.y_train)}, "
            f"val={len(self.y_val)}, test={len(self.y_test)})"
        )


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
        mnist1d: num_samples=5000 (train + test), data_seed=42;
        TFDS datasets (and fashion_mnist without local files): download=False;
        clothing1m: image_size=32, max_train=None, max_eval=None.

    Returns:
      A `Dataset`. Missing data raises FileNotFoundError saying how to get it; a
      checksum mismatch raises ValueError.
    """
    if name not in _LOADERS:
        valid = ", ".join(DATASETS)
        raise ValueError(f"unknown dataset {name!r}; valid names: {valid}")
    if not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not (math.isfinite(val_fraction) and 0.0 <= val_fraction < 1.0):
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    raw = _LOADERS[name](data_dir=data_dir, **kwargs)
    if raw.x_val is not None:  # an official clean validation split (clothing1m)
        x_tr, y_tr, x_val, y_val = raw.x_train, raw.y_train, raw.x_val, raw.y_val
    else:
        x_tr, y_tr, x_val, y_val = split_train_val(
            raw.x_train, raw.y_train, val_fraction, seed
        )
    num_classes = kwargs.get("num_classes", NUM_CLASSES[name])
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
    )


def split_train_val(
    x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): the first round(val_fraction * n) indices of
    `np.random.default_rng(seed).permutation(n)` go to validation, the rest to train."""
    n = len(y)
    n_val = int(round(val_fraction * n))
    if n_val >= n:
        raise ValueError(f"val_fraction {val_fraction} leaves no training example")
    perm = np.random.default_rng(seed).permutation(n)
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], x[val], y[val]


def make_synthetic(
    *,
    num_train: int = 5000,
    num_test: int = 1000,
    dim: int = 20,
    num_classes: int = 10,
    clusters_per_class: int = 3,
    separation: float = 6.0,
    data_seed: int = 0,
) -> readers.RawData:
    """A seeded Gaussian-mixture task: each class is a mixture of
    `clusters_per_class` unit-variance Gaussians in `dim` dimensions whose centres are
    drawn N(0, separation^2 / (2 dim) I), so two centres lie about `separation`
    noise standard deviations apart. Several clusters per class make the classes
    not linearly separable: with the defaults logistic regression reaches about
    65% test accuracy and a small MLP about 90%.

    Labels are balanced (n // C per class, the remainder to the first classes). Train
    and test are independent draws from the same mixture, fixed by `data_seed`.
    """
    for key, value in (
        ("num_train", num_train),
        ("num_test", num_test),
        ("dim", dim),
        ("clusters_per_class", clusters_per_class),
    ):
        if int(value) < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if not (math.isfinite(separation) and separation >= 0):
        raise ValueError(f"separation must be finite and >= 0, got {separation}")
    rng = np.random.default_rng(data_seed)
    centres = rng.normal(size=(num_classes, clusters_per_class, dim))
    centres *= separation / math.sqrt(2.0 * dim)  # [C, K, dim]

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % num_classes)
        k = rng.integers(0, clusters_per_class, size=n)
        x = centres[y, k] + rng.normal(size=(n, dim))
        return x.astype(np.float32), y.astype(np.int32)

    return readers.RawData(*draw(num_train), *draw(num_test))


def _load_synthetic(*, data_dir=None, **kwargs) -> readers.RawData:
    del data_dir
    return make_synthetic(**kwargs)


def _load_digits(*, data_dir=None) -> readers.RawData:
    """sklearn's 8x8 digits (1,797 images, 0..16 -> /16) with a fixed 20% test split."""
    del data_dir
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]  # [1797, 8, 8, 1]
    y = digits.target.astype(np.int32)
    perm = np.random.default_rng(TEST_SPLIT_SEED).permutation(len(y))
    n_test = int(round(DIGITS_TEST_FRACTION * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    return readers.RawData(x[train], y[train], x[test], y[test])


def make_digits28(
    images: np.ndarray, *, data_seed: int = 0, max_rotation: float = 15.0,
    scale: tuple[float, float] = (0.85, 1.15), max_shift: float = 2.0,
) -> np.ndarray:
    """8x8 digit images in [0, 1] [n, 8, 8] -> MNIST-like 28x28 images [n, 28, 28].

    Each image is upscaled bilinearly to 20x20 and centred in a 28x28 frame, as
    MNIST centres its digits in a 20x20 box, then distorted by a random affine map
    about the centre: a rotation in +-`max_rotation` degrees, a zoom in `scale` and a
    shift of up to `max_shift` pixels along each axis, drawn from
    `np.random.default_rng(data_seed)` in image order (bilinear, clipped to [0, 1]).
    """
    from scipy import ndimage

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"want images [n, 8, 8], got {images.shape}")
    if not 0.0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
    if max_rotation < 0 or max_shift < 0:
        raise ValueError(
            f"max_rotation and max_shift must be >= 0, got {max_rotation}, {max_shift}"
        )
    rng = np.random.default_rng(data_seed)
    n = len(images)
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))
    zoom = rng.uniform(*scale, n)
    shift = rng.uniform(-max_shift, max_shift, (n, 2))
    centre = np.full(2, 13.5)
    frames = np.zeros((n, 28, 28))
    frames[:, 4:24, 4:24] = ndimage.zoom(images, (1, 2.5, 2.5), order=1)
    out = np.empty((n, 28, 28), np.float32)
    for i, frame in enumerate(frames):
        cos, sin = np.cos(angle[i]), np.sin(angle[i])
        # affine_transform maps output coordinates to input ones: the inverse map.
        inverse = np.array([[cos, -sin], [sin, cos]]) / zoom[i]
        offset = centre - inverse @ (centre + shift[i])
        warped = ndimage.affine_transform(frame, inverse, offset=offset, order=1)
        out[i] = np.clip(warped, 0.0, 1.0)
    return out


def _load_digits28(*, data_dir=None, data_seed: int = 0) -> readers.RawData:
    """`digits` at MNIST's 28x28 (`make_digits28`), with the same fixed test split:
    a meta-train task whose convolutions see images of Fashion-MNIST's size."""
    raw = _load_digits(data_dir=data_dir)
    children = np.random.SeedSequence(int(data_seed)).spawn(2)  # train, test
    seeds = [int(child.generate_state(1)[0]) for child in children]
    x_train = make_digits28(raw.x_train[..., 0], data_seed=seeds[0])[..., None]
    x_test = make_digits28(raw.x_test[..., 0], data_seed=seeds[1])[..., None]
    return readers.RawData(x_train, raw.y_train, x_test, raw.y_test)


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, data_seed: int) -> tuple[np.ndarray, ...]:
    """mnist1d's generator (no download), cached; arrays are read-only."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = data_seed
    # make_dataset seeds the global `random` and `np.random`; leave them as found.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        raw["x"].astype(np.float32),
        raw["y"].astype(np.int32),
        raw["x_test"].astype(np.float32),
        raw["y_test"].astype(np.int32),
    )
    for array in arrays:
        array.setflags(write=False)
    return arrays


def _load_mnist1d(
    *, data_dir=None, num_samples: int = 5000, data_seed: int = 42
) -> readers.RawData:
    """MNIST-1D: `num_samples` sequences of length 40 (80% train, 20% test)."""
    del data_dir
    if int(num_samples) < 50:
        raise ValueError(f"mnist1d needs num_samples >= 50, got {num_samples}")
    return readers.RawData(*_mnist1d_arrays(int(num_samples), int(data_seed)))


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


def _load_usps(*, data_dir=None) -> readers.RawData:
    return readers.read_usps(data_dir)


def _load_clothing1m(*, data_dir=None, **kwargs) -> readers.RawData:
    return readers.read_clothing1m(data_dir, **kwargs)


_LOADERS: dict[str, Callable[..., readers.RawData]] = {
    "synthetic": _load_synthetic,
    "digits": _load_digits,
    "digits28": _load_digits28,
    "mnist1d": _load_mnist1d,
    "fashion_mnist": _load_fashion_mnist,
    "mnist": _tfds_loader("mnist"),
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

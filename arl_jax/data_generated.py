"""Datasets made on this machine, with no download: a Gaussian mixture, scikit-learn's
digits (and a 28x28 distorted version), digits drawn from the machine's fonts, and
MNIST-1D. Each `_load_*` returns `data_readers.RawData` for `arl_jax.data.load`.
"""

from __future__ import annotations

import functools
import math
import os
import random
import types
from collections.abc import Callable

import numpy as np

from arl_jax import data_readers as readers

# Seed of the fixed test split of datasets that ship without one (digits): the test
# set must not move with `seed`, so that test accuracies compare across seeds.
TEST_SPLIT_SEED = 1234
DIGITS_TEST_FRACTION = 0.2


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


# The text fonts that ship inside matplotlib (mpl-data/fonts/ttf), so `fontdigits`
# needs no download and no system fonts: 21 faces from five families.
FONTDIGITS_FONTS = (
    *(f"DejaVuSans{s}.ttf" for s in ("", "-Bold", "-Oblique", "-BoldOblique")),
    *(f"DejaVuSansMono{s}.ttf" for s in ("", "-Bold", "-Oblique", "-BoldOblique")),
    *(f"DejaVuSerif{s}.ttf" for s in ("", "-Bold", "-Italic", "-BoldItalic")),
    *(f"STIXGeneral{s}.ttf" for s in ("", "Bol", "Italic", "BolIta")),
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmti10.ttf",
    "cmtt10.ttf",
)
_GLYPH_FRAME = 56  # glyphs are drawn and warped at twice 28x28, then averaged down


@functools.lru_cache(maxsize=1)
def _font_glyphs() -> np.ndarray:
    """Digits 0-9 in each of `FONTDIGITS_FONTS`: [fonts, 10, 56, 56] in [0, 1], each
    scaled to fit a 40x40 box (MNIST's 20x20 at twice the size) and centred on its
    centre of mass, as MNIST's digits are. Read-only."""
    import matplotlib
    from matplotlib.ft2font import FT2Font
    from scipy import ndimage

    size, box = _GLYPH_FRAME, 40
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    glyphs = np.zeros((len(FONTDIGITS_FONTS), 10, size, size), np.float32)
    for f, name in enumerate(FONTDIGITS_FONTS):
        font = FT2Font(os.path.join(folder, name))
        font.set_size(64, 72)
        for digit in range(10):
            font.set_text(str(digit))
            font.draw_glyphs_to_bitmap(antialiased=True)
            ink = np.asarray(font.get_image(), np.float64) / 255.0
            rows, cols = np.nonzero(ink > 0.05)
            ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            ink = np.clip(ndimage.zoom(ink, box / max(ink.shape), order=1), 0.0, 1.0)
            h, w = ink.shape
            frame = np.zeros((size, size))
            top, left = (size - h) // 2, (size - w) // 2
            frame[top : top + h, left : left + w] = ink
            cy, cx = ndimage.center_of_mass(frame)
            centre = (size - 1) / 2
            frame = ndimage.shift(frame, (centre - cy, centre - cx), order=1)
            glyphs[f, digit] = np.clip(frame, 0.0, 1.0)
    glyphs.setflags(write=False)
    return glyphs


def make_fontdigits(
    num_samples: int, *, data_seed: int | np.random.SeedSequence = 0,
    max_rotation: float = 15.0,
    scale: tuple[float, float] = (0.8, 1.1), max_shear: float = 0.25,
    max_shift: float = 2.0, elastic: float = 2.0,
    thickness: tuple[float, float] = (0.2, 0.55),
    blend: float = 0.0, blend_weight: tuple[float, float] = (0.0, 0.5),
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like handwritten-looking digits drawn from fonts, as many as asked.

    Each sample is one of `FONTDIGITS_FONTS`' digits (classes balanced to within one,
    fonts uniform), blurred, then warped by a random affine map about the centre (a
    rotation in +-`max_rotation` degrees, a zoom in `scale`, a shear in
    +-`max_shear`, a shift of up to `max_shift` pixels per axis) and a smooth random
    elastic field (Simard et al. 2003; root-mean-square displacement `elastic`
    pixels), thresholded at a random level in `thickness` (lower: bolder strokes) and
    averaged down to 28x28. Then a share `blend` of the images is laid over by
    another image of another class, drawn from the same set, with a weight w
    uniform in `blend_weight` (`image * (1 - w) + other * w`, label kept): near
    w = 0.5 they are ambiguous, as Fashion-MNIST's shirts and pullovers
    are, so no classifier reads every image. All draws come from
    `np.random.default_rng(data_seed)`; the blend's come after the others, so
    `blend` = 0 gives the same images as before it existed.

    Returns:
      images float32 [num_samples, 28, 28] in [0, 1], labels int32 [num_samples].
    """
    from scipy import ndimage

    num_samples = int(num_samples)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not 0.0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
    if not 0.0 <= thickness[0] <= thickness[1] <= 1.0:
        raise ValueError(f"thickness must be (low, high) in [0, 1], got {thickness}")
    if min(max_rotation, max_shear, max_shift, elastic) < 0:
        raise ValueError("max_rotation, max_shear, max_shift and elastic must be >= 0")
    if not (0.0 <= blend <= 1.0 and 0.0 <= blend_weight[0] <= blend_weight[1] <= 0.5):
        raise ValueError(
            "blend must be in [0, 1] and blend_weight (low, high) in [0, 0.5], got "
            f"{blend}, {blend_weight}"
        )
    rng = np.random.default_rng(data_seed)
    glyphs = ndimage.gaussian_filter(_font_glyphs(), (0, 0, 1.5, 1.5))
    glyphs /= glyphs.max(axis=(2, 3), keepdims=True)
    labels = rng.permutation(np.arange(num_samples) % 10).astype(np.int32)
    fonts = rng.integers(0, len(FONTDIGITS_FONTS), num_samples)
    size = _GLYPH_FRAME
    centre = (size - 1) / 2
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32) - centre
    out = np.empty((num_samples, 28, 28), np.float32)
    chunk = 1000
    for start in range(0, num_samples, chunk):
        n = min(chunk, num_samples - start)
        part = slice(start, start + n)
        angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, (n, 1, 1)))
        zoom = rng.uniform(*scale, (n, 1, 1))
        shear = rng.uniform(-max_shear, max_shear, (n, 1, 1))
        shift = 2 * rng.uniform(-max_shift, max_shift, (2, n, 1, 1))  # at 56x56
        # The inverse map, output pixel -> input pixel, as map_coordinates wants.
        y, x = grid_y - shift[0], grid_x - shift[1]
        cos, sin = np.cos(angle), np.sin(angle)
        src_y = (-sin * x + cos * y) / zoom
        src_x = (cos * x + sin * y) / zoom - shear * src_y
        field = ndimage.gaussian_filter(
            rng.uniform(-1, 1, (2, n, size, size)).astype(np.float32), (0, 0, 6, 6)
        )
        rms = np.sqrt((field**2).sum(axis=0).mean(axis=(1, 2), keepdims=True))
        field *= 2 * elastic / np.maximum(rms, 1e-8)  # at 56x56
        index = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], y.shape)
        coords = [index, src_y + centre + field[0], src_x + centre + field[1]]
        warped = ndimage.map_coordinates(
            glyphs[fonts[part], labels[part]], coords, order=1, mode="constant"
        )
        level = rng.uniform(*thickness, (n, 1, 1))
        ink = np.clip((warped - level) / 0.2 + 0.5, 0.0, 1.0)
        out[part] = ink.reshape(n, 28, 2, 28, 2).mean(axis=(2, 4))
    if blend > 0:
        other = rng.permutation(num_samples)
        laid = (rng.random(num_samples) < blend) & (labels[other] != labels)
        weight = rng.uniform(*blend_weight, (num_samples, 1, 1))[laid]
        out[laid] = out[laid] * (1 - weight) + out[other[laid]] * weight
    return out, labels


# `fontdigits_mild`: `make_fontdigits` with half of each warp (rotation, the zoom's
# spread about 1, shear, shift and elastic displacement); the stroke weight varies
# as much. Under heavy label noise a network keeps about the share of its clean
# accuracy on these that it keeps on Fashion-MNIST (docs/runs/fontdigits_warps), and
# far more than on `fontdigits`, although clean they are easier than either.
FONTDIGITS_MILD_WARPS = types.MappingProxyType(
    {"max_rotation": 7.5, "scale": (0.9, 1.05), "max_shear": 0.125,
     "max_shift": 1.0, "elastic": 1.0}  # fmt: skip
)
# `fontdigits_blend`: `fontdigits_mild` with every image laid over by another
# class's at a weight in [0.15, 0.5], so that some cannot be read: clean, the MLP
# reads 87-90% of them and LeNet-5 91-93%, where they read 85-88% of Fashion-MNIST,
# and under heavy label noise a network keeps about Fashion-MNIST's share of its
# clean accuracy (docs/runs/fontdigits_blend).
FONTDIGITS_BLEND = types.MappingProxyType(
    {**FONTDIGITS_MILD_WARPS, "blend": 1.0, "blend_weight": (0.15, 0.5)}
)
# `fontdigits_blend_hard`: `fontdigits_blend` with the weights in [0.25, 0.5], so
# that LeNet-5's clean accuracy on it is nearer Fashion-MNIST's (NCE+MAE: 88.70% and
# 90.95% with two seeds, against 87.07%; on `fontdigits_blend` 92.95%), for a
# LeNet-5 half of a meta-train pool (docs/runs/fontdigits_blend_hard).
FONTDIGITS_BLEND_HARD = types.MappingProxyType(
    {**FONTDIGITS_BLEND, "blend_weight": (0.25, 0.5)}
)
# Each fontdigits dataset's `make_fontdigits` settings, by name (the arrays' cache key).
_FONTDIGITS_SETTINGS = types.MappingProxyType(
    {"fontdigits": types.MappingProxyType({}), "fontdigits_mild": FONTDIGITS_MILD_WARPS,
     "fontdigits_blend": FONTDIGITS_BLEND,
     "fontdigits_blend_hard": FONTDIGITS_BLEND_HARD}  # fmt: skip
)


@functools.lru_cache(maxsize=2)
def _fontdigits_arrays(name: str, num_train: int, num_test: int, data_seed: int):
    settings = _FONTDIGITS_SETTINGS[name]
    train_seed, test_seed = np.random.SeedSequence(data_seed).spawn(2)
    x_train, y_train = make_fontdigits(num_train, data_seed=train_seed, **settings)
    x_test, y_test = make_fontdigits(num_test, data_seed=test_seed, **settings)
    arrays = (x_train[..., None], y_train, x_test[..., None], y_test)
    for array in arrays:
        array.setflags(write=False)
    return arrays


def _fontdigits_loader(name: str) -> Callable[..., readers.RawData]:
    def loader(
        *, data_dir=None, num_train: int = 12000, num_test: int = 2000,
        data_seed: int = 0,
    ) -> readers.RawData:
        """`make_fontdigits`: a 28x28 meta-train dataset of any size with no
        download; train and test are independent draws (seeds spawned from
        `data_seed`)."""
        del data_dir
        if int(num_train) < 10 or int(num_test) < 10:
            raise ValueError(
                f"{name} needs >= 10 train and test, got {num_train}, {num_test}"
            )
        arrays = _fontdigits_arrays(name, int(num_train), int(num_test), int(data_seed))
        return readers.RawData(*arrays)

    return loader


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

"""Tests for arl_jax.data: shapes, classes, split sizes and disjointness, the real
Fashion-MNIST files, the TFDS path through mock_data, and the USPS / Clothing1M
readers on small files written in their real formats."""

import bz2
import dataclasses
import hashlib
import inspect
import random
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from arl_jax import data, data_generated
from arl_jax import data_readers as readers

MNIST1D_SAMPLES = 2000  # small and fast; cached by the loader


def row_hashes(x: np.ndarray) -> list[bytes]:
    """One digest per example, to compare splits by content."""
    return [hashlib.sha1(row.tobytes()).digest() for row in x]


def assert_disjoint(ds: data.Dataset) -> None:
    train, val, test = (set(row_hashes(x)) for x in (ds.x_train, ds.x_val, ds.x_test))
    assert len(train) == len(ds.x_train)  # no duplicates within a split either
    assert not train & val
    assert not train & test
    assert not val & test


@pytest.fixture(autouse=True)
def no_env_data_dir(monkeypatch):
    monkeypatch.delenv("ARL_DATA_DIR", raising=False)


class NetworkAccess(BaseException):
    """Raised on a connection attempt; a BaseException so no `except Exception`
    on the way (ours in read_tfds included) can swallow it."""


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise NetworkAccess(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# Local datasets: expected (input_shape, train + val, test) with default settings.
LOCAL = {
    "synthetic": ((20,), 5000, 1000),
    "digits": ((8, 8, 1), 1797 - 359, 359),
    "digits28": ((28, 28, 1), 1797 - 359, 359),
    "fontdigits": ((28, 28, 1), 600, 200),
    "fontdigits_mild": ((28, 28, 1), 600, 200),
    "fontdigits_blend": ((28, 28, 1), 600, 200),
    "fontdigits_blend_hard": ((28, 28, 1), 600, 200),
    "mnist1d": ((40,), MNIST1D_SAMPLES * 4 // 5, MNIST1D_SAMPLES // 5),
}
LOCAL_KWARGS = {
    "mnist1d": {"num_samples": MNIST1D_SAMPLES},
    "fontdigits": {"num_train": 600, "num_test": 200},
    "fontdigits_mild": {"num_train": 600, "num_test": 200},
    "fontdigits_blend": {"num_train": 600, "num_test": 200},
    "fontdigits_blend_hard": {"num_train": 600, "num_test": 200},
}


@pytest.fixture(scope="module")
def local_sets():
    """Each local dataset loaded with seeds 0, 0 (again) and 1."""
    return {
        name: [data.load(name, seed=s, **LOCAL_KWARGS.get(name, {})) for s in (0, 0, 1)]
        for name in LOCAL
    }


@pytest.mark.parametrize("name", list(LOCAL))
def test_local_shapes_classes_splits(local_sets, name):
    ds, same, other = local_sets[name]
    shape, n_train_val, n_test = LOCAL[name]
    assert ds.name == name and ds.num_classes == 10 and ds.input_shape == shape
    n_val = round(0.1 * n_train_val)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (
        n_train_val - n_val,
        n_val,
        n_test,
    )
    for x, y in (
        (ds.x_train, ds.y_train),
        (ds.x_val, ds.y_val),
        (ds.x_test, ds.y_test),
    ):
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert x.shape == (len(y), *shape)
        assert set(np.unique(y)) == set(range(10))
        assert not x.flags.writeable and not y.flags.writeable
    if name in ("digits", "digits28", "fontdigits", "fontdigits_mild"):
        assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    if name in ("fontdigits_blend", "fontdigits_blend_hard"):
        assert ds.x_train.min() == 0.0 and 0.9 < ds.x_train.max() <= 1.0
    if name == "mnist1d":  # the generator's global standardisation
        x_all = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
        assert abs(x_all.mean()) < 1e-3 and abs(x_all.std() - 1) < 1e-3
    assert_disjoint(ds)
    # Same seed: same split. Another seed: another validation set, same test set.
    np.testing.assert_array_equal(ds.x_val, same.x_val)
    np.testing.assert_array_equal(ds.y_train, same.y_train)
    assert not np.array_equal(ds.x_val, other.x_val)
    np.testing.assert_array_equal(ds.x_test, other.x_test)
    assert sorted(row_hashes(np.concatenate([ds.x_train, ds.x_val]))) == sorted(
        row_hashes(np.concatenate([other.x_train, other.x_val]))
    )


def test_digits28_is_digits_upscaled_and_distorted(local_sets):
    digits, _, _ = local_sets["digits"]
    big, _, _ = local_sets["digits28"]
    # The same fixed test split: the same digits, in the same order.
    np.testing.assert_array_equal(big.y_test, digits.y_test)
    # With no distortion an image is its 8x8 self upscaled to 20x20 in a 28x28 frame:
    # an empty 4-pixel border, and the 8x8 image back when shrunk again.
    images = np.asarray(digits.x_test[:20, ..., 0])
    plain = data.make_digits28(images, max_rotation=0.0, scale=(1.0, 1.0), max_shift=0)
    assert plain.shape == (20, 28, 28) and plain.dtype == np.float32
    border = np.ones((28, 28), bool)
    border[4:24, 4:24] = False
    assert np.all(plain[:, border] == 0)
    for image, frame in zip(images, plain, strict=True):
        small = ndimage.zoom(frame[4:24, 4:24], 0.4, order=1)
        assert np.corrcoef(small.ravel(), image.ravel())[0, 1] > 0.95
    # Distortions: seeded, different per seed, and they move the digits.
    a = data.make_digits28(images, data_seed=3)
    np.testing.assert_array_equal(a, data.make_digits28(images, data_seed=3))
    assert not np.allclose(a, data.make_digits28(images, data_seed=4))
    assert np.abs(a - plain).mean() > 0.01
    # data_seed redraws the distortions, the test set's too, not the digits.
    other = data.load("digits28", data_seed=1)
    np.testing.assert_array_equal(other.y_test, big.y_test)
    assert not np.array_equal(other.x_test, big.x_test)
    with pytest.raises(ValueError, match=r"want images \[n, 8, 8\]"):
        data.make_digits28(np.zeros((2, 28, 28)))
    for bad in ({"scale": (0.0, 1.0)}, {"scale": (1.2, 0.8)}, {"max_shift": -1.0}):
        with pytest.raises(ValueError, match="scale|max_shift"):
            data.make_digits28(images, **bad)


@pytest.mark.slow
def test_fontdigits_are_seeded_balanced_readable_digits():
    glyphs = data_generated._font_glyphs()
    assert glyphs.shape == (len(data.FONTDIGITS_FONTS), 10, 56, 56)
    assert glyphs.min() >= 0.0 and glyphs.max() <= 1.0
    # Every font draws ten different digits (a symbol font would not), each fitted
    # to MNIST's box at twice the size (40 pixels) and centred on its centre of mass.
    flat = glyphs.reshape(len(glyphs), 10, -1)
    assert np.all(flat.sum(-1) > 50)
    for font in flat:
        corr = np.corrcoef(font)
        assert np.max(corr[~np.eye(10, dtype=bool)]) < 0.9
    for glyph in glyphs.reshape(-1, 56, 56):
        rows, cols = np.nonzero(glyph > 0.05)
        assert max(np.ptp(rows), np.ptp(cols)) <= 41
        centre = ndimage.center_of_mass(glyph)
        np.testing.assert_allclose(centre, (27.5, 27.5), atol=0.5)

    x, y = data.make_fontdigits(1005, data_seed=3)
    assert x.shape == (1005, 28, 28) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y, minlength=10).tolist() == [101] * 5 + [100] * 5
    x_same, y_same = data.make_fontdigits(1005, data_seed=3)
    np.testing.assert_array_equal(x, x_same)
    np.testing.assert_array_equal(y, y_same)
    assert not np.allclose(x, data.make_fontdigits(1005, data_seed=4)[0])
    # Undistorted, every image is its font's glyph averaged down: a nearest-glyph
    # reader gets all of them right. The distortions make them harder, not noise:
    # a linear model trained on 800 reads the other 205 well above chance (51%
    # with these seeds; LeNet-5 reads 95% when trained on 10,000).
    plain, labels = data.make_fontdigits(
        200, max_rotation=0.0, scale=(1.0, 1.0), max_shear=0.0, max_shift=0.0,
        elastic=0.0,
    )
    small = glyphs.reshape(-1, 28, 2, 28, 2).mean(axis=(2, 4)).reshape(-1, 784)
    nearest = np.argmax(plain.reshape(200, -1) @ small.T
                        / np.linalg.norm(small, axis=1), axis=1) % 10
    assert np.array_equal(nearest, labels)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(x[:800].reshape(800, -1), y[:800])
    accuracy = model.score(x[800:].reshape(205, -1), y[800:])
    assert 0.3 < accuracy < 0.9
    # data_seed redraws the test images too (`seed` does not: see the LOCAL test).
    a = data.load("fontdigits", num_train=50, num_test=20)
    b = data.load("fontdigits", num_train=50, num_test=20, data_seed=1)
    assert not np.array_equal(a.x_test, b.x_test)
    for bad in (
        {"scale": (0.0, 1.0)},
        {"thickness": (0.6, 0.2)},
        {"elastic": -1.0},
        {"max_shear": -0.1},
    ):
        with pytest.raises(ValueError, match="scale|thickness|must be >= 0"):
            data.make_fontdigits(10, **bad)
    with pytest.raises(ValueError, match="num_samples"):
        data.make_fontdigits(0)
    with pytest.raises(ValueError, match="fontdigits needs"):
        data.load("fontdigits", num_train=5)
    with pytest.raises(ValueError, match="fontdigits_mild needs"):
        data.load("fontdigits_mild", num_test=5)
    for bad in ({"blend": 1.5}, {"blend": -0.1}, {"blend_weight": (0.3, 0.6)},
                {"blend_weight": (0.4, 0.2)}):  # fmt: skip
        with pytest.raises(ValueError, match="blend"):
            data.make_fontdigits(10, **bad)


def read_by_nearest_glyph(ds) -> float:
    """Share of `ds`'s test images whose nearest font glyph (cosine) is their digit."""
    glyphs = data_generated._font_glyphs().reshape(-1, 28, 2, 28, 2).mean(axis=(2, 4))
    glyphs = glyphs.reshape(-1, 784)
    glyphs /= np.linalg.norm(glyphs, axis=1, keepdims=True)
    guess = np.argmax(ds.x_test.reshape(len(ds.x_test), -1) @ glyphs.T, axis=1) % 10
    return float(np.mean(guess == ds.y_test))


def test_fontdigits_mild_is_fontdigits_with_half_the_warps(local_sets):
    full, _, _ = local_sets["fontdigits"]
    mild, _, _ = local_sets["fontdigits_mild"]
    # The same draws of label, font, stroke weight and warp directions (one seed
    # sequence), with every warp halved: the labels match image for image.
    np.testing.assert_array_equal(full.y_test, mild.y_test)
    assert not np.allclose(full.x_test, mild.x_test)
    _, test_seed = np.random.SeedSequence(0).spawn(2)
    x, y = data.make_fontdigits(200, data_seed=test_seed, **data.FONTDIGITS_MILD_WARPS)
    np.testing.assert_array_equal(mild.x_test[..., 0], x)
    np.testing.assert_array_equal(mild.y_test, y)
    defaults = inspect.signature(data.make_fontdigits).parameters
    for name, value in data.FONTDIGITS_MILD_WARPS.items():
        default = defaults[name].default
        if name == "scale":  # half the zoom's spread about 1
            spread, full_spread = np.subtract(value, 1), np.subtract(default, 1)
            np.testing.assert_allclose(spread, full_spread / 2)
        else:
            assert value == default / 2
    # Milder warps leave the images nearer their fonts' glyphs: a nearest-glyph
    # reader reads more of them.
    assert read_by_nearest_glyph(mild) > read_by_nearest_glyph(full) + 0.05


@pytest.mark.parametrize(
    "name, settings, low, easier, margin",
    # nearest-glyph reads (600/200 images, seed 0): mild 0.955, blend 0.83, hard 0.775
    [("fontdigits_blend", data.FONTDIGITS_BLEND, 0.15, "fontdigits_mild", 0.05),
     ("fontdigits_blend_hard", data.FONTDIGITS_BLEND_HARD, 0.25, "fontdigits_blend",
      0.025)],
)  # fmt: skip
def test_fontdigits_blends_lay_another_class_over_each_mild_image(
    local_sets, name, settings, low, easier, margin
):
    mild, _, _ = local_sets["fontdigits_mild"]
    blend, _, _ = local_sets[name]
    # The blend's draws come after the others: the same labels, and with blend = 0
    # the same images as fontdigits_mild.
    np.testing.assert_array_equal(mild.y_test, blend.y_test)
    _, test_seed = np.random.SeedSequence(0).spawn(2)
    x, _ = data.make_fontdigits(
        200, data_seed=test_seed, **data.FONTDIGITS_MILD_WARPS, blend=0.0
    )
    np.testing.assert_array_equal(mild.x_test[..., 0], x)
    assert settings == {
        **data.FONTDIGITS_MILD_WARPS, "blend": 1.0, "blend_weight": (low, 0.5)
    }
    # Each image is (1 - w) * its mild image + w * another class's mild image, with
    # w in [low, 0.5] (every image here: blend = 1 and no partner of its own class
    # found for only a tenth of them, which stay as they were).
    m = mild.x_test.reshape(200, -1).astype(np.float64)
    r = blend.x_test.reshape(200, -1) - m
    unchanged = np.all(r == 0, axis=1)
    assert 0.8 < 1 - unchanged.mean() <= 1.0
    for i in np.flatnonzero(~unchanged):
        d = m - m[i]  # other image minus this one, for every other image
        norm = np.einsum("jk,jk->j", d, d)
        w = np.divide(d @ r[i], norm, out=np.zeros(200), where=norm > 0)
        err = np.linalg.norm(r[i] - w[:, None] * d, axis=1)
        j = np.argmin(np.where(norm > 0, err, np.inf))
        assert err[j] < 1e-4 and mild.y_test[j] != mild.y_test[i]
        assert low - 1e-6 <= w[j] <= 0.5 + 1e-6
    # Clean, fewer of them can be read than of the easier dataset: a nearest-glyph
    # reader reads fewer.
    easier_read = read_by_nearest_glyph(local_sets[easier][0])
    assert read_by_nearest_glyph(blend) < easier_read - margin


def test_split_train_val_partitions_by_index():
    x = np.arange(100)[:, None]
    y = np.arange(100) % 10
    x_tr, y_tr, x_val, y_val = data.split_train_val(x, y, 0.25, seed=3)
    assert len(x_val) == 25 and len(x_tr) == 75
    assert sorted(np.concatenate([x_tr, x_val]).ravel()) == list(range(100))
    expected_val = np.random.default_rng(3).permutation(100)[:25]
    np.testing.assert_array_equal(x_val.ravel(), expected_val)
    np.testing.assert_array_equal(y_val, expected_val % 10)


def test_synthetic_kwargs_and_difficulty():
    ds = data.load("synthetic", num_train=300, num_test=50, dim=7, num_classes=3)
    assert ds.input_shape == (7,) and ds.num_classes == 3
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (270, 30, 50)
    assert np.bincount(np.concatenate([ds.y_train, ds.y_val])).tolist() == [100] * 3
    other_task = data.load(
        "synthetic", num_train=300, num_test=50, dim=7, num_classes=3, data_seed=1
    )
    assert not np.array_equal(ds.x_test, other_task.x_test)

    # Learnable but not linearly: logistic regression stays well below a k-NN.
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    ds = data.load("synthetic")
    linear = LogisticRegression(max_iter=500).fit(ds.x_train, ds.y_train)
    knn = KNeighborsClassifier(15).fit(ds.x_train, ds.y_train)
    linear_acc = linear.score(ds.x_test, ds.y_test)
    knn_acc = knn.score(ds.x_test, ds.y_test)
    assert linear_acc < 0.8 < 0.85 < knn_acc


def test_mnist1d_is_cached_and_leaves_global_rng_alone():
    np.random.seed(7)
    random.seed(7)
    expected = (np.random.random(), random.random())
    np.random.seed(7)
    random.seed(7)
    before = data_generated._mnist1d_arrays.cache_info().misses
    data.load("mnist1d", num_samples=MNIST1D_SAMPLES, seed=5)
    data.load("mnist1d", num_samples=MNIST1D_SAMPLES, seed=6)
    assert data_generated._mnist1d_arrays.cache_info().misses - before <= 1
    assert (np.random.random(), random.random()) == expected


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match="valid names: .*mnist1d.*clothing1m"):
        data.load("imagenet")
    for fraction in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="val_fraction"):
            data.load("synthetic", val_fraction=fraction)
    with pytest.raises(TypeError):
        data.load("digits", num_samples=10)
    with pytest.raises(ValueError, match="num_samples"):
        data.load("mnist1d", num_samples=10)


def test_dataset_repr_frozen_and_validation():
    ds = data.load("synthetic", num_train=40, num_test=10, dim=3)
    assert repr(ds) == (
        "Dataset(name='synthetic', num_classes=10, input_shape=(3,), "
        "train=36, val=4, test=10)"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.y_train = ds.y_val
    with pytest.raises(ValueError):
        ds.y_train[0] = 1  # read-only
    with pytest.raises(ValueError, match="input_shape"):
        dataclasses.replace(ds, input_shape=(4,))
    with pytest.raises(ValueError, match="outside"):
        dataclasses.replace(ds, y_train=np.full_like(ds.y_train, 10))
    with pytest.raises(ValueError, match="integers"):
        dataclasses.replace(ds, y_train=ds.y_train.astype(np.float32))


# ---------------------------------------------------------------- Fashion-MNIST
needs_fashion = pytest.mark.skipif(
    not Path(readers.SYSTEM_FASHION_MNIST_DIR).is_dir(),
    reason="apt-get install dataset-fashion-mnist (CI installs it)",
)


@pytest.fixture(scope="module")
def fashion():
    return data.load("fashion_mnist")


@needs_fashion
def test_real_fashion_mnist(fashion):
    ds = fashion
    assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10
    assert len(ds.y_train) + len(ds.y_val) == 60_000 and len(ds.y_val) == 6_000
    assert len(ds.y_test) == 10_000
    y_all = np.concatenate([ds.y_train, ds.y_val])
    assert np.bincount(y_all).tolist() == [6_000] * 10
    assert np.bincount(ds.y_test).tolist() == [1_000] * 10
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() == 0.0
    assert ds.x_train.max() == 1.0
    train, val = set(row_hashes(ds.x_train)), set(row_hashes(ds.x_val))
    assert len(train) == 54_000 and len(val) == 6_000 and not train & val
    # The split reorders the official training set and loses nothing.
    raw = readers.read_fashion_mnist(readers.SYSTEM_FASHION_MNIST_DIR)
    assert train | val == set(row_hashes(raw.x_train))
    np.testing.assert_array_equal(ds.x_test, raw.x_test)


def test_fashion_mnist_checksum_mismatch(tmp_path):
    for name in readers.FASHION_MNIST_FILES:
        (tmp_path / name).write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="checksum mismatch"):
        readers.read_fashion_mnist(tmp_path)


def test_fashion_mnist_search_order(tmp_path, monkeypatch):
    for name in readers.FASHION_MNIST_FILES:
        (tmp_path / "fashion-mnist" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "fashion-mnist" / name).write_bytes(b"")
    monkeypatch.setattr(readers, "SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "none"))
    assert readers.find_fashion_mnist(None) is None
    assert readers.find_fashion_mnist(tmp_path) == tmp_path / "fashion-mnist"
    monkeypatch.setenv("ARL_DATA_DIR", str(tmp_path))
    assert readers.find_fashion_mnist(None) == tmp_path / "fashion-mnist"


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(readers, "SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "none"))
    with pytest.raises(
        FileNotFoundError, match="apt-get install dataset-fashion-mnist"
    ):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_fashion_mnist_missing_without_tfds_says_how_to_get_it(tmp_path, monkeypatch):
    # Seen on the GPU machine, which has no tensorflow_datasets: the fallback's
    # ImportError must still end in the message that says where the files go.
    monkeypatch.setattr(readers, "SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "none"))

    def no_tfds(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'tensorflow_datasets'")

    monkeypatch.setattr(readers, "read_tfds", no_tfds)
    with pytest.raises(FileNotFoundError, match="ARL_DATA_DIR.*tensorflow_datasets"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_read_idx_round_trip(tmp_path):
    import gzip

    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(tmp_path / "a-idx3-ubyte.gz", "wb") as f:
        f.write(header + array.tobytes())
    np.testing.assert_array_equal(readers.read_idx(tmp_path / "a-idx3-ubyte.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="not an IDX"):
        readers.read_idx(tmp_path / "bad")


# ------------------------------------------------------------------------- TFDS
TFDS_SETS = {  # name -> (input_shape, num_classes)
    "mnist": ((28, 28, 1), 10),
    "kmnist": ((28, 28, 1), 10),
    "emnist/digits": ((28, 28, 1), 10),
    "svhn_cropped": ((32, 32, 3), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
    "fashion_mnist": ((28, 28, 1), 10),  # the fallback when no local files
}


@pytest.fixture(scope="module")
def tfds_mocked():
    """Every TFDS dataset loaded through tfds.testing.mock_data (USE_CODE: no
    files, no network, no TensorFlow)."""
    import tensorflow_datasets as tfds

    saved = readers.SYSTEM_FASHION_MNIST_DIR, readers.REPO_DATA_DIR
    readers.SYSTEM_FASHION_MNIST_DIR = "/nonexistent/fashion-mnist"
    readers.REPO_DATA_DIR = Path("/nonexistent/data")  # no offline MNIST
    real_connect = socket.socket.connect

    def refuse(*args, **kwargs):
        raise NetworkAccess(f"network access attempted: {args}")

    socket.socket.connect = refuse
    try:
        with tfds.testing.mock_data(
            num_examples=20, policy=tfds.testing.MockPolicy.USE_CODE
        ):
            return {name: data.load(name, val_fraction=0.25) for name in TFDS_SETS}
    finally:
        readers.SYSTEM_FASHION_MNIST_DIR, readers.REPO_DATA_DIR = saved
        socket.socket.connect = real_connect


@pytest.mark.parametrize("name", list(TFDS_SETS))
def test_tfds_path_through_mock_data(tfds_mocked, name):
    ds = tfds_mocked[name]
    shape, num_classes = TFDS_SETS[name]
    assert ds.name == name and ds.input_shape == shape
    assert ds.num_classes == num_classes
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (15, 5, 20)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.0
        assert 0 <= y.min() and y.max() < num_classes
    assert "tensorflow" not in sys.modules


def test_emnist_is_transposed_to_mnist_layout(tfds_mocked):
    # The mock draws the same fake examples for the same feature spec.
    np.testing.assert_array_equal(
        tfds_mocked["emnist/digits"].x_test,
        np.swapaxes(tfds_mocked["mnist"].x_test, 1, 2),
    )


def test_tfds_not_prepared_names_the_dataset(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="tfds build cifar10"):
        data.load("cifar10", data_dir=tmp_path)


# ------------------------------------------------------------------------- USPS
def write_usps(path: Path, labels, pixels) -> None:
    """LIBSVM lines 'label 1:v ... 256:v' (zeros omitted, as LIBSVM tools do)."""
    lines = []
    for label, row in zip(labels, pixels, strict=True):
        items = [f"{i + 1}:{v:.6g}" for i, v in enumerate(row) if v != 0]
        lines.append(" ".join([str(label), *items]))
    with bz2.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def test_usps_reader(tmp_path):
    rng = np.random.default_rng(0)
    train_labels = np.arange(12) % 10 + 1  # 1..10 as in the LIBSVM release
    train_pixels = rng.uniform(-1, 1, size=(12, 256)).round(4)
    train_pixels[:, 5] = 0.0  # omitted from the files: means 0, i.e. 0.5 after scaling
    test_labels = np.array([10, 1, 2, 3, 4])
    write_usps(tmp_path / "usps.bz2", train_labels, train_pixels)
    write_usps(tmp_path / "usps.t.bz2", test_labels, rng.uniform(-1, 1, (5, 256)))

    raw = readers.read_usps(tmp_path)
    assert raw.x_train.shape == (12, 16, 16, 1) and raw.x_train.dtype == np.float32
    np.testing.assert_array_equal(raw.y_train, train_labels - 1)
    np.testing.assert_array_equal(raw.y_test, [9, 0, 1, 2, 3])
    expected = ((train_pixels + 1) / 2).reshape(12, 16, 16, 1)  # row-major 16x16
    np.testing.assert_allclose(raw.x_train, expected, atol=1e-6)
    assert raw.x_train[0, 0, 5, 0] == 0.5

    ds = data.load("usps", data_dir=tmp_path, val_fraction=0.25)
    assert ds.input_shape == (16, 16, 1)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (9, 3, 5)
    assert_disjoint(ds)


def test_usps_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="usps.bz2"):
        data.load("usps", data_dir=tmp_path)
    write_usps(tmp_path / "usps.bz2", [0, 3], np.zeros((2, 256)) + 0.5)
    write_usps(tmp_path / "usps.t.bz2", [1], np.zeros((1, 256)) + 0.5)
    with pytest.raises(ValueError, match="labels must be 1..10"):
        readers.read_usps(tmp_path)


# ------------------------------------------------------------------- Clothing1M
def write_clothing1m(root: Path) -> dict:
    """A tiny Clothing1M folder: solid-colour jpgs and the five label/key files."""
    from PIL import Image

    def image(key: str, colour) -> str:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), colour).save(path, quality=95)
        return key

    train = [image(f"images/0/0{i}/{i}.jpg", (20 * i, 100, 200)) for i in range(4)]
    val = [image(f"images/1/00/v{i}.jpg", (200, 20 * i, 0)) for i in range(2)]
    test = [image(f"images/2/00/t{i}.jpg", (0, 0, 40 * i)) for i in range(3)]
    noisy = {k: (3 * i + 1) % 14 for i, k in enumerate(train)}
    clean = {k: i + 5 for i, k in enumerate(val + test)} | {train[0]: 13}
    files = {
        "noisy_label_kv.txt": "\n".join(f"{k} {v}" for k, v in noisy.items()),
        "clean_label_kv.txt": "\n".join(f"{k} {v}" for k, v in clean.items()),
        "noisy_train_key_list.txt": "\n".join(train),
        "clean_val_key_list.txt": "\n".join(val),
        "clean_test_key_list.txt": "\n".join(test),
    }
    for name, text in files.items():
        (root / name).write_text(text + "\n")
    return {"train": train, "val": val, "test": test, "noisy": noisy, "clean": clean}


def test_clothing1m_reader(tmp_path):
    meta = write_clothing1m(tmp_path / "clothing1m")
    ds = data.load("clothing1m", data_dir=tmp_path, image_size=8)
    assert ds.input_shape == (8, 8, 3) and ds.num_classes == 14
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (4, 2, 3)
    # Training labels are the noisy ones (not train[0]'s clean 13), in key-list
    # order; validation and test labels are the clean ones.
    assert ds.y_train.tolist() == [meta["noisy"][k] for k in meta["train"]]
    assert ds.y_train[0] != meta["clean"][meta["train"][0]]
    assert ds.y_val.tolist() == [meta["clean"][k] for k in meta["val"]]
    assert ds.y_test.tolist() == [meta["clean"][k] for k in meta["test"]]
    # A solid colour survives jpeg and resizing (up to jpeg error).
    colour = np.array([40, 100, 200]) / 255  # train[2]
    np.testing.assert_allclose(
        ds.x_train[2], np.broadcast_to(colour, (8, 8, 3)), atol=0.03
    )
    capped = data.load(
        "clothing1m", data_dir=tmp_path, image_size=8, max_train=2, max_eval=1
    )
    assert (len(capped.y_train), len(capped.y_val), len(capped.y_test)) == (2, 1, 1)


def test_clothing1m_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="noisy_label_kv.txt"):
        data.load("clothing1m", data_dir=tmp_path)
    meta = write_clothing1m(tmp_path)
    (tmp_path / meta["test"][1]).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        data.load("clothing1m", data_dir=tmp_path)
    (tmp_path / "clean_test_key_list.txt").write_text("images/none.jpg\n")
    with pytest.raises(ValueError, match="without a label"):
        data.load("clothing1m", data_dir=tmp_path)

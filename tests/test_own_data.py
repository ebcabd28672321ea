"""A user's own data: arrays, .npz files, any TFDS dataset, and real noisy labels
(`labels:NAME`), from the library down to the meta-test command line."""

import json

import numpy as np
import pytest

from arl_jax import data, noise, tasks
from arl_jax.commands import meta_test


def _arrays(n=300, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = ((x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 1] > 0)).astype(np.int32)
    human = np.where(rng.random(n) < 0.3, (y + 1) % 4, y).astype(np.int32)
    return x, y, human


@pytest.fixture
def npz_file(tmp_path):
    x, y, human = _arrays()
    path = tmp_path / "my.npz"
    np.savez(path, x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:],
             noisy_human=human[:240])
    return path, human[:240], y[:240]


def test_from_arrays_splits_validation_and_keeps_noisy_labels_aligned():
    x, y, human = _arrays()
    ds = data.Dataset.from_arrays(x[:240], y[:240], x[240:], y[240:],
                                  noisy_labels={"human": human[:240]}, seed=3)
    assert ds.num_classes == 4 and ds.input_shape == (12,)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (216, 24, 60)
    # The noisy labels follow their examples through the split: where they agree
    # with the clean labels is where the originals agreed.
    perm = np.random.default_rng(3).permutation(240)[24:]
    np.testing.assert_array_equal(ds.noisy_labels["human"], human[:240][perm])
    np.testing.assert_array_equal(ds.y_train, y[:240][perm])
    # ... and through a subsample.
    sub = tasks.subsample(ds, 50, 0, 0, seed=1)
    idx = np.random.default_rng(1).permutation(216)[:50]
    np.testing.assert_array_equal(sub.noisy_labels["human"],
                                  ds.noisy_labels["human"][idx])
    with pytest.raises(ValueError, match="noisy labels 'bad'"):
        data.Dataset.from_arrays(x[:240], y[:240], x[240:], y[240:],
                                 noisy_labels={"bad": human[:10]})
    with pytest.raises(ValueError, match="outside"):
        data.Dataset.from_arrays(x[:240], y[:240], x[240:], y[240:], num_classes=2)


def test_labels_noise_spec_trains_on_the_datasets_own_labels(npz_file):
    path, human, clean = npz_file
    ds = data.load(f"npz:{path}")
    noisy = noise.apply_noise(None, ds, "labels:human")
    np.testing.assert_array_equal(noisy.y_val, ds.y_val)  # validation stays clean
    rate = noise.realised_rate(ds.y_train, noisy.y_train)
    want = np.mean(ds.noisy_labels["human"] != ds.y_train)
    assert rate == pytest.approx(want) and 0.2 < rate < 0.4
    np.testing.assert_allclose(
        1 - np.trace(noise.realised_transition(ds.y_train, noisy.y_train, 4)
                     * np.bincount(ds.y_train, minlength=4)[:, None]) / len(ds.y_train),
        rate, rtol=1e-9)
    with pytest.raises(ValueError, match="has no noisy labels 'other'.*human"):
        noise.apply_noise(None, ds, "labels:other")
    ranges = tasks.parse_noise_ranges(("symmetric:0.2,0.4", "labels:human"))
    assert [r.spec(r.low) for r in ranges] == [
        "symmetric:0.2000", "symmetric:0.4000", "labels:human"]


def test_npz_errors_name_the_file_and_the_fix(tmp_path):
    x, y, _ = _arrays(40)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=x, y_train=y)
    with pytest.raises(ValueError, match="missing arrays.*x_test"):
        data.load(f"npz:{bad}")
    floats = tmp_path / "floats.npz"
    np.savez(floats, x_train=x, y_train=y.astype(float), x_test=x, y_test=y)
    with pytest.raises(ValueError, match="y_train must hold integer"):
        data.load(f"npz:{floats}")
    with pytest.raises(ValueError, match="no such file"):
        data.check_name(f"npz:{tmp_path / 'missing.npz'}")
    with pytest.raises(ValueError, match="npz:PATH or tfds:NAME"):
        data.check_name("my_own")


def test_register_makes_a_name_for_your_dataset():
    x, y, _ = _arrays()
    ds = data.Dataset.from_arrays(x[:240], y[:240], x[240:], y[240:], name="mine")
    data.register("mine_test", ds)
    assert data.load("mine_test") is ds
    data.check_name("mine_test")
    with pytest.raises(ValueError, match="cannot register"):
        data.register("digits", ds)


@pytest.mark.slow
def test_meta_test_runs_on_a_users_npz_with_real_noisy_labels(npz_file, tmp_path):
    path, _, _ = npz_file
    out = tmp_path / "mt"
    rows = meta_test.main([
        "--dataset", f"npz:{path}", "--noise", "symmetric:0.4", "labels:human",
        "--archs", "mlp", "--losses", "cross_entropy", "nce_rce", "--seeds", "2",
        "--steps", "30", "--batch-size", "32", "--out", str(out)])
    noises = {r["noise"] for r in rows}
    assert noises == {"none", "symmetric:0.4", "labels:human"}
    human = [r for r in rows if r["noise"] == "labels:human"]
    assert len(human) == 4 and all(r["kind"] == "labels" for r in human)
    assert 0.2 < human[0]["rate"] < 0.4  # the realised rate of the human labels
    assert "labels:human" in (out / "results.md").read_text()
    assert json.loads((out / "config.json").read_text())["dataset"] == f"npz:{path}"


@pytest.mark.parametrize(("args", "match"), [
    (["--noise", "labels:nobody"], "no such noisy labels"),
    (["--noise", "asymmetric:0.2"], "no asymmetric mapping"),
    (["--noise", "symmetric:0.2-0.6"], "is a range"),
    (["--noise", "symmetric:0.2,0.2"], "given twice"),
])
def test_meta_test_refuses_a_setting_the_dataset_cannot_take(npz_file, tmp_path,
                                                              args, match, capsys):
    path, _, _ = npz_file
    with pytest.raises(SystemExit) as info:
        meta_test.main(["--dataset", f"npz:{path}", "--archs", "mlp", "--losses",
                        "cross_entropy", "--out", str(tmp_path / "x"), *args])
    assert info.value.code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x" / "runs.csv").exists()  # nothing trained


@pytest.mark.slow
def test_tfds_dataset_with_human_noisy_labels_offline(tmp_path):
    """A TFDS dataset shaped like cifar10_n (clean `label`, noisy `worse_label`,
    `aggre_label`, ...) through tfds.testing.mock_data: no network, no TensorFlow."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40,
                                policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load("tfds:cifar10_n", val_fraction=0.25)
        assert ds.num_classes == 10 and ds.input_shape == (32, 32, 3)
        assert {"worse_label", "aggre_label", "random_label1"} <= set(ds.noisy_labels)
        noisy = noise.apply_noise(None, ds, "labels:worse_label")
        np.testing.assert_array_equal(noisy.y_train, ds.noisy_labels["worse_label"])
        # Another label key as the clean one, and other splits.
        other = data.load("tfds:cifar10_n:train:test@aggre_label")
        assert "label" in other.noisy_labels and "aggre_label" not in other.noisy_labels
        with pytest.raises(ValueError, match="no label key 'nope'"):
            data.load("tfds:cifar10_n@nope")
        rows = meta_test.main([
            "--dataset", "tfds:cifar10_n", "--noise", "labels:worse_label",
            "--archs", "mlp", "--losses", "cross_entropy", "--seeds", "1",
            "--steps", "5", "--batch-size", "8", "--out", str(tmp_path / "mt")])
    assert {r["noise"] for r in rows} == {"none", "labels:worse_label"}


def test_tfds_download_says_what_is_missing(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    def find_spec(name, *args):
        return None if name == "tensorflow" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(FileNotFoundError, match=r"tensorflow.*arl_jax\[tfds-prepare\]"):
        data.load("kmnist", data_dir=tmp_path, download=True)
    with pytest.raises(ValueError, match="tfds:NAME"):
        data.check_name("tfds:mnist:train")

"""Domain randomisation: the pool's parsing, sampling and fixed-size datasets."""

import numpy as np
import pytest

from arl_jax import data as data_lib
from arl_jax import tasks


def test_parse_noise_ranges():
    got = tasks.parse_noise_ranges("symmetric:0.2-0.8, asymmetric:0.3,none")
    assert got == (
        tasks.NoiseRange("symmetric", 0.2, 0.8),
        tasks.NoiseRange("asymmetric", 0.3, 0.3),
        tasks.NoiseRange("none", 0.0, 0.0),
    )
    assert got[0].spec(0.25) == "symmetric:0.2500"
    assert got[2].spec(0.0) == "none"


@pytest.mark.parametrize(
    "text",
    [
        "symmetric:1.0",
        "symmetric:0.9-0.2",
        "gaussian:0.2",
        "symmetric",
        "",
        "symmetric:x",
    ],
)
def test_bad_noise_ranges(text):
    with pytest.raises(ValueError, match="--noise"):
        tasks.parse_noise_ranges(text)


def test_sample_tasks_is_deterministic_and_respects_compatibility():
    archs_for = {"synthetic": ["mlp-s"], "digits": ["mlp-s", "cnn"]}
    noises = tasks.parse_noise_ranges("symmetric:0.2-0.8,asymmetric:0.2-0.4")
    a = tasks.sample_tasks(np.random.default_rng(3), 50, ("synthetic", "digits"),
                           archs_for, noises)  # fmt: skip
    b = tasks.sample_tasks(np.random.default_rng(3), 50, ("synthetic", "digits"),
                           archs_for, noises)  # fmt: skip
    assert a == b
    assert {t.dataset for t in a} == {"synthetic", "digits"}
    for t in a:
        assert t.arch in archs_for[t.dataset]
        kind, rate = t.noise.split(":")
        # synthetic has no asymmetric mapping: it never gets asymmetric noise.
        assert not (t.dataset == "synthetic" and kind == "asymmetric")
        lo, hi = (0.2, 0.8) if kind == "symmetric" else (0.2, 0.4)
        assert lo <= float(rate) <= hi
    assert [t.index for t in a] == list(range(50))
    # Consecutive tasks cycle through the datasets.
    assert a[0].dataset != a[1].dataset


def test_stratified_tasks_score_every_noise_range_once():
    archs_for = {"synthetic": ["mlp-s"], "digits": ["mlp-s"], "mnist1d": ["mlp-s"]}
    noises = tasks.parse_noise_ranges(
        "symmetric:0.2,symmetric:0.4,symmetric:0.6,symmetric:0.8,"
        "asymmetric:0.2,asymmetric:0.4")
    for seed in range(5):
        t = tasks.sample_tasks(np.random.default_rng(seed), 6, ("digits", "mnist1d"),
                               archs_for, noises, stratify=True)  # fmt: skip
        assert sorted(x.noise for x in t) == sorted(r.spec(r.low) for r in noises)
        # synthetic has no asymmetric mapping: it cycles the symmetric ranges only.
        t = tasks.sample_tasks(np.random.default_rng(seed), 4, ("synthetic",),
                               archs_for, noises, stratify=True)  # fmt: skip
        assert len({x.noise for x in t}) == 4
        assert all(x.noise.startswith("symmetric") for x in t)


def test_subsample_fixes_sizes_and_keeps_labels_consistent():
    ds = data_lib.load("digits")
    small = tasks.subsample(ds, 300, 50, 0, seed=0)
    assert small.x_train.shape == (300, 8, 8, 1) and small.y_train.shape == (300,)
    assert small.x_val.shape[0] == 50 and small.x_test.shape == ds.x_test.shape
    # Rows are moved with their labels: every sampled row exists in the original.
    lookup = {r.tobytes(): y for r, y in zip(ds.x_train, ds.y_train)}
    assert all(lookup[r.tobytes()] == y for r, y in zip(small.x_train, small.y_train))


def test_parse_noise_ranges_one_syntax_for_lists_and_strings():
    # A bare SPEC adds a rate (or a range) to the kind before it, across the items
    # of a list as within one string; the old one-kind-per-entry form is the same.
    want = (
        tasks.NoiseRange("symmetric", 0.2, 0.2),
        tasks.NoiseRange("symmetric", 0.4, 0.4),
        tasks.NoiseRange("symmetric", 0.5, 0.7),
        tasks.NoiseRange("asymmetric", 0.2, 0.2),
    )
    assert tasks.parse_noise_ranges(
        ["symmetric:0.2,0.4,0.5-0.7", "asymmetric:0.2"]) == want
    assert tasks.parse_noise_ranges(
        ("symmetric:0.2, 0.4,0.5-0.7,asymmetric:0.2",)) == want
    assert tasks.parse_noise_ranges(
        "symmetric:0.2,symmetric:0.4,symmetric:0.5-0.7,asymmetric:0.2") == want
    # An exponent's minus sign is part of the number, not a range.
    assert tasks.parse_noise_ranges("symmetric:2e-1") == (
        tasks.NoiseRange("symmetric", 0.2, 0.2),)
    assert tasks.parse_noise_ranges("pairflip:2e-1-4e-1") == (
        tasks.NoiseRange("pairflip", 0.2, 0.4),)
    # "none" is clean labels and ends the kind before it.
    assert tasks.parse_noise_ranges(["none", "instance:0.3"]) == (
        tasks.NoiseRange("none", 0.0, 0.0), tasks.NoiseRange("instance", 0.3, 0.3))


@pytest.mark.parametrize(
    "items",
    [
        "0.2",  # a rate with no kind before it
        "none,0.2",  # "none" takes no rate
        "none:0.2",
        "symmetric:0.2-0.4-0.6",
        "symmetric:-0.2",
        "symmetric:nan",
        "symmetric:inf",
        [],
        ["", " , "],
    ],
)
def test_bad_noise_items_are_refused_with_the_syntax(items):
    with pytest.raises(ValueError, match="--noise"):
        tasks.parse_noise_ranges(items)


def test_bad_noise_names_the_flag_and_the_syntax():
    with pytest.raises(ValueError, match="--meta-noise") as err:
        tasks.parse_noise_ranges("gaussian:0.2", "--meta-noise")
    assert tasks.NOISE_SYNTAX in str(err.value)

"""Tests for arl_jax.noise: realised rates on 50,000 labels, where the flips go,
determinism, jit, and the errors bad inputs get."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from arl_jax import data, noise
from arl_jax import data_readers as readers

N = 50_000
TOL = 0.01  # "within 1 point of rate"


def flip_rate(clean, noisy) -> float:
    return float(np.mean(np.asarray(clean) != np.asarray(noisy)))


@pytest.fixture(scope="module")
def labels10():
    return jnp.asarray(np.random.default_rng(0).integers(0, 10, N), jnp.int32)


@pytest.fixture(scope="module")
def features():
    return jax.random.normal(jax.random.key(42), (N, 16))


@pytest.fixture(scope="module")
def instance_noisy(features, labels10):
    """One instance-dependent draw at rate 0.4 (compiles once, reused)."""
    return noise.instance_dependent(jax.random.key(3), features, labels10, 0.4, 10)


# -------------------------------------------------------------------- symmetric
@pytest.mark.parametrize("rate", [0.2, 0.45, 0.8])
def test_symmetric_rate_never_self_uniform_targets(labels10, rate):
    noisy = noise.symmetric(jax.random.key(1), labels10, rate, 10)
    assert noisy.dtype == jnp.int32 and noisy.shape == labels10.shape
    # Every draw leaves its class, so the realised rate is `rate`, not rate * 9/10.
    assert abs(flip_rate(labels10, noisy) - rate) < TOL
    clean, noisy = np.asarray(labels10), np.asarray(noisy)
    flipped = clean != noisy
    # Uniform over the other classes: the class offsets 1..9 of the flipped labels,
    # and the targets of each class, pass chi-square tests against uniform.
    offsets = (noisy[flipped] - clean[flipped]) % 10
    assert offsets.min() >= 1
    assert stats.chisquare(np.bincount(offsets, minlength=10)[1:]).pvalue > 1e-3
    counts = np.zeros((10, 10))
    np.add.at(counts, (clean[flipped], noisy[flipped]), 1)
    off_diagonal = counts[~np.eye(10, dtype=bool)].reshape(10, 9)
    chi2 = ((off_diagonal - off_diagonal.mean(1, keepdims=True)) ** 2).sum() / (
        off_diagonal.mean()
    )
    assert stats.chi2.sf(chi2, df=10 * 8) > 1e-3
    transition = noise.realised_transition(clean, noisy, 10)
    assert np.abs(np.diag(transition) - (1 - rate)).max() < 3 * TOL


def test_symmetric_include_true(labels10):
    noisy = noise.symmetric(jax.random.key(1), labels10, 0.5, 10, include_true=True)
    assert abs(flip_rate(labels10, noisy) - 0.5 * 9 / 10) < TOL


# ------------------------------------------------------------------- asymmetric
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100"])
def test_asymmetric_follows_the_mapping(name):
    mapping, num_classes = noise.ASYMMETRIC_MAPPINGS[name]
    rng = np.random.default_rng(1)
    sources = np.array(sorted(k for k, v in mapping.items() if k != v))
    labels = jnp.asarray(rng.choice(sources, N), jnp.int32)  # mapped classes only
    noisy = noise.asymmetric(jax.random.key(2), labels, 0.3, name)
    assert abs(flip_rate(labels, noisy) - 0.3) < TOL
    clean, noisy = np.asarray(labels), np.asarray(noisy)
    changed = clean != noisy
    assert all(
        mapping[c] == t for c, t in zip(clean[changed], noisy[changed], strict=True)
    )
    # Classes without an entry never change.
    others = np.setdiff1d(np.arange(num_classes), sources)
    if others.size:
        unmapped = jnp.asarray(rng.choice(others, 1000), jnp.int32)
        out = noise.asymmetric(jax.random.key(2), unmapped, 0.9, name)
        np.testing.assert_array_equal(out, unmapped)


def test_named_mappings():
    digits, _ = noise.ASYMMETRIC_MAPPINGS["mnist"]
    assert dict(digits) == {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}
    for name in (
        "usps", "digits", "digits28", "fontdigits", "fontdigits_mild",
        "fontdigits_blend", "fontdigits_blend_hard", "mnist1d",
    ):
        assert noise.ASYMMETRIC_MAPPINGS[name][0] == digits
    # truck->automobile, bird->airplane, deer->horse, cat<->dog
    assert dict(noise.CIFAR10_MAPPING) == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
    # boot->sneaker, sneaker->sandal, pullover->shirt, coat->dress
    assert dict(noise.FASHION_MNIST_MAPPING) == {9: 7, 7: 5, 2: 6, 4: 3}


def test_cifar100_superclasses():
    coarse = noise.CIFAR100_COARSE
    assert coarse.shape == (100,)
    assert np.bincount(coarse).tolist() == [5] * 20  # 5 fine classes per superclass
    # Memberships from the CIFAR-100 page: aquatic mammals (beaver, dolphin, otter,
    # seal, whale), fish (aquarium fish, flatfish, ray, shark, trout), vehicles 1
    # (bicycle, bus, motorcycle, pickup truck, train); not blocks of 5 ids.
    assert coarse[[4, 30, 55, 72, 95]].tolist() == [0] * 5
    assert coarse[[1, 32, 67, 73, 91]].tolist() == [1] * 5
    assert coarse[[8, 13, 48, 58, 90]].tolist() == [18] * 5
    mapping = noise.CIFAR100_MAPPING
    assert sorted(mapping) == list(range(100)) and sorted(mapping.values()) == list(
        range(100)
    )
    for fine, target in mapping.items():
        assert target != fine and coarse[target] == coarse[fine]
    assert mapping[4] == 30 and mapping[95] == 4  # cyclic within the superclass
    labels = jnp.asarray(np.random.default_rng(3).integers(0, 100, N), jnp.int32)
    noisy = np.asarray(noise.asymmetric(jax.random.key(4), labels, 0.4, "cifar100"))
    assert abs(flip_rate(labels, noisy) - 0.4) < TOL
    np.testing.assert_array_equal(coarse[noisy], coarse[np.asarray(labels)])


def test_asymmetric_dict_mapping():
    labels = jnp.asarray(np.arange(N) % 3, jnp.int32)
    noisy = np.asarray(noise.asymmetric(jax.random.key(0), labels, 0.5, {0: 2}))
    clean = np.asarray(labels)
    assert abs(flip_rate(clean[clean == 0], noisy[clean == 0]) - 0.5) < TOL
    np.testing.assert_array_equal(noisy[clean != 0], clean[clean != 0])
    assert set(noisy[clean == 0]) == {0, 2}


# -------------------------------------------------------- pairflip and instance
def test_pairflip(labels10):
    noisy = np.asarray(noise.pairflip(jax.random.key(5), labels10, 0.45, 10))
    clean = np.asarray(labels10)
    assert abs(flip_rate(clean, noisy) - 0.45) < TOL
    changed = clean != noisy
    np.testing.assert_array_equal(noisy[changed], (clean[changed] + 1) % 10)


def test_instance_dependent(labels10, instance_noisy):
    clean, noisy = np.asarray(labels10), np.asarray(instance_noisy)
    assert instance_noisy.dtype == jnp.int32
    assert abs(flip_rate(clean, noisy) - 0.4) < TOL
    # The targets depend on the sample: within a class they are far from uniform
    # over the other classes, unlike symmetric noise.
    flipped = (clean == 0) & (clean != noisy)
    counts = np.bincount(noisy[flipped], minlength=10)[1:]
    assert counts.min() >= 0 and stats.chisquare(counts).pvalue < 1e-6


def test_instance_dependent_low_rate_matches_truncated_normal(features, labels10):
    # Realised rate = mean of N(0.1, 0.1^2) truncated to [0, 1], from scipy.
    expected = stats.truncnorm(-1.0, 9.0, loc=0.1, scale=0.1).mean()  # ~0.129
    noisy = noise.instance_dependent(jax.random.key(6), features, labels10, 0.1, 10)
    assert abs(flip_rate(labels10, noisy) - expected) < TOL


# ------------------------------------------------------ shared model properties
MODELS = {
    "symmetric": lambda k, y, r, x: noise.symmetric(k, y, r, 10),
    "asymmetric": lambda k, y, r, x: noise.asymmetric(k, y, r, "mnist"),
    "pairflip": lambda k, y, r, x: noise.pairflip(k, y, r, 10),
    "instance": lambda k, y, r, x: noise.instance_dependent(k, x, y, r, 10),
}
SMALL = 2000


@pytest.mark.parametrize("kind", list(MODELS))
def test_rate_zero_and_determinism(labels10, features, kind):
    y, x = labels10[:SMALL], features[:SMALL]
    model = MODELS[kind]
    np.testing.assert_array_equal(model(jax.random.key(0), y, 0.0, x), y)
    a = model(jax.random.key(7), y, 0.4, x)
    np.testing.assert_array_equal(a, model(jax.random.key(7), y, 0.4, x))
    assert not np.array_equal(a, model(jax.random.key(8), y, 0.4, x))


def test_jit_matches_eager_with_traced_rate(labels10, features):
    y, x = labels10[:SMALL], features[:SMALL]
    key = jax.random.key(9)
    jitted = jax.jit(noise.symmetric, static_argnums=(3, 4))
    np.testing.assert_array_equal(
        jitted(key, y, jnp.float32(0.3), 10), noise.symmetric(key, y, 0.3, 10)
    )
    asym = jax.jit(noise.asymmetric, static_argnames="mapping")
    np.testing.assert_array_equal(
        asym(key, y, 0.3, mapping="mnist"), noise.asymmetric(key, y, 0.3, "mnist")
    )
    inst = jax.jit(noise.instance_dependent, static_argnums=4)
    np.testing.assert_array_equal(
        inst(key, x, y, jnp.float32(0.3), 10),
        noise.instance_dependent(key, x, y, 0.3, 10),
    )
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda k: noise.pairflip(k, y, 0.2, 10))(keys)
    assert batched.shape == (3, SMALL)
    np.testing.assert_array_equal(batched[1], noise.pairflip(keys[1], y, 0.2, 10))


# ---------------------------------------------------------------------- nearest
def test_nearest_class_mapping_pairs_the_closest_class_means():
    # Class means on a line at 0, 1, 5 and 5.5; class 4 has no example.
    centres = {0: 0.0, 1: 1.0, 2: 5.0, 3: 5.5}
    y = np.repeat(np.arange(4), 50)
    x = np.array([centres[c] for c in y])[:, None] + np.random.default_rng(0).normal(
        0, 0.05, (200, 3))
    got = dict(noise.nearest_class_mapping(x, y, 5))
    assert got == {0: 1, 1: 0, 2: 3, 3: 2, 4: 4}
    with pytest.raises(ValueError, match="outside"):
        noise.nearest_class_mapping(x, y + 2, 5)
    with pytest.raises(ValueError, match="feature rows"):
        noise.nearest_class_mapping(x[:10], y, 5)


def test_nearest_flips_every_class_to_its_neighbour_at_the_rate():
    y = np.repeat(np.arange(4), 5000)
    x = np.array([0.0, 1.0, 5.0, 5.5])[y][:, None]
    noisy = noise.nearest(jax.random.key(0), x, y, 0.4, 4)
    t = noise.realised_transition(y, noisy, 4)
    want = {0: 1, 1: 0, 2: 3, 3: 2}
    for c, d in want.items():
        assert abs(t[c, d] - 0.4) < 0.02 and abs(t[c, c] - 0.6) < 0.02
    assert t.sum() == pytest.approx(4.0)
    np.testing.assert_array_equal(noise.nearest(jax.random.key(1), x, y, 0.0, 4), y)


@pytest.mark.skipif(
    not Path(readers.SYSTEM_FASHION_MNIST_DIR).is_dir(),
    reason="apt-get install dataset-fashion-mnist (CI installs it)",
)
def test_nearest_on_fashion_mnist_pairs_similar_garments():
    ds = data.load("fashion_mnist")
    got = noise.nearest_class_mapping(ds.x_train, ds.y_train, 10)
    # pullover <-> coat, sandal <-> sneaker, T-shirt -> shirt
    assert (got[2], got[4], got[5], got[7], got[0]) == (4, 2, 7, 5, 6)


# ---------------------------------------------------------------- apply / parse
@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.mark.parametrize(
    "spec",
    ["symmetric:0.4", "asymmetric:0.3", "pairflip:0.45", "instance:0.4", "nearest:0.3"],
)
def test_apply_noise_changes_y_train_only(digits, spec):
    noisy = noise.apply_noise(jax.random.key(0), digits, spec)
    assert isinstance(noisy, data.Dataset)
    assert noisy.y_train.dtype == np.int32 and isinstance(noisy.y_train, np.ndarray)
    assert 0 < flip_rate(digits.y_train, noisy.y_train) < 0.6
    for field in dataclasses.fields(data.Dataset):
        if field.name.startswith(("x_", "y_val", "y_test")):
            assert getattr(noisy, field.name) is getattr(digits, field.name)
        elif field.name != "y_train":
            assert getattr(noisy, field.name) == getattr(digits, field.name)


def test_apply_noise_none_and_errors(digits):
    assert noise.apply_noise(jax.random.key(0), digits, "none") is digits
    synthetic = data.load("synthetic", num_train=50, num_test=10)
    with pytest.raises(ValueError, match="no asymmetric noise mapping for dataset"):
        noise.apply_noise(jax.random.key(0), synthetic, "asymmetric:0.2")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        noise.apply_noise(jax.random.key(0), digits, "symmetric:1.2")


def test_parse_noise_spec():
    assert noise.parse_noise_spec("symmetric:0.4") == ("symmetric", 0.4)
    assert noise.parse_noise_spec(" Pairflip:0.45 ") == ("pairflip", 0.45)
    assert noise.parse_noise_spec("instance:0") == ("instance", 0.0)
    assert noise.parse_noise_spec("none") == ("none", 0.0)
    for bad in (
        "symmetric",
        "symmetric:abc",
        "gaussian:0.2",
        "",
        "symmetric:0.2:1",
        "none:0.2",
        None,
    ):
        with pytest.raises(ValueError, match="noise spec"):
            noise.parse_noise_spec(bad)
    for bad in (
        "symmetric:1",
        "symmetric:1.5",
        "pairflip:-0.1",
        "asymmetric:nan",
        "instance:inf",
    ):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            noise.parse_noise_spec(bad)


def test_bad_inputs():
    key, y = jax.random.key(0), jnp.array([0, 1, 2], jnp.int32)
    x = jnp.zeros((3, 4))
    for rate in (1.0, -0.1, float("nan"), float("inf")):
        for call in (
            lambda r: noise.symmetric(key, y, r, 10),
            lambda r: noise.asymmetric(key, y, r, "mnist"),
            lambda r: noise.pairflip(key, y, r, 10),
            lambda r: noise.instance_dependent(key, x, y, r, 10),
        ):
            with pytest.raises(ValueError, match=r"\[0, 1\)"):
                call(rate)
    with pytest.raises(ValueError, match="outside"):
        noise.symmetric(key, jnp.array([0, 10]), 0.1, 10)
    with pytest.raises(ValueError, match=">= 0"):
        noise.pairflip(key, jnp.array([-1, 0]), 0.1, 10)
    with pytest.raises(ValueError, match="outside"):
        noise.asymmetric(key, jnp.array([0, 10]), 0.1, "cifar10")
    with pytest.raises(ValueError, match="integers"):
        noise.symmetric(key, jnp.array([0.0, 1.0]), 0.1, 10)
    with pytest.raises(ValueError, match="num_classes"):
        noise.symmetric(key, y, 0.1, 1)
    with pytest.raises(ValueError, match="num_classes"):
        jax.jit(noise.pairflip)(key, y, 0.1, 10)  # num_classes traced
    with pytest.raises(ValueError, match="known: .*cifar100"):
        noise.asymmetric(key, y, 0.1, "synthetic")
    with pytest.raises(ValueError, match="non-negative"):
        noise.asymmetric(key, y, 0.1, {0: -1})


def test_realised_transition():
    clean = np.array([0, 0, 0, 0, 1, 1, 2])
    noisy = np.array([0, 1, 1, 2, 1, 0, 2])
    expected = np.array(
        [[0.25, 0.5, 0.25, 0], [0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    )
    np.testing.assert_allclose(noise.realised_transition(clean, noisy, 4), expected)
    with pytest.raises(ValueError, match="differ"):
        noise.realised_transition(clean, noisy[:-1], 4)
    with pytest.raises(ValueError, match="outside"):
        noise.realised_transition(clean, noisy, 2)

"""Tests for arl_jax.models: every architecture builds, shapes, sizes, support."""

import dataclasses
import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arl_jax import models

# (arch, input shape) pairs the search may draw: Fashion-MNIST, MNIST-1D, digits,
# synthetic vectors and 32x32 colour images.
CASES = [
    ("mlp", (28, 28, 1)),
    ("mlp-s", (40,)),
    ("mlp-l", (8, 8, 1)),
    ("mlp-dropout", (20,)),
    pytest.param("cnn", (28, 28, 1), marks=pytest.mark.slow),
    ("cnn", (8, 8, 1)),
    pytest.param("lenet", (28, 28, 1), marks=pytest.mark.slow),
    ("cnn1d", (40,)),
    pytest.param("resnet", (32, 32, 3), marks=pytest.mark.slow),
]


@pytest.mark.parametrize("arch,shape", CASES)
def test_output_shape_and_dtype(arch, shape):
    model = models.build_model(arch, num_classes=7)
    x = jnp.ones((3, *shape), jnp.float32)
    params = model.init(jax.random.key(0), x)  # eager: cheaper than compiling here
    apply = model.apply
    out = apply(params, x)
    assert out.shape == (3, 7) and out.dtype == jnp.float32
    out_train = apply(params, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert out_train.shape == (3, 7)
    assert bool(jnp.all(jnp.isfinite(out_train)))


def test_every_named_arch_builds_on_a_supported_shape():
    shapes = [(28, 28, 1), (40,), (32, 32, 3)]
    for name in models.ARCHS:
        shape = next(s for s in shapes if models.arch_supports(name, s))
        assert models.param_count(name, shape, 10) > 0


def test_mlp_param_count_closed_form():
    # 784-256-256-10: weights plus biases of each Dense layer.
    expected = (784 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10)
    assert models.param_count("mlp", (28, 28, 1), 10) == expected
    cfg = models.mlp(depth=3, width=64)
    expected = (40 * 64 + 64) + 2 * (64 * 64 + 64) + (64 * 10 + 10)
    assert models.param_count(cfg, (40,), 10) == expected


def test_param_counts_reasonable():
    counts = {
        "mlp-s": models.param_count("mlp-s", (28, 28, 1), 10),
        "mlp-l": models.param_count("mlp-l", (28, 28, 1), 10),
        "cnn": models.param_count("cnn", (28, 28, 1), 10),
        "cnn1d": models.param_count("cnn1d", (40,), 10),
        "resnet": models.param_count("resnet", (32, 32, 3), 10),
    }
    assert counts["mlp-s"] < counts["mlp-l"] < 3_000_000
    for name in ("cnn", "cnn1d", "resnet"):
        assert 10_000 < counts[name] < 1_000_000, (name, counts[name])
    # LeNet-5's sizes: 5x5 convs 1->6->16 (SAME padding), 7x7x16 features, 120-84-10.
    lenet = (25 * 6 + 6) + (25 * 6 * 16 + 16) + (7 * 7 * 16 * 120 + 120)
    lenet += (120 * 84 + 84) + (84 * 10 + 10)
    assert models.param_count("lenet", (28, 28, 1), 10) == lenet
    # ResNet-8: stem + 3 stages x 2 convs + 2 projections, channels 16-32-64.
    convs = 9 * 3 * 16 + 9 * (16 * 16 + 16 * 16) + 9 * (16 * 32 + 32 * 32) + 16 * 32
    convs += 9 * (32 * 64 + 64 * 64) + 32 * 64
    assert math.isclose(counts["resnet"], convs, rel_tol=0.05)


def test_arch_supports():
    assert models.arch_supports("mlp", (40,))
    assert models.arch_supports("mlp", (28, 28, 1))
    assert models.arch_supports("cnn", (28, 28, 1))
    assert models.arch_supports("cnn", (8, 8, 1))
    assert not models.arch_supports("cnn", (40,))
    assert not models.arch_supports("cnn", (4, 4, 1))
    assert models.arch_supports("cnn1d", (40,))
    assert not models.arch_supports("cnn1d", (28, 28, 1))
    assert models.arch_supports("resnet", (32, 32, 3))
    assert not models.arch_supports("resnet", (20,))


def test_dropout_train_vs_eval():
    model = models.build_model("mlp-dropout", 10)
    x = jnp.ones((4, 20))
    params = model.init(jax.random.key(0), x)
    a = model.apply(params, x, train=True, rngs={"dropout": jax.random.key(1)})
    b = model.apply(params, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert not jnp.allclose(a, b)  # training draws masks
    e1, e2 = model.apply(params, x), model.apply(params, x)
    assert jnp.array_equal(e1, e2)  # evaluation is deterministic, needs no rng


def test_config_is_frozen_hashable_and_prints_readably():
    cfg = models.ARCHS["cnn"]
    assert hash(cfg) == hash(models.ArchConfig(**vars(cfg)))
    assert repr(cfg).startswith("ArchConfig(kind='cnn', widths=(128,), channels=(16")
    assert eval(repr(cfg), {"ArchConfig": models.ArchConfig}) == cfg
    with pytest.raises(AttributeError):
        cfg.kind = "mlp"
    assert models.ArchConfig(widths=[64, 32]).widths == (64, 32)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="kind"):
        models.ArchConfig(kind="transformer")
    with pytest.raises(ValueError, match="dropout"):
        models.ArchConfig(dropout=1.0)
    with pytest.raises(ValueError, match="channels"):
        models.ArchConfig(kind="cnn")
    with pytest.raises(ValueError, match="unknown architecture"):
        models.build_model("vgg", 10)
    with pytest.raises(ValueError, match="depth"):
        models.mlp(depth=5, width=64)


@pytest.mark.parametrize(
    "arch,shape",
    [
        ("cnn", (28, 28, 1)),
        ("cnn", (9, 11, 2)),
        ("cnn1d", (13,)),
        pytest.param("resnet", (9, 9, 3), marks=pytest.mark.slow),
    ],
)
def test_patch_convolution_equals_xla_convolution(arch, shape):
    # Same parameters (names, shapes, initial values) and the same outputs.
    base = models.ARCHS[arch]
    patches = models.build_model(dataclasses.replace(base, conv="patches"), 5)
    xla = models.build_model(dataclasses.replace(base, conv="xla"), 5)
    x = jax.random.normal(jax.random.key(0), (3, *shape))
    params = patches.init(jax.random.key(1), x)
    chex.assert_trees_all_equal(params, xla.init(jax.random.key(1), x))
    got, expected = patches.apply(params, x), xla.apply(params, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_max_pool2_equals_flax_max_pool():
    x = jax.random.normal(jax.random.key(0), (2, 9, 7, 3))  # odd sizes: VALID floor
    np.testing.assert_array_equal(models.max_pool2(x), nn.max_pool(x, (2, 2), (2, 2)))
    x1 = x[:, :, 0, :]  # [B, L, C]
    np.testing.assert_array_equal(models.max_pool2(x1), nn.max_pool(x1, (2,), (2,)))


@pytest.mark.parametrize("x_shape,w_shape", [
    ((6, 5), (5, 7)),  # [i, o] computed directly
    ((6, 9), (9, 3)),  # narrow output: computed as [o, i] and transposed
    ((2, 4, 4, 5), (5, 7)),  # patches [B, H, W, K] @ kernel
])
def test_matmul_equals_plain_product_with_gradients(x_shape, w_shape):
    kx, kw, kr = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, x_shape)
    w = jax.random.normal(kw, w_shape)
    r = jax.random.normal(kr, (*x_shape[:-1], w_shape[1]))

    def loss(f):
        return lambda x, w: jnp.sum(jnp.tanh(f(x, w)) * r)

    ours = loss(models.matmul)
    ref = loss(lambda x, w: x @ w)
    np.testing.assert_allclose(models.matmul(x, w), x @ w, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.grad(ours, (0, 1))(x, w), jax.grad(ref, (0, 1))(x, w),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # Under vmap over a population of weights with a shared input (layer 1).
    ws = jnp.stack([w, 2 * w, -w])
    got = jax.vmap(jax.grad(ours, 1), (None, 0))(x, ws)
    want = jax.vmap(jax.grad(ref, 1), (None, 0))(x, ws)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_dense_layers_use_matmul():
    model = models.build_model("mlp", 3)
    x = jnp.ones((2, 4))
    params = model.init(jax.random.key(0), x)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: model.apply(p, x).sum()))(params))
    assert "custom_vjp_call" in jaxpr


def test_every_kernel_multiplies_through_matmul_on_cpu():
    """Dense layers and patch convolutions (the CPU default) all go through `matmul`,
    whose VJP gives weight gradients in the layout Adam reads."""
    x = jnp.ones((2, 8, 8, 1))
    for arch in ("mlp", "cnn", "resnet"):
        model = models.build_model(arch, 3)
        params = jax.eval_shape(model.init, jax.random.key(0), x)  # no compile
        jaxpr = str(jax.make_jaxpr(lambda p, m=model: m.apply(p, x))(params))
        paths = jax.tree_util.tree_flatten_with_path(params)[0]
        kernels = sum(1 for path, _ in paths if path[-1].key == "kernel")
        assert jaxpr.count("custom_vjp_call") == kernels, arch

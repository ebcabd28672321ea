"""Tests for arl_jax.inner: vmap == loop, one trace, divergence, baselines, recipe."""

import dataclasses
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arl_jax import data, inner, losses, noise
from arl_jax.models import ArchConfig

TINY = ArchConfig(kind="mlp", widths=(32,))
# Taylor order 3: [c, theta_1, theta_2, theta_3]. GOOD is the series of -log p at 1.
GOOD = np.array([1.0, -1.0, 0.5, -1.0 / 3.0], np.float32)
OTHER = np.array([0.5, -2.0, 0.3, 0.1], np.float32)
EXPLODING = np.array([0.0, 1e8, -1e8, 1e8], np.float32)


def tiny_cfg(**kw) -> inner.InnerConfig:
    base = dict(
        arch=TINY, num_classes=4, loss="taylor", steps=30, batch_size=32, lr=3e-2
    )
    return inner.InnerConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def ds():
    return data.load("synthetic", num_train=320, num_test=200, dim=8, num_classes=4)


@pytest.fixture(scope="module")
def tiny_data(ds):
    noisy = noise.apply_noise(jax.random.key(0), ds, "symmetric:0.2")
    return inner.Data.from_dataset(noisy)


def assert_metrics_close(a: inner.Metrics, b: inner.Metrics, n_val: int, n_test: int):
    """Same run up to float reassociation: a flipped argmax costs one example."""
    np.testing.assert_array_equal(np.asarray(a.diverged), np.asarray(b.diverged))
    np.testing.assert_allclose(a.val_acc, b.val_acc, atol=1.01 / n_val)
    np.testing.assert_allclose(a.test_acc, b.test_acc, atol=1.01 / n_test)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_vmapped_population_equals_python_loop(tiny_data):
    cfg = tiny_cfg()
    pop = jnp.asarray(np.stack([GOOD, OTHER, 2 * GOOD]))  # [3, 4]
    keys = jax.random.split(jax.random.key(1), 2)  # [2]
    out = inner.make_evaluate(cfg)(pop, keys, tiny_data)
    assert out.val_acc.shape == out.test_acc.shape == (3, 2)
    assert out.train_loss.shape == out.diverged.shape == (3, 2)
    solo = jax.jit(inner.make_inner_train(cfg))
    n_val, n_test = tiny_data.y_val.shape[0], tiny_data.y_test.shape[0]
    for i in range(3):
        for j in range(2):
            got = jax.tree.map(lambda a, i=i, j=j: a[i, j], out)
            assert_metrics_close(got, solo(pop[i], keys[j], tiny_data), n_val, n_test)
    assert not out.diverged.any()
    assert float(out.val_acc.mean()) > 0.5  # it learns (4 classes, chance 0.25)


@pytest.mark.slow
def test_one_trace_for_population_evaluation(tiny_data):
    cfg = tiny_cfg(steps=5)
    counted = chex.assert_max_traces(inner.make_inner_train(cfg), n=1)
    evaluate = jax.jit(inner.batch_inner_train(counted))
    rng = np.random.default_rng(0)
    for seed in range(3):  # new values each call, same shapes: no retrace
        pop = jnp.asarray(rng.normal(size=(4, 4)), jnp.float32)
        keys = jax.random.split(jax.random.key(seed), 2)
        jax.block_until_ready(evaluate(pop, keys, tiny_data))
    # make_evaluate is cached per config and compiles once across calls.
    ev = inner.make_evaluate(cfg)
    assert inner.make_evaluate(tiny_cfg(steps=5)) is ev
    for seed in range(2):
        pop = jnp.asarray(rng.normal(size=(4, 4)), jnp.float32)
        ev(pop, jax.random.split(jax.random.key(seed), 2), tiny_data)
    assert ev._cache_size() == 1


@pytest.mark.slow
def test_population_in_groups_equals_one_batch(tiny_data):
    # 5 candidates in groups of at most 2: 3 groups of 2, one padding candidate.
    cfg = tiny_cfg(steps=10)
    rng = np.random.default_rng(1)
    pop = jnp.asarray(GOOD + 0.1 * rng.normal(size=(5, 4)), jnp.float32)
    keys = jax.random.split(jax.random.key(5), 2)
    run = inner.make_inner_train(cfg)
    whole = jax.jit(inner.batch_inner_train(run))(pop, keys, tiny_data)
    grouped = jax.jit(inner.batch_inner_train(run, pop_chunk=2))(pop, keys, tiny_data)
    assert grouped.val_acc.shape == (5, 2)
    n_val, n_test = tiny_data.y_val.shape[0], tiny_data.y_test.shape[0]
    assert_metrics_close(grouped, whole, n_val, n_test)


def test_group_size_follows_the_footprint():
    # MNIST-1D MLP: ~2.7 MB a candidate -> 8 in 24 MiB; LeNet on 28x28: the minimum.
    mlp = inner.InnerConfig(arch="mlp", loss="taylor")
    cnn = inner.InnerConfig(arch="cnn", loss="taylor")
    assert 2e6 < inner.candidate_bytes(mlp, (40,)) < 4e6
    if jax.default_backend() != "cpu":
        assert inner.default_pop_chunk(mlp, (40,)) is None
        return
    assert inner.default_pop_chunk(mlp, (40,)) == 8
    assert inner.default_pop_chunk(mlp, (40,), num_devices=2) == 16
    assert inner.default_pop_chunk(cnn, (28, 28, 1)) == inner.MIN_POP_CHUNK
    tiny = inner.default_pop_chunk(tiny_cfg(), (8,))
    assert tiny > 64  # tiny models: the whole population at once


def test_diverging_candidate_is_flagged_and_isolated(tiny_data):
    cfg = tiny_cfg()
    pop = jnp.asarray(np.stack([GOOD, EXPLODING, OTHER]))
    keys = jax.random.split(jax.random.key(2), 2)
    out = inner.make_evaluate(cfg)(pop, keys, tiny_data)
    np.testing.assert_array_equal(out.diverged, [[False] * 2, [True] * 2, [False] * 2])
    np.testing.assert_array_equal(out.val_acc[1], 0.0)
    np.testing.assert_array_equal(out.test_acc[1], 0.0)
    assert np.isinf(out.train_loss[1]).all()
    # The other candidates match their runs without the diverging one beside them.
    alone = inner.make_evaluate(cfg)(pop[::2], keys, tiny_data)
    n_val, n_test = tiny_data.y_val.shape[0], tiny_data.y_test.shape[0]
    assert_metrics_close(jax.tree.map(lambda a: a[::2], out), alone, n_val, n_test)


def test_non_finite_divergence_leaves_no_nan(tiny_data):
    # Without the magnitude bound: a NaN loss, and a finite loss whose gradient norm
    # overflows float32, are caught by the finiteness checks alone; the merely huge
    # EXPLODING loss is not (Adam normalises its gradient: no NaN ever appears),
    # which is why the default bound max_loss=1e6 exists.
    cfg = tiny_cfg(max_loss=float("inf"))
    nan_loss = np.array([np.nan, 1.0, 1.0, 1.0], np.float32)
    huge = np.array([0.0, 1e30, 1e30, 1e30], np.float32)
    pop = jnp.asarray(np.stack([GOOD, nan_loss, huge, EXPLODING]))
    keys = jax.random.split(jax.random.key(3), 2)
    out = inner.make_evaluate(cfg)(pop, keys, tiny_data)
    expected = [[False] * 2, [True] * 2, [True] * 2, [False] * 2]
    np.testing.assert_array_equal(out.diverged, expected)
    for leaf in (out.val_acc, out.test_acc, out.train_loss):
        assert not np.isnan(np.asarray(leaf)).any()
    np.testing.assert_array_equal(out.test_acc[1:3], 0.0)


@pytest.mark.slow
def test_baselines_run_through_the_same_function(tiny_data):
    keys = jax.random.split(jax.random.key(4), 2)
    ce = inner.make_evaluate(tiny_cfg(loss="cross_entropy"))
    a = ce(jnp.ones((2, 1)), keys, tiny_data)
    b = ce(jnp.zeros((2, 1)), keys, tiny_data)  # loss_params are ignored
    chex.assert_trees_all_equal(a, b)
    assert float(a.val_acc.mean()) > 0.5
    gce = inner.make_evaluate(tiny_cfg(loss="gce", loss_hparams={"q": 0.7}))
    assert gce(jnp.ones((1, 1)), keys, tiny_data).val_acc.shape == (1, 2)
    assert tiny_cfg(loss="gce", loss_hparams={"q": 0.7}).loss_hparams == (("q", 0.7),)
    arl = tiny_cfg(loss="arl", loss_hparams={"coeffs": np.array(GOOD)})
    assert arl.loss_hparams == (("coeffs", tuple(float(c) for c in GOOD)),)
    hash(arl)  # list/array hyper-parameters become tuples: the config keys a cache
    # "arl" is the shipped loss: another loss is a family (loss="taylor") instead.
    with pytest.raises(ValueError, match="no hyper-parameters"):
        inner.make_loss(arl)


@pytest.mark.slow
def test_baseline_matches_hand_written_cross_entropy_step(tiny_data):
    # Two full-batch SGD steps by hand (flax model, numpy-free CE) equal the engine's.
    n = tiny_data.x_train.shape[0]
    cfg = tiny_cfg(
        loss="cross_entropy",
        optimizer="sgd",
        momentum=0.0,
        lr=0.5,
        schedule="constant",
        steps=2,
        batch_size=n,
    )
    key = jax.random.key(5)
    k_init, _, _ = jax.random.split(key, 3)
    model = inner.build_model(cfg.arch, cfg.num_classes)
    params = model.init(k_init, tiny_data.x_train[:1])
    x, y = tiny_data.x_train, tiny_data.y_train  # a full batch: order is irrelevant

    def ce(p):
        log_p = jax.nn.log_softmax(model.apply(p, x))
        return -jnp.mean(log_p[jnp.arange(n), y])

    for _ in range(2):
        last_loss, grads = jax.value_and_grad(ce)(params)
        params = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    pred = jnp.argmax(model.apply(params, tiny_data.x_val), -1)
    expected = float(jnp.mean(pred == tiny_data.y_val))
    got = jax.jit(inner.make_inner_train(cfg))(jnp.ones(1), key, tiny_data)
    n_val = tiny_data.y_val.shape[0]
    np.testing.assert_allclose(float(got.val_acc), expected, atol=1.01 / n_val)
    # train_loss: mean over the last epoch (here the 2nd step, before its update).
    np.testing.assert_allclose(float(got.train_loss), float(last_loss), rtol=1e-5)


def _np_objective(loss_values, logits, lam):
    """mean(loss) + lam KL(u || m) in numpy, m the batch's mean softmax."""
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    m = p.mean(axis=0)
    return float(np.mean(loss_values)) + lam * float(
        np.sum(np.log((1 / m.size) / m)) / m.size)


def test_make_loss_is_the_objective_a_step_minimises():
    rng = np.random.default_rng(7)
    logits = jnp.asarray(rng.normal(size=(16, 4)) * 2, jnp.float32)
    labels = jnp.asarray(rng.integers(0, 4, 16), jnp.int32)
    ignored = jnp.ones(1)
    # A named loss: its batch mean; loss_params are ignored.
    ce = inner.make_loss(tiny_cfg(loss="cross_entropy"))(ignored, logits, labels)
    log_p = jax.nn.log_softmax(logits)
    np.testing.assert_allclose(ce, -np.mean(log_p[jnp.arange(16), labels]), rtol=1e-6)
    gce = inner.make_loss(tiny_cfg(loss="gce", loss_hparams={"q": 0.5}))
    np.testing.assert_allclose(
        gce(ignored, logits, labels),
        np.mean((1 - np.exp(0.5 * log_p[jnp.arange(16), labels])) / 0.5), rtol=1e-5)
    # A family without a batch term: the mean of its per-example loss.
    taylor = inner.make_loss(tiny_cfg())(jnp.asarray(GOOD), logits, labels)
    p_y = np.exp(np.asarray(log_p)[np.arange(16), labels])
    poly = sum(GOOD[k] * (p_y - GOOD[0]) ** k for k in range(1, 4))
    np.testing.assert_allclose(taylor, np.mean(poly), rtol=1e-5)
    # The prior family: the mean of its per-example part plus lambda x the penalty.
    params = np.array([0.7, 1.0, -1.0, 0.5, 2.5], np.float32)  # a, c, th1, th2, lam
    got = inner.make_loss(tiny_cfg(loss="taylor_nce_prior"))(
        jnp.asarray(params), logits, labels)
    part = losses.taylor_nce_loss(params[:-1], logits, labels)
    np.testing.assert_allclose(got, _np_objective(part, logits, 2.5), rtol=1e-5)
    # The shipped "arl": its per-example part plus its batch term (lambda x the
    # penalty).
    shipped = losses.load_pretrained()
    assert shipped["family"] == "taylor_nce_prior"
    got = inner.make_loss(tiny_cfg(loss="arl"))(ignored, logits, labels)
    want = _np_objective(losses.arl_loss(logits, labels), logits, shipped["coeffs"][-1])
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.slow
def test_prior_family_and_arl_train_on_mean_plus_penalty(tiny_data):
    # taylor_nce_prior over 2 full-batch SGD steps equals the same two steps by hand
    # on mean(taylor_nce) + lambda KL(u || mean softmax); loss "arl" (the shipped
    # taylor_nce_prior loss) trains as that family with the shipped coefficients.
    n = tiny_data.x_train.shape[0]
    params = np.array([0.7, 1.0, -1.0, 0.5, 2.5], np.float32)  # a, c, th1, th2, lam
    cfg = tiny_cfg(loss="taylor_nce_prior", optimizer="sgd", momentum=0.0, lr=0.5,
                   schedule="constant", steps=2, batch_size=n)
    key = jax.random.key(6)
    model = inner.build_model(cfg.arch, cfg.num_classes)
    weights = model.init(jax.random.split(key, 3)[0], tiny_data.x_train[:1])
    x, y = tiny_data.x_train, tiny_data.y_train

    def objective(w):
        logits = model.apply(w, x)
        m = jnp.mean(jax.nn.softmax(logits), axis=0)  # [C]
        penalty = -jnp.mean(jnp.log(m)) - jnp.log(m.shape[0])
        return jnp.mean(losses.taylor_nce_loss(params[:-1], logits, y)) + (
            params[-1] * penalty)

    for _ in range(2):
        last_loss, grads = jax.value_and_grad(objective)(weights)
        weights = jax.tree.map(lambda p, g: p - 0.5 * g, weights, grads)
    pred = jnp.argmax(model.apply(weights, tiny_data.x_val), -1)
    got = jax.jit(inner.make_inner_train(cfg))(jnp.asarray(params), key, tiny_data)
    n_val, n_test = tiny_data.y_val.shape[0], tiny_data.y_test.shape[0]
    np.testing.assert_allclose(float(got.val_acc),
                               float(jnp.mean(pred == tiny_data.y_val)),
                               atol=1.01 / n_val)
    np.testing.assert_allclose(float(got.train_loss), float(last_loss), rtol=1e-5)
    # Without the penalty (lambda = 0) it is another run.
    no_prior = jax.jit(inner.make_inner_train(cfg))(
        jnp.asarray(np.r_[params[:-1], 0.0]), key, tiny_data)
    assert abs(float(no_prior.train_loss) - float(got.train_loss)) > 1e-4
    # "arl" is the shipped family and coefficients, penalty included.
    shipped = losses.load_pretrained()
    via_family = jax.jit(inner.make_inner_train(
        dataclasses.replace(cfg, loss=shipped["family"])))(
        jnp.asarray(shipped["coeffs"], jnp.float32), key, tiny_data)
    via_arl = jax.jit(inner.make_inner_train(dataclasses.replace(cfg, loss="arl")))(
        jnp.ones(1), key, tiny_data)
    assert_metrics_close(via_arl, via_family, n_val, n_test)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(optimizer="sgd", schedule="warmup_cosine", lr=0.05),
        dict(optimizer="adamw", weight_decay=1e-4, grad_clip=1.0),
        dict(arch="mlp-dropout", schedule="constant", loss="taylorglo"),
        dict(arch="cnn1d", eval_batch_size=7, epochs=0.5),
    ],
)
def test_other_recipes_and_archs_train(tiny_data, overrides):
    cfg = tiny_cfg(**overrides)
    n_params = losses.family_num_params(cfg.loss, 3)
    pop = jnp.asarray(np.stack([losses.family_init(cfg.loss, 3)] * 2), jnp.float32)
    assert pop.shape == (2, n_params)
    out = inner.make_evaluate(cfg)(
        pop, jax.random.split(jax.random.key(6), 2), tiny_data
    )
    assert out.val_acc.shape == (2, 2) and not out.diverged.any()
    assert np.isfinite(np.asarray(out.train_loss)).all()


@pytest.mark.slow
def test_chunked_evaluation_matches_one_pass(tiny_data):
    model = inner.build_model("cnn1d", 4)
    params = model.init(jax.random.key(0), tiny_data.x_test[:1])
    one = inner.accuracy(model, params, tiny_data.x_test, tiny_data.y_test, 10_000)
    chunked = inner.accuracy(model, params, tiny_data.x_test, tiny_data.y_test, 7)
    expected = jnp.mean(
        jnp.argmax(model.apply(params, tiny_data.x_test), -1) == tiny_data.y_test
    )
    np.testing.assert_allclose(one, expected)
    np.testing.assert_allclose(chunked, expected)


def test_batch_indices_are_epoch_permutations():
    idx = np.asarray(inner.batch_indices(jax.random.key(0), 50, 16, 7))  # 3 per epoch
    assert idx.shape == (7, 16)
    for e in range(2):
        epoch = idx[3 * e : 3 * e + 3].ravel()
        assert len(np.unique(epoch)) == 48 and epoch.max() < 50  # no repeats
    assert not np.array_equal(idx[:3], idx[3:6])  # a fresh order each epoch


def test_config_steps_epochs_and_validation(ds):
    assert tiny_cfg().num_steps(1000) == 30
    assert tiny_cfg(epochs=2.0).num_steps(330) == 20  # 10 batches of 32 an epoch
    with pytest.raises(ValueError, match="batch_size"):
        tiny_cfg(batch_size=64).num_steps(50)
    with pytest.raises(ValueError, match="unknown loss"):
        tiny_cfg(loss="hinge2")
    with pytest.raises(ValueError, match="optimizer"):
        tiny_cfg(optimizer="lamb")
    with pytest.raises(ValueError, match="schedule"):
        tiny_cfg(schedule="step")
    with pytest.raises(ValueError, match="unknown architecture"):
        tiny_cfg(arch="vgg")
    d = inner.Data.from_dataset(ds)
    assert d.x_train.dtype == jnp.float32 and d.y_train.dtype == jnp.int32
    assert d.x_train.shape == ds.x_train.shape


@pytest.mark.slow
def test_default_recipe_fashion_mnist():
    """Clean labels + CE + the default recipe: >= 84% test accuracy (2 seeds)."""
    try:
        fmnist = data.load("fashion_mnist")
    except FileNotFoundError as err:
        pytest.skip(f"Fashion-MNIST not available: {err}")
    cfg = inner.InnerConfig()  # the defaults are the recipe
    assert cfg.loss == "cross_entropy" and cfg.arch == "mlp"
    evaluate = inner.make_evaluate(cfg)
    keys = jax.random.split(jax.random.key(0), 2)
    start = time.perf_counter()
    out = evaluate(jnp.ones((1, 1)), keys, inner.Data.from_dataset(fmnist))
    acc = np.asarray(out.test_acc)
    print(f"Fashion-MNIST test acc {acc}, {time.perf_counter() - start:.1f} s")
    assert acc.min() >= 0.84, acc


def test_evaluation_batch_is_the_training_batch_on_cpu_and_does_not_move_accuracy(
    tiny_data, monkeypatch,
):
    with monkeypatch.context() as m:
        m.setattr(jax, "default_backend", lambda: "cpu")
        assert inner.eval_batch(tiny_cfg(batch_size=32)) == inner.MIN_CPU_EVAL_BATCH
        assert inner.eval_batch(tiny_cfg(batch_size=256)) == 256
        m.setattr(jax, "default_backend", lambda: "gpu")
        assert inner.eval_batch(tiny_cfg(batch_size=32)) == inner.ACCELERATOR_EVAL_BATCH
    assert inner.eval_batch(tiny_cfg(eval_batch_size=7)) == 7
    with pytest.raises(ValueError, match="eval_batch_size >= 0"):
        tiny_cfg(eval_batch_size=-1)
    # The same trained run evaluated in passes of 7, of the default and of everything.
    key, coeffs = jax.random.key(3), jnp.asarray(losses.family_init("taylor", 4))
    runs = [jax.jit(inner.make_inner_train(tiny_cfg(eval_batch_size=b)))(
        coeffs, key, tiny_data) for b in (7, 0, 400)]
    for r in runs[1:]:
        assert_metrics_close(r, runs[0], tiny_data.y_val.shape[0],
                             tiny_data.y_test.shape[0])

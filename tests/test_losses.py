"""Tests for arl_jax.losses (and the baselines it re-exports).

Values are checked against independent float64 numpy versions of each formula.
"""

import functools
import json
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arl_jax import losses

C = 10
A_RCE = -np.log(1e-4)  # Wang et al. (2019): log of the one-hot clamped at 1e-4
A_NNCE = -np.log(1e-7)  # Ye et al. (2023): probabilities floored at 1e-7
PRETRAINED = pathlib.Path(losses.__file__).parent / "pretrained" / "arl.json"


def _points() -> tuple[np.ndarray, np.ndarray]:
    """[8, C] float32 logits and labels: random rows plus p_y near 0 and near 1."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 2.0, (8, C)).astype(np.float32)
    labels = rng.integers(0, C, 8).astype(np.int32)
    logits[0, labels[0]] = -15.0  # p_y ~ 3e-7
    logits[1, labels[1]] = 15.0  # p_y ~ 1 - 3e-6
    logits[2] = 0.0  # uniform, p_y = 1 / C
    logits[3, labels[3]] = -8.0
    logits[4, labels[4]] = 9.0
    return logits, labels


def _logits_for(p_y: np.ndarray) -> np.ndarray:
    """[n, C] logits giving exactly probability p_y to class 0, the rest equal."""
    z = np.zeros((len(p_y), C))
    z[:, 0] = np.log(p_y) - np.log((1.0 - p_y) / (C - 1))
    return z.astype(np.float32)


# ------------------------------------------------------------ numpy references


def _np_probs(logits, labels):
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    onehot = np.eye(z.shape[-1])[labels]
    return np.exp(log_p), log_p, onehot, (onehot * np.exp(log_p)).sum(-1)


def np_loss(name, logits, labels, **hp):
    """Independent float64 implementation of each named loss."""
    p, log_p, oh, py = _np_probs(logits, labels)
    ce = -np.log(py)
    nce = np.log(py) / log_p.sum(-1)
    if name == "cross_entropy":
        return ce
    if name == "label_smoothing":
        eps = hp.get("eps", 0.1)
        return -(((1 - eps) * oh + eps / C) * log_p).sum(-1)
    if name == "mae":
        return 1 - py
    if name == "gce":
        q = hp.get("q", 0.7)
        return (1 - py**q) / q
    if name == "taylor_ce":
        return sum((1 - py) ** k / k for k in range(1, hp.get("order", 2) + 1))
    if name == "poly1":
        return ce + hp.get("eps", 1.0) * (1 - py)
    if name == "rce":
        return A_RCE * (1 - py)
    if name == "sce":
        return hp.get("alpha", 0.1) * ce + hp.get("beta", 1.0) * A_RCE * (1 - py)
    if name == "nce":
        return nce
    if name == "nce_rce":
        return hp.get("alpha", 1.0) * nce + hp.get("beta", 1.0) * A_RCE * (1 - py)
    if name == "nce_mae":
        return hp.get("alpha", 1.0) * nce + hp.get("beta", 1.0) * (1 - py)
    if name in ("nnce", "anl_ce"):
        z = A_NNCE + np.log(np.maximum(p, 1e-7))
        nnce = 1 - (z * oh).sum(-1) / z.sum(-1)
        if name == "nnce":
            return nnce
        return hp.get("alpha", 1.0) * nce + hp.get("beta", 1.0) * nnce
    if name == "nfl":
        focal = -((1 - p) ** hp.get("gamma", 0.5)) * log_p
        return (focal * oh).sum(-1) / focal.sum(-1)
    if name == "bootstrap_soft":
        beta = hp.get("beta", 0.95)
        return -((beta * oh + (1 - beta) * p) * log_p).sum(-1)
    if name == "bootstrap_hard":
        beta, hard = hp.get("beta", 0.8), np.eye(C)[p.argmax(-1)]
        return -((beta * oh + (1 - beta) * hard) * log_p).sum(-1)
    if name == "arl":
        shipped = json.loads(PRETRAINED.read_text())
        coeffs = shipped["coeffs"]
        if shipped["family"] == "taylor_nce_prior":  # per example: no batch term
            return coeffs[0] * nce + np_taylor(coeffs[1:-1], py)
        if shipped["family"] == "taylor_nce":
            return coeffs[0] * nce + np_taylor(coeffs[1:], py)
        assert shipped["family"] == "taylor", shipped["family"]
        return np_taylor(coeffs, py)
    raise KeyError(name)


def np_taylor(coeffs, py):
    return sum(t * (py - coeffs[0]) ** k for k, t in enumerate(coeffs[1:], start=1))


def np_taylorglo(params, logits, labels):
    p, _, oh, _ = _np_probs(logits, labels)
    c_y, c_p, t1, t2, t3, t4, t5, t6 = params
    u, v = p - c_p, oh - c_y
    terms = (t1 * u + t2 * u**2 / 2 + t3 * u**3 / 6 + t4 * v * u + t5 * v * u**2 / 2
             + t6 * v**2 * u / 2)
    return -terms.sum(-1) / C


CASES = [(name, {}) for name in losses.LOSSES] + [
    ("label_smoothing", {"eps": 0.3}),
    ("gce", {"q": 0.3}),
    ("taylor_ce", {"order": 5}),
    ("poly1", {"eps": -0.5}),
    ("sce", {"alpha": 1.0, "beta": 0.5}),
    ("nce_rce", {"alpha": 10.0, "beta": 0.1}),
    ("nce_mae", {"alpha": 2.0, "beta": 3.0}),
    ("nfl", {"gamma": 2.0}),
    ("anl_ce", {"alpha": 5.0, "beta": 5.0}),
    ("bootstrap_soft", {"beta": 0.5}),
    ("bootstrap_hard", {"beta": 0.3}),
]


@pytest.mark.parametrize(("name", "hp"), CASES)
def test_loss_matches_numpy(name, hp):
    logits, labels = _points()
    got = losses.get_loss(name, **hp)(logits, labels)
    assert got.shape == (8,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, np_loss(name, logits, labels, **hp),
                               rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_gradient_finite_at_extremes(name):
    logits, labels = _points()
    grad = jax.grad(lambda z: losses.get_loss(name)(z, labels).sum())(logits)
    assert np.isfinite(grad).all()
    assert np.abs(grad[2:]).sum() > 0  # not trivially zero


def test_published_defaults():
    defaults = {n: losses.loss_hyperparams(n) for n in losses.LOSSES}
    assert defaults["label_smoothing"] == {"eps": 0.1}
    assert defaults["gce"] == {"q": 0.7}
    assert defaults["taylor_ce"] == {"order": 2}
    assert defaults["poly1"] == {"eps": 1.0}
    assert defaults["sce"] == {"alpha": 0.1, "beta": 1.0}
    assert defaults["nce_rce"] == defaults["nce_mae"] == {"alpha": 1.0, "beta": 1.0}
    assert defaults["nfl"] == {"gamma": 0.5}
    assert defaults["anl_ce"] == {"alpha": 1.0, "beta": 1.0}
    assert defaults["bootstrap_soft"] == {"beta": 0.95}
    assert defaults["bootstrap_hard"] == {"beta": 0.8}
    assert defaults["arl"] == {}
    assert defaults["cross_entropy"] == defaults["mae"] == defaults["nnce"] == {}


def test_closed_form_gradients():
    logits, labels = _points()
    p, _, oh, py = _np_probs(logits, labels)
    # d(1 - p_y)/dz = -p_y (onehot - p)
    grad = jax.grad(lambda z: losses.mae(z, labels).sum())(logits)
    np.testing.assert_allclose(grad, -py[:, None] * (oh - p), atol=1e-6)
    # Bootstrapping with a fixed target t: d/dz = p - t = beta (p - onehot).
    grad = jax.grad(lambda z: losses.bootstrap_soft(z, labels, beta=0.7).sum())(logits)
    np.testing.assert_allclose(grad, 0.7 * (p - oh), atol=1e-6)


# ------------------------------------------------------------ the searched families


def test_taylor_and_taylorglo_match_numpy():
    logits, labels = _points()
    _, _, _, py = _np_probs(logits, labels)
    coeffs = np.array([0.4, -1.5, 0.7, 2.0, -0.3], np.float32)
    np.testing.assert_allclose(losses.taylor_loss(coeffs, logits, labels),
                               np_taylor(coeffs, py), rtol=1e-5, atol=1e-6)
    params = np.array([0.2, 0.6, 1.0, -0.5, 2.0, 3.0, -1.0, 0.5], np.float32)
    np.testing.assert_allclose(losses.taylorglo_loss(params, logits, labels),
                               np_taylorglo(params, logits, labels),
                               rtol=1e-5, atol=1e-6)


def test_taylor_nce_matches_numpy_and_contains_taylor_and_nce_mae():
    logits, labels = _points()
    _, log_p, oh, py = _np_probs(logits, labels)
    params = np.array([0.8, 0.4, -1.5, 0.7, 2.0, -0.3], np.float32)
    nce = (oh * log_p).sum(-1) / log_p.sum(-1)
    np.testing.assert_allclose(losses.taylor_nce_loss(params, logits, labels),
                               0.8 * nce + np_taylor(params[1:], py),
                               rtol=1e-5, atol=1e-6)
    # a = 0 is ARL's Taylor family; a = 1, c = 1, theta_1 = -1 is NCE+MAE.
    np.testing.assert_allclose(
        losses.taylor_nce_loss(np.r_[0.0, params[1:]], logits, labels),
        losses.taylor_loss(params[1:], logits, labels), atol=1e-6)
    np.testing.assert_allclose(
        losses.taylor_nce_loss(np.array([1.0, 1.0, -1.0, 0.0]), logits, labels),
        losses.nce_mae(logits, labels), atol=1e-6)
    # arl_loss takes the family of explicit coefficients.
    np.testing.assert_allclose(
        losses.arl_loss(logits, labels, coeffs=params, family="taylor_nce"),
        losses.taylor_nce_loss(params, logits, labels))
    with pytest.raises(ValueError, match="unknown family"):
        losses.arl_loss(logits, labels, coeffs=params, family="nope")


def test_class_prior_penalty_is_the_kl_from_uniform_to_the_batch_mean_prediction():
    logits, labels = _points()
    p = _np_probs(logits, labels)[0]
    m = p.mean(0)
    kl = np.sum(np.log((1 / C) / m)) / C
    got = np.asarray(losses.class_prior_penalty(logits))
    assert got.shape == ()
    np.testing.assert_allclose(got, kl, rtol=1e-5)
    # Every class predicted equally often: 0.
    balanced = np.where(np.eye(C, dtype=bool), 8.0, 0.0).astype(np.float32)
    assert float(losses.class_prior_penalty(balanced)) == pytest.approx(0.0, abs=1e-6)
    # One class never predicted: large, and its gradient raises that class's logit
    # on every example.
    collapsed = balanced.copy()
    collapsed[:, 2] = -10.0
    assert float(losses.class_prior_penalty(collapsed)) > 0.5
    g = jax.grad(losses.class_prior_penalty)(jnp.asarray(collapsed))
    assert (np.asarray(g)[:, 2] < 0).all()
    # By default every leading axis is one batch; axis=1 gives one per member.
    both = np.stack([balanced, collapsed])
    np.testing.assert_allclose(losses.class_prior_penalty(both),
                               losses.class_prior_penalty(np.concatenate(both)),
                               rtol=1e-5)
    np.testing.assert_allclose(
        losses.class_prior_penalty(both, axis=1),
        [losses.class_prior_penalty(balanced), losses.class_prior_penalty(collapsed)],
        rtol=1e-5, atol=1e-6)
    # A mask keeps the masked rows out of the mean prediction.
    padded = np.concatenate([logits, np.zeros((3, C), np.float32)])
    mask = np.r_[np.ones(len(logits), bool), np.zeros(3, bool)]
    np.testing.assert_allclose(losses.class_prior_penalty(padded, mask), kl,
                               rtol=1e-5)
    with pytest.raises(ValueError, match="C >= 2"):
        losses.class_prior_penalty(logits[:, :1])


def test_taylor_nce_prior_is_taylor_nce_per_example_plus_the_penalty_per_batch():
    logits, labels = _points()
    base = np.array([0.8, 1.0, -1.5, 0.7], np.float32)
    for lam in (0.0, 2.5):
        params = np.r_[base, lam]
        np.testing.assert_allclose(
            losses.arl_loss(logits, labels, coeffs=params, family="taylor_nce_prior"),
            losses.taylor_nce_loss(base, logits, labels), rtol=1e-6)
        np.testing.assert_allclose(
            losses.arl_objective(logits, labels, coeffs=params,
                                 family="taylor_nce_prior"),
            np.mean(losses.taylor_nce_loss(base, logits, labels))
            + lam * losses.class_prior_penalty(logits), rtol=1e-6)
    with pytest.raises(ValueError, match="params"):
        losses.taylor_nce_prior_loss(base[:2], logits, labels)


def test_with_class_prior_adds_the_penalty_to_any_loss():
    logits, labels = _points()
    pen = float(losses.class_prior_penalty(logits))
    assert pen > 0.01  # the test points' mean prediction is not uniform
    for name, kw in (("nce_mae", {}), ("gce", {"q": 0.5})):
        fn = losses.with_class_prior(name, 2.0, **kw)
        np.testing.assert_allclose(
            fn(logits, labels),
            np.mean(losses.get_loss(name, **kw)(logits, labels)) + 2.0 * pen,
            rtol=1e-6)
    # A function works as well as a name; weight 0 is the loss's mean; jit and
    # grad go through, the gradient including the penalty's.
    np.testing.assert_allclose(losses.with_class_prior(losses.nce_rce, 0.0)(
        logits, labels), np.mean(losses.nce_rce(logits, labels)), rtol=1e-6)
    fn = jax.jit(losses.with_class_prior(losses.cross_entropy))
    g = jax.grad(lambda z: fn(z, labels))(jnp.asarray(logits))
    g_ce = jax.grad(lambda z: losses.cross_entropy(z, labels).mean())(
        jnp.asarray(logits))
    g_pen = jax.grad(losses.class_prior_penalty)(jnp.asarray(logits))
    np.testing.assert_allclose(g, g_ce + g_pen, rtol=1e-5, atol=1e-7)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="weight must be finite"):
            losses.with_class_prior("nce_mae", bad)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.with_class_prior("no_such_loss")
    with pytest.raises(ValueError, match="by name only"):
        losses.with_class_prior(losses.gce, q=0.5)
    with pytest.raises(ValueError):  # labels out of range, checked by the loss
        losses.with_class_prior("nce_mae")(logits, labels + C)


def test_taylor_series_approaches_cross_entropy():
    p_y = np.linspace(0.3, 0.999, 50)
    logits, labels = _logits_for(p_y), np.zeros(50, np.int32)
    ce = np.asarray(losses.cross_entropy(logits, labels))
    np.testing.assert_allclose(ce, -np.log(p_y), rtol=1e-5, atol=1e-6)
    errors = [np.abs(losses.taylor_loss(losses.family_init("taylor", k), logits,
                                        labels) - ce).max() for k in range(1, 11)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[0] > 0.3 and errors[-1] < 0.01, errors


def test_taylor_order_one_is_mae_up_to_scale():
    logits, labels = _points()
    mae = np.asarray(losses.mae(logits, labels))
    np.testing.assert_allclose(
        losses.taylor_loss(losses.family_init("taylor", 1), logits, labels), mae,
        atol=1e-6)
    c, theta = 0.3, 2.5  # theta (p - c) = -theta (1 - p) + theta (1 - c)
    got = losses.taylor_loss(jnp.array([c, theta]), logits, labels)
    np.testing.assert_allclose(got, -theta * mae + theta * (1 - c), atol=1e-5)


def test_taylorglo_init_is_scaled_second_order_ce():
    logits, labels = _points()
    got = losses.taylorglo_loss(losses.family_init("taylorglo", 3), logits, labels)
    np.testing.assert_allclose(got, losses.taylor_ce(logits, labels) / C, atol=1e-6)


@pytest.mark.parametrize(("family", "order", "n"),
                         [("taylor", 1, 2), ("taylor", 4, 5), ("taylorglo", 3, 8),
                          ("taylor_nce", 4, 6), ("taylor_nce_prior", 4, 7),
                          ("taylor_nce_prior", 2, 5)])
def test_family_num_params_and_init(family, order, n):
    assert losses.family_num_params(family, order) == n
    init = losses.family_init(family, order)
    assert init.shape == (n,) and init.dtype == np.float32
    if family == "taylor":
        k = np.arange(1, n)
        np.testing.assert_allclose(init, np.r_[1.0, (-1.0) ** k / k])
    if family == "taylor_nce":  # the "taylor" start behind a zero NCE weight
        np.testing.assert_array_equal(init, np.r_[0.0, losses.family_init("taylor",
                                                                         order)])
    if family == "taylor_nce_prior":  # taylor_nce's start, no penalty
        np.testing.assert_array_equal(init, np.r_[losses.family_init("taylor_nce",
                                                                     order), 0.0])


@pytest.mark.parametrize("name",
                         ["mae", "rce", "nce", "nce_rce", "nce_mae", "nnce", "anl_ce"])
def test_symmetric_losses_sum_to_a_constant(name):
    logits = np.random.default_rng(1).normal(0, 3, (6, C)).astype(np.float32)
    fn = losses.get_loss(name)
    total = sum(fn(logits, np.full(6, k, np.int32)) for k in range(C))
    expected = {"mae": C - 1, "rce": A_RCE * (C - 1), "nce": 1.0,
                "nce_rce": 1 + A_RCE * (C - 1), "nce_mae": 1.0 + C - 1,
                "nnce": C - 1, "anl_ce": 1.0 + C - 1}[name]
    np.testing.assert_allclose(total, expected, rtol=1e-5)


def test_cross_entropy_is_not_symmetric():
    logits = np.random.default_rng(1).normal(0, 3, (6, C)).astype(np.float32)
    total = sum(losses.cross_entropy(logits, np.full(6, k, np.int32)) for k in range(C))
    assert np.ptp(np.asarray(total)) > 1.0


# ------------------------------------------------------ transformations and dtypes


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_jit_matches_eager_and_bfloat16_is_finite(name):
    logits, labels = _points()
    fn = losses.get_loss(name)
    eager = np.asarray(fn(logits, labels))
    # Fused (jit) and op-by-op float32 may round differently: a few ulps of the
    # batch's largest loss.
    ulps = 4 * np.finfo(np.float32).eps * np.abs(eager).max()
    np.testing.assert_allclose(jax.jit(fn)(logits, labels), eager, rtol=1e-6,
                               atol=max(1e-7, ulps))
    low = jnp.asarray(logits, jnp.bfloat16)
    out = fn(low, labels)
    assert out.dtype == jnp.float32 and np.isfinite(out).all()
    # Computed in float32 from the bfloat16 values, not in bfloat16.
    np.testing.assert_allclose(out, fn(low.astype(jnp.float32), labels), rtol=1e-6)


@pytest.mark.parametrize(("fn", "pop"), [
    (losses.taylor_loss, np.random.default_rng(2).normal(size=(5, 5))),
    (losses.taylorglo_loss, np.random.default_rng(3).normal(size=(5, 8))),
])
def test_vmap_over_coefficients_equals_loop(fn, pop):
    logits, labels = _points()
    pop = jnp.asarray(pop, jnp.float32)  # [pop, P]
    got = jax.jit(jax.vmap(fn, in_axes=(0, None, None)))(pop, logits, labels)
    assert got.shape == (5, 8)
    want = np.stack([fn(c, logits, labels) for c in pop])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_jit_traces_once_and_grad_wrt_coeffs():
    logits, labels = _points()
    _, _, _, py = _np_probs(logits, labels)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def total(coeffs):
        return losses.taylor_loss(coeffs, logits, labels).sum()

    c = jnp.array([0.8, -1.0, 0.5, 0.3])
    grad = jax.grad(total)(c)
    total(c + 1.0)  # new values, same shapes: no retrace
    d = py - 0.8  # d loss / d theta_k = d^k; d loss / d c = -sum_k k theta_k d^(k-1)
    want = [-(-1.0 + 2 * 0.5 * d + 3 * 0.3 * d**2).sum(), d.sum(),
            (d**2).sum(), (d**3).sum()]
    np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------ ARL and the registry


def test_load_pretrained_and_arl_default():
    data = losses.load_pretrained()
    on_disk = json.loads(PRETRAINED.read_text())
    assert data == on_disk
    for key in ["family", "coeffs", "fitness", "generation", "command", "seed",
                "date", "provisional"]:
        assert key in data
    assert data["provisional"] is False and data["family"] in losses.FAMILIES
    # A learned result carries the command that made it and its fitness.
    assert data["command"].startswith("python -m experiments.meta_search")
    assert -1.0 <= data["fitness"] <= 0.0
    data["coeffs"].append(99.0)  # a fresh copy each call: the cache is untouched
    assert losses.load_pretrained()["coeffs"] == on_disk["coeffs"]
    logits, labels = _points()
    np.testing.assert_allclose(
        losses.arl_loss(logits, labels),
        losses.family_loss(on_disk["family"], jnp.asarray(on_disk["coeffs"]), logits,
                           labels), rtol=1e-6)


def test_shipped_arl_is_bounded_and_decreasing():
    # A usable robust loss: it rewards the labelled class everywhere on [0, 1] and,
    # unlike CE, stays bounded as p_y -> 0 (the constant offset is irrelevant).
    # The scale is arbitrary (Adam hardly sees it), so boundedness is checked against
    # the loss's own span over [1e-6, 0.999]: going 24 decades further down, to
    # p_y = 1e-30, it rises by less than half that span; cross-entropy, which grows
    # like -log p_y, rises by more than its span.
    p_y = np.concatenate([[1e-30, 1e-6], np.linspace(0.001, 0.999, 200)])
    labels = np.zeros(len(p_y), np.int32)

    def rise_over_span(curve):
        return (curve[0] - curve[1]) / (curve[1] - curve[-1])

    curve = np.asarray(losses.arl_loss(_logits_for(p_y), labels))
    assert np.isfinite(curve).all()
    assert (np.diff(curve) < 0).all()
    assert rise_over_span(curve) < 0.5
    ce = np.asarray(losses.cross_entropy(_logits_for(p_y), labels))
    assert rise_over_span(ce) > 1.0


SEARCH_K = [2.4837, 3.6713, 14.2350, -5.6797, -1.7370, -10.2054, -0.3614]  # c = 14.2


@pytest.mark.parametrize(("family", "coeffs"), [
    ("taylor_nce", [6.7377, 0.0601, -10.0108, 0.4395, 1.3833, -2.4688]),
    ("taylor", [0.3, -2.0, 1.5, -0.7]),
    ("taylor_nce_prior", [1.5, 0.3, -2.0, 0.8, 0.4, 0.7]),
])
def test_normalise_coeffs_keeps_the_gradients_up_to_a_positive_factor(family, coeffs):
    normal, scale = losses.normalise_coeffs(family, coeffs)
    fn = functools.partial(losses.family_objective, family)
    logits, labels = _points()

    def grad(params):
        g = jax.grad(lambda z: fn(jnp.asarray(params), z, labels))(logits)
        return np.asarray(g, np.float64)

    g_raw, g_normal = grad(coeffs), grad(normal)
    assert scale > 0 and np.isfinite(g_normal).all()
    np.testing.assert_allclose(g_raw / scale, g_normal, rtol=2e-3, atol=1e-6)
    # Centred at p_y = 1, and it falls by ln C from uniform to perfect, like CE.
    centre = {"taylor": 0, "taylor_nce": 1, "taylor_nce_prior": 1}
    assert normal[centre[family]] == 1.0
    uniform, perfect = np.zeros((1, C), np.float32), np.full((1, C), -60.0, np.float32)
    perfect[0, 0] = 60.0
    at = functools.partial(losses.family_loss, family)  # per example: no penalty
    drop = at(jnp.asarray(normal), uniform, np.zeros(1, np.int32)) - at(
        jnp.asarray(normal), perfect, np.zeros(1, np.int32))
    np.testing.assert_allclose(drop, np.log(C), rtol=1e-4)
    # The normal form is a fixed point.
    again, one = losses.normalise_coeffs(family, normal)
    np.testing.assert_allclose(again, normal, rtol=1e-9, atol=1e-12)
    assert one == pytest.approx(1.0)


@pytest.mark.parametrize(("family", "coeffs", "into"), [
    ("taylor", [0.3, -2.0, 1.5], "taylor_nce"),
    ("taylor_nce", [1.5, 1.0, -3.1, -2.0], "taylor_nce"),
    ("taylor", [0.3, -2.0, 1.5], "taylor_nce_prior"),
    ("taylor_nce", [1.5, 1.0, -3.1, -2.0], "taylor_nce_prior"),
])
def test_embed_coeffs_writes_the_same_loss_in_a_larger_family(family, coeffs, into):
    logits, labels = _points()
    big = losses.embed_coeffs(family, coeffs, into)
    order = len(coeffs) - losses.family_num_params(family, 1) + 1
    assert len(big) == losses.family_num_params(into, order)
    np.testing.assert_allclose(
        losses.family_objective(into, jnp.asarray(big), logits, labels),
        losses.family_objective(family, jnp.asarray(coeffs), logits, labels),
        rtol=1e-6)
    with pytest.raises(ValueError, match="does not contain"):
        losses.embed_coeffs(into, big, "taylor")


@pytest.mark.parametrize(("family", "into"), [("taylor_nce_prior", "taylor_nce"),
                                              ("taylor_nce", "taylor"),
                                              ("taylor", "taylorglo"),
                                              ("taylorglo", "taylor_nce")])
def test_embed_coeffs_refuses_a_family_that_is_not_contained(family, into):
    with pytest.raises(ValueError, match="does not contain"):
        losses.embed_coeffs(family, [1.0, 1.0, 1.0, -1.0], into)


@pytest.mark.parametrize(("args", "match"), [
    (("taylorglo", np.zeros(8)), "handles"),
    (("taylor", [1.0, 2.0]), "does not fall"),  # increasing in p_y
    (("taylor", [1.0, -1.0], 1), "num_classes"),
    (("taylor_nce", [1.0, 1.0]), "order"),  # no theta at all
    (("taylor_nce_prior", [0.0, 1.0, 1.0, 3.0]), "does not fall"),  # rising
])
def test_normalise_coeffs_rejects_what_it_cannot_normalise(args, match):
    with pytest.raises(ValueError, match=match):
        losses.normalise_coeffs(*args)


def test_get_loss_binds_hyperparameters():
    logits, labels = _points()
    np.testing.assert_allclose(losses.get_loss("gce", q=0.4)(logits, labels),
                               losses.gce(logits, labels, q=0.4))
    coeffs = jnp.array([1.0, -2.0, 1.0])
    np.testing.assert_allclose(
        losses.arl_loss(logits, labels, coeffs=coeffs, family="taylor"),
        losses.taylor_loss(coeffs, logits, labels))
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        losses.get_loss("arl", coeffs=coeffs)


# ------------------------------------------------------------------ bad inputs

LOGITS = np.zeros((4, C), np.float32)
LABELS = np.array([0, 1, 2, 3], np.int32)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: losses.cross_entropy(LOGITS, np.array([0, 1, 2, C])), r"\[0, 10\)"),
    (lambda: losses.gce(LOGITS, np.array([0, -1, 2, 3])), r"\[0, 10\)"),
    (lambda: losses.taylor_loss(jnp.ones(3), LOGITS, np.array([0, 1, 2, 11])),
     r"\[0, 10\)"),
    (lambda: losses.mae(LOGITS, LABELS[:3]), "shape"),
    (lambda: losses.nce(LOGITS[:, :1], LABELS), "C >= 2"),
    (lambda: losses.sce(LOGITS, LABELS.astype(np.float32)), "integer"),
    (lambda: losses.taylor_loss(jnp.ones(1), LOGITS, LABELS), "at least 2"),
    (lambda: losses.taylor_loss(jnp.ones((3, 4)), LOGITS, LABELS), "1-D"),
    (lambda: losses.taylorglo_loss(jnp.ones(7), LOGITS, LABELS), "8"),
    (lambda: losses.get_loss("crossentropy"), "cross_entropy"),
    (lambda: losses.get_loss("gce", gamma=1.0), "'q'"),
    (lambda: losses.get_loss("mae", eps=0.1), "none"),
    (lambda: losses.taylor_ce(LOGITS, LABELS, order=0), "order"),
    (lambda: losses.family_num_params("glo", 3), "taylorglo"),
    (lambda: losses.family_init("taylor", 0), "order"),
    (lambda: losses.gce(LOGITS, LABELS, q=0.0), r"q must be in \(0, 1\]"),
    (lambda: losses.gce(LOGITS, LABELS, q=-1.0), r"q must be in \(0, 1\]"),
    (lambda: losses.arl_loss(LOGITS, LABELS, coeffs=[1.0, 2.0]), "needs family="),
    (lambda: losses.mae(LOGITS, LABELS, where=np.ones(4)), "boolean"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_label_range_check_skipped_under_jit():
    bad = np.array([0, 1, 2, C], np.int32)
    out = jax.jit(losses.cross_entropy)(LOGITS, bad)  # no concrete values: no check
    assert out.shape == (4,)


# ------------------------------------------------------- the per-example contract


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_every_loss_is_per_example(name):
    logits, labels = _points()
    fn = losses.get_loss(name)
    batched = np.asarray(fn(logits, labels))
    # One example at a time (per-example gradients, DP-SGD) gives the same values.
    single = jax.vmap(lambda z, y: fn(z[None], y[None])[0])(logits, labels)
    np.testing.assert_allclose(single, batched, rtol=1e-5, atol=1e-6)
    # Micro-batches of 3 and 5 (gradient accumulation) give the same values.
    parts = np.concatenate([fn(logits[:3], labels[:3]), fn(logits[3:], labels[3:])])
    np.testing.assert_allclose(parts, batched, rtol=1e-5, atol=1e-6)
    # A padding mask zeroes the padded rows and leaves the others alone.
    padded = np.concatenate([logits, np.zeros((2, C), np.float32)])
    mask = np.r_[np.ones(8, bool), np.zeros(2, bool)]
    masked = np.asarray(fn(padded, np.r_[labels, [0, 0]].astype(np.int32),
                           where=mask))
    np.testing.assert_allclose(masked[:8], batched, rtol=1e-5, atol=1e-6)
    assert (masked[8:] == 0).all()
    # A NaN logit stays in its row.
    bad = logits.copy()
    bad[3, 1] = np.nan
    out = np.asarray(fn(bad, labels))
    assert np.isnan(out[3]) and np.isfinite(np.delete(out, 3)).all()
    np.testing.assert_allclose(np.delete(out, 3), np.delete(batched, 3), rtol=1e-5,
                               atol=1e-6)
    # ... and a mask over it keeps it out of a masked mean.
    keep = np.arange(8) != 3
    assert np.isfinite(losses.masked_mean(fn(bad, labels, where=keep), keep))


def test_arl_objective_is_the_masked_mean_plus_the_batch_penalty():
    logits, labels = _points()
    shipped = losses.load_pretrained()
    assert shipped["family"] == "taylor_nce_prior"
    lam = shipped["coeffs"][-1]
    want = np.mean(np_loss("arl", logits, labels)) + lam * float(
        losses.class_prior_penalty(logits))
    np.testing.assert_allclose(losses.arl_objective(logits, labels), want, rtol=1e-5)
    # A zero-padded batch with its mask gives the unpadded batch's objective.
    padded = np.concatenate([logits, np.zeros((5, C), np.float32)])
    mask = np.r_[np.ones(8, bool), np.zeros(5, bool)]
    np.testing.assert_allclose(
        losses.arl_objective(padded, np.r_[labels, np.zeros(5, np.int32)], mask),
        want, rtol=1e-5)
    # The objective of a name: the mean, plus the shipped penalty for "arl".
    np.testing.assert_allclose(losses.get_objective("arl")(logits, labels), want,
                               rtol=1e-6)
    np.testing.assert_allclose(losses.get_objective("gce", q=0.5)(logits, labels),
                               np.mean(losses.gce(logits, labels, q=0.5)), rtol=1e-6)


def test_load_loss_reads_any_loss_file_and_the_env_variable(tmp_path, monkeypatch):
    logits, labels = _points()
    best = {"family": "taylor_nce", "coeffs": [0.5, 1.0, -2.0, 0.3]}
    path = tmp_path / "best_loss.json"
    path.write_text(json.dumps(best))
    want = losses.taylor_nce_loss(np.asarray(best["coeffs"]), logits, labels)
    np.testing.assert_allclose(losses.load_loss(path)(logits, labels), want)
    np.testing.assert_allclose(losses.load_loss(best)(logits, labels), want)
    np.testing.assert_allclose(losses.load_objective(str(path))(logits, labels),
                               np.mean(want), rtol=1e-6)
    np.testing.assert_allclose(losses.arl_loss(logits, labels, loss_file=path), want)
    monkeypatch.setenv(losses.ARL_LOSS_ENV, str(path))
    np.testing.assert_allclose(losses.arl_loss(logits, labels), want)
    assert losses.load_pretrained()["coeffs"] == best["coeffs"]
    monkeypatch.delenv(losses.ARL_LOSS_ENV)
    assert losses.load_pretrained()["family"] == "taylor_nce_prior"


@pytest.mark.parametrize(("content", "match"), [
    ("{", "not valid JSON"),
    ('{"coeffs": [1, 2]}', "'family' and 'coeffs'"),
    ('{"family": "nope", "coeffs": [1, 2]}', "unknown family"),
    ('{"family": "taylor", "coeffs": [1]}', "do not fit"),
    ('{"family": "taylorglo", "coeffs": [1, 2, 3]}', "do not fit"),
    ('{"family": "taylor", "coeffs": [1, NaN]}', "finite"),
    ('{"family": "taylor", "coeffs": [1, 1e39]}', "finite"),
])
def test_load_loss_refuses_a_bad_file_naming_it(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        losses.load_loss(path)
    assert "bad.json" in str(info.value)
    with pytest.raises(ValueError, match="cannot read"):
        losses.load_loss(tmp_path / "missing.json")

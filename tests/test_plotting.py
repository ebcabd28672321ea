"""Tests for arl_jax.plotting and the plot_losses command."""

import numpy as np
import pytest
from matplotlib.image import imread

from arl_jax import losses, plotting
from arl_jax.commands import plot_losses as plot_cmd


@pytest.mark.parametrize("num_classes", [2, 10, 100])
def test_prob_logits_give_exact_probabilities(num_classes):
    p_y = np.array([1e-4, 0.001, 0.3, 0.5, 0.99, 1 - 1e-6])
    z = plotting.prob_logits(p_y, num_classes).astype(np.float64)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    np.testing.assert_allclose(p[:, 0], p_y, rtol=1e-6)
    rest = (1 - p_y) / (num_classes - 1)
    np.testing.assert_allclose(p[:, 1:], np.repeat(rest[:, None], num_classes - 1, 1),
                               rtol=1e-5)


def test_prob_logits_rejects_bad_input():
    with pytest.raises(ValueError, match="p_y"):
        plotting.prob_logits(np.array([0.5, 1.0]), 10)
    with pytest.raises(ValueError, match="num_classes"):
        plotting.prob_logits(np.array([0.5]), 1)


def test_loss_curves_follow_closed_forms():
    p_y = np.array([0.001, 0.1, 0.5, 0.9, 1.0])
    curves = plotting.loss_curves(["cross_entropy", "mae", "rce"], p_y)
    assert list(curves) == ["cross_entropy", "mae", "rce"]
    p = np.clip(p_y, None, 1 - 1e-6)  # p_y = 1 is drawn at 1 - 1e-6
    np.testing.assert_allclose(curves["cross_entropy"], -np.log(p), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(curves["mae"], 1 - p, atol=1e-6)
    np.testing.assert_allclose(curves["rce"], -np.log(1e-4) * (1 - p), atol=1e-5)


def test_loss_curves_accept_callables_and_reject_unknown_names():
    p_y = np.array([0.2, 0.7])
    curves = plotting.loss_curves({"double": lambda z, y: 2 * losses.mae(z, y)}, p_y)
    np.testing.assert_allclose(curves["double"], 2 * (1 - p_y), atol=1e-6)
    with pytest.raises(ValueError, match="valid names"):
        plotting.loss_curves(["not_a_loss"], p_y)
    with pytest.raises(ValueError, match="no losses"):
        plotting.loss_curves([], p_y)


def test_default_figure_has_one_panel_per_loss():
    fig = plotting.loss_figure(num_points=50)
    assert len(fig.axes) == len(plotting.DEFAULT_LOSSES) == 6
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:5] == ["CE", "GCE (q = 0.7)", "MAE", "Label smoothing (eps = 0.1)",
                          "SCE (alpha = 0.1, beta = 1)"]
    assert titles[5].startswith("ARL")
    x, y = fig.axes[2].lines[0].get_data()  # the MAE panel
    assert x.min() == pytest.approx(0.001) and x.max() == pytest.approx(1.0)
    np.testing.assert_allclose(y, 1 - np.clip(x, None, 1 - 1e-6), atol=1e-6)


def test_shipped_loss_is_plotted_without_its_batch_term():
    # The shipped loss's objective adds lambda x the class-prior penalty, one value
    # for the whole batch: on the plotted points (all labelled 0, so far from a
    # uniform prior) it would lift the curve by a constant that depends on the
    # points. The panel shows the per-example part (`arl_loss`) and says the
    # penalty is there.
    shipped = losses.load_pretrained()
    assert shipped["family"] == "taylor_nce_prior"
    p_y = np.array([0.05, 0.5, 0.95])
    logits, labels = plotting.prob_logits(p_y, 10), np.zeros(3, np.int32)
    curve = plotting.loss_curves(["arl"], p_y)["arl"]
    per_example = losses.taylor_nce_loss(
        np.asarray(shipped["coeffs"][:-1], np.float32), logits, labels)
    np.testing.assert_allclose(curve, per_example, rtol=1e-6)
    np.testing.assert_allclose(curve, losses.arl_loss(logits, labels), rtol=1e-6)
    objective = float(losses.arl_objective(logits, labels))
    penalty = float(losses.class_prior_penalty(logits))
    assert penalty > 0.1  # the batch term the panel leaves out
    np.testing.assert_allclose(objective, np.mean(curve) + shipped["coeffs"][-1]
                               * penalty, rtol=1e-5)
    assert plotting.loss_figure(["arl"], num_points=20).axes[0].get_title() == (
        f"ARL (+ {shipped['coeffs'][-1]:.2g} x class prior)")


def test_plot_losses_writes_png(tmp_path):
    path = plotting.plot_losses(["mae", "gce"], tmp_path / "sub" / "l.png",
                                num_points=30, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[1] > image.shape[0] > 50  # one row of two panels
    assert image[..., :3].std() > 0.05  # something was drawn


def test_command_line_writes_png(tmp_path, capsys):
    out = tmp_path / "losses.png"
    plot_cmd.main(["--out", str(out), "--losses", "mae,nce", "--num-classes", "5"])
    assert out.stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out

"""Plots of loss functions against the probability of the labelled class.

Uses matplotlib's object-oriented API on an Agg canvas: no pyplot state, no display,
and no change to the caller's backend.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from arl_jax import losses as losses_lib

# The panels of Gao et al. (ICCV 2021), Figure 2.
DEFAULT_LOSSES = ("cross_entropy", "gce", "mae", "label_smoothing", "sce", "arl")
TITLES = {
    "cross_entropy": "CE",
    "gce": "GCE (q = 0.7)",
    "mae": "MAE",
    "label_smoothing": "Label smoothing (eps = 0.1)",
    "sce": "SCE (alpha = 0.1, beta = 1)",
    "arl": "ARL",
}
# p_y = 1 needs an infinite logit; the curve ends at 1 - 1e-6 instead.
_P_MAX = 1.0 - 1e-6

LossSpec = Mapping[str, Callable] | Sequence[str] | None


def prob_logits(p_y: np.ndarray, num_classes: int) -> np.ndarray:
    """Logits giving class 0 probability exactly ``p_y`` and the others equal shares.

    With the other logits 0 and ``z_0 = log p_y - log((1 - p_y) / (C - 1))``, the
    softmax is ``p_y`` for class 0 and ``(1 - p_y) / (C - 1)`` for every other class.

    Args:
      p_y: ``[n]`` probabilities in (0, 1).
      num_classes: C >= 2.

    Returns:
      ``[n, C]`` float32 logits; the label is class 0.
    """
    p_y = np.asarray(p_y, np.float64)
    if num_classes < 2 or np.any((p_y <= 0) | (p_y >= 1)):
        raise ValueError("need num_classes >= 2 and every p_y in (0, 1)")
    logits = np.zeros((p_y.shape[0], num_classes))
    logits[:, 0] = np.log(p_y) - np.log((1.0 - p_y) / (num_classes - 1))
    return logits.astype(np.float32)


def _resolve(losses: LossSpec) -> dict[str, Callable]:
    if losses is None:
        losses = DEFAULT_LOSSES
    if isinstance(losses, str):
        losses = [losses]
    if not isinstance(losses, Mapping):
        losses = {name: losses_lib.get_loss(name) for name in losses}
    if not losses:
        raise ValueError("no losses to plot")
    return dict(losses)


def loss_curves(
    losses: LossSpec, p_y: np.ndarray, num_classes: int = 10
) -> dict[str, np.ndarray]:
    """Each loss evaluated along ``p_y`` (the other classes sharing the rest equally).

    Args:
      losses: ``{name: fn(logits, labels)}``, a list of `arl_jax.losses` names, or
        ``None`` for `DEFAULT_LOSSES`.
      p_y: ``[n]`` probabilities of the labelled class; clipped to
        ``[1e-6, 1 - 1e-6]`` so the logits stay finite.
      num_classes: number of classes C.

    Returns:
      ``{name: [n] float64 losses}``.
    """
    p = np.clip(np.asarray(p_y, np.float64), 1e-6, _P_MAX)
    logits = prob_logits(p, num_classes)
    labels = np.zeros(p.shape[0], np.int32)
    return {name: np.asarray(fn(logits, labels), np.float64)
            for name, fn in _resolve(losses).items()}


def loss_figure(
    losses: LossSpec = None, *, num_classes: int = 10, num_points: int = 400,
    ncols: int = 3,
) -> Figure:
    """A grid with one panel per loss, loss against ``p_y`` in [0.001, 1].

    Args:
      losses: as in `loss_curves`.
      num_classes: number of classes C (the paper's figure uses 10).
      num_points: points along ``p_y``.
      ncols: panels per row.

    Returns:
      The matplotlib `Figure` (on an Agg canvas).
    """
    p_y = np.linspace(0.001, 1.0, num_points)
    curves = loss_curves(losses, p_y, num_classes)
    nrows = math.ceil(len(curves) / ncols)
    ncols = min(ncols, len(curves))
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (name, curve) in enumerate(curves.items()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.plot(p_y, curve, color="C0", linewidth=2)
        ax.set_title(_title(name))
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(bottom=min(0.0, curve.min()))
        ax.set_xlabel("$p_y$")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Loss against the probability of the labelled class ({num_classes}"
                 " classes, other classes equal)")
    return fig


def _title(name: str) -> str:
    title = TITLES.get(name, name)
    if name != "arl":
        return title
    shipped = losses_lib.load_pretrained()
    if losses_lib.FAMILIES[shipped["family"]].batch_term is not None:
        title += f" (+ {shipped['coeffs'][-1]:.2g} x class prior)"
    if shipped.get("provisional"):
        title += " (provisional)"
    return title


def plot_losses(
    losses: LossSpec, path: str | pathlib.Path, *, num_classes: int = 10,
    num_points: int = 400, ncols: int = 3, dpi: int = 120,
) -> pathlib.Path:
    """Plot each loss against ``p_y`` (one panel a loss) and save a PNG.

    Like Figure 2 of Gao, Gouk & Hospedales, "Searching for Robustness: Loss
    Learning for Noisy Classification Tasks", ICCV 2021.

    Args:
      losses: ``{name: fn(logits, labels)}``, a list of `arl_jax.losses` names, or
        ``None`` for `DEFAULT_LOSSES` (CE, GCE, MAE, label smoothing, SCE, ARL).
      path: where to write the PNG; parent folders are created.
      num_classes: number of classes C.
      num_points: points along ``p_y``.
      ncols: panels per row.
      dpi: resolution of the PNG.

    Returns:
      The path written.
    """
    fig = loss_figure(losses, num_classes=num_classes, num_points=num_points,
                      ncols=ncols)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path

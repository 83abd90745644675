"""Lecture 12: applications."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..anomaly import auroc as _auroc, confusion as _confusion, roc_curve as _roc_curve
from .common import _axes, log_density_on_grid

__all__ = ["ANOMALY_STYLE", "NORMAL_STYLE", "animate_threshold_sweep", "plot_completions",
           "plot_posteriors", "plot_ranked_images", "plot_roc", "plot_score_histograms",
           "plot_threshold", "threshold_summary"]


NORMAL_STYLE = {"color": "tab:blue", "label": "normal"}
ANOMALY_STYLE = {"color": "tab:red", "label": "anomalous"}


def _numpy(values) -> np.ndarray:
    return np.asarray(values.detach() if isinstance(values, torch.Tensor) else values,
                      dtype=float).ravel()


def _score_labels(normal, anomalous) -> tuple[np.ndarray, np.ndarray]:
    normal, anomalous = _numpy(normal), _numpy(anomalous)
    return np.r_[np.zeros(normal.size), np.ones(anomalous.size)], np.r_[normal, anomalous]


def plot_score_histograms(normal, anomalous, *, threshold: float | None = None,
                          ax: Axes | None = None, bins: int = 40,
                          xlabel: str = "anomaly score", names=("normal", "anomalous")) -> Figure:
    """Histograms (counts) of the scores of normal and anomalous inputs on shared bins. With
    a ``threshold``, a vertical line marks it and the flagged side, ``score >= threshold``,
    is shaded; the legend then gives the counts on each side."""
    ax = _axes(ax, figsize=(6.0, 3.4))
    normal, anomalous = _numpy(normal), _numpy(anomalous)
    both = np.r_[normal, anomalous]
    lo, hi = np.quantile(both, [0.0, 0.99])
    edges = np.linspace(lo, hi + 0.02 * (hi - lo), bins + 1)
    for values, style, name in ((normal, NORMAL_STYLE, names[0]), (anomalous, ANOMALY_STYLE, names[1])):
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        label = name
        if threshold is not None:
            label += f": {int((values >= threshold).sum())} of {values.size} flagged"
        ax.stairs(counts, edges, fill=True, alpha=0.35, color=style["color"])
        ax.stairs(counts, edges, color=style["color"], linewidth=1.2, label=label)
    if threshold is not None:
        ax.axvspan(threshold, edges[-1], color="0.85", zorder=0, label="flagged: score ≥ τ")
        ax.axvline(threshold, color="black", linewidth=1.5)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel(xlabel + (" (the last bin holds everything above)" if both.max() > hi else ""))
    ax.set_ylabel("number of inputs")
    ax.legend(fontsize="small", loc="upper right")
    return ax.figure


def plot_roc(curves: dict, *, point: tuple[float, float] | None = None,
             ax: Axes | None = None) -> Figure:
    """ROC curves, ``TPR`` against ``FPR`` as the threshold falls, one per entry
    ``name: (normal_scores, anomalous_scores)``, each labelled with its AUROC; the diagonal
    is a detector that guesses. ``point = (FPR, TPR)`` marks one threshold."""
    ax = _axes(ax, figsize=(3.8, 3.6))
    ax.plot([0, 1], [0, 1], "--", color="0.6", linewidth=1, label="guessing (0.5)")
    for name, (normal, anomalous) in curves.items():
        labels, scores = _score_labels(normal, anomalous)
        fpr, tpr, _ = _roc_curve(labels, scores)
        ax.plot(fpr, tpr, linewidth=2, label=f"{name} (AUROC {_auroc(labels, scores):.3f})")
    if point is not None:
        ax.plot(*point, "o", color="black", markersize=7, zorder=5)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (normal flagged)")
    ax.set_ylabel("true positive rate (anomalies flagged)")
    ax.legend(fontsize="small", loc="lower right")
    return ax.figure


def threshold_summary(normal, anomalous, threshold: float) -> str:
    """One line with the confusion counts, precision and recall at ``threshold``."""
    labels, scores = _score_labels(normal, anomalous)
    c = _confusion(labels, scores, threshold)
    precision = "undefined" if c.true_pos + c.false_pos == 0 else f"{c.precision:.2f}"
    return (f"τ = {threshold:.2f}: TP {c.true_pos}, FP {c.false_pos}, TN {c.true_neg}, "
            f"FN {c.false_neg};  precision {precision}, recall {c.recall:.2f}, "
            f"false alarms {c.false_alarm_rate:.2f}")


def plot_threshold(normal, anomalous, threshold: float, *, axes: Sequence[Axes] | None = None,
                   xlabel: str = "anomaly score") -> Figure:
    """The scores with the threshold (left) and the ROC curve with the point that threshold
    picks (right), titled with the confusion counts."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(10.0, 3.8), width_ratios=[1.6, 1],
                            layout="constrained")[1]
    plot_score_histograms(normal, anomalous, threshold=threshold, ax=axes[0], xlabel=xlabel)
    labels, scores = _score_labels(normal, anomalous)
    c = _confusion(labels, scores, threshold)
    plot_roc({"detector": (normal, anomalous)}, point=(c.false_alarm_rate, c.recall), ax=axes[1])
    axes[0].figure.suptitle(threshold_summary(normal, anomalous, threshold), fontsize="medium")
    return axes[0].figure


def animate_threshold_sweep(normal, anomalous, *, frames: int = 16, figsize=(9.0, 3.6),
                            dpi: int = 80, interval: int = 250,
                            xlabel: str = "anomaly score") -> FuncAnimation:
    """The threshold sliding from the highest score to the lowest: as it passes the scores,
    more inputs are flagged and the point ``(FPR, TPR)`` walks along the ROC curve from
    ``(0, 0)`` to ``(1, 1)``. The histograms and the curve are drawn once; each frame moves
    the threshold, the shaded flagged side, the point and the counts in the title. The
    default size renders 720 pixels wide, with labels readable at that size."""
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    labels, scores = _score_labels(normal, anomalous)
    lo, hi = np.quantile(scores, [0.0, 0.99])
    thresholds = np.linspace(hi, lo, frames)
    figure, (left, right) = plt.subplots(1, 2, figsize=figsize, dpi=dpi, width_ratios=[1.6, 1],
                                         layout="constrained")
    plot_score_histograms(normal, anomalous, ax=left, xlabel=xlabel)
    plot_roc({"detector": (normal, anomalous)}, ax=right)
    right.get_legend().remove()
    line = left.axvline(thresholds[0], color="black", linewidth=1.5)
    shade = [left.axvspan(thresholds[0], left.get_xlim()[1], color="0.85", zorder=0)]
    point, = right.plot([0], [0], "o", color="black", markersize=7, zorder=5)
    title = figure.suptitle("", fontsize="medium")

    def draw(i: int):
        tau = float(thresholds[i])
        counts = _confusion(labels, scores, tau)
        line.set_xdata([tau, tau])
        shade[0].remove()
        shade[0] = left.axvspan(tau, left.get_xlim()[1], color="0.85", zorder=0)
        point.set_data([counts.false_alarm_rate], [counts.recall])
        title.set_text(threshold_summary(normal, anomalous, tau))
        return line, point, title

    draw(0)
    # lay the figure out once: redoing the constrained layout for every frame doubles the cost
    figure.canvas.draw()
    figure.set_layout_engine("none")
    animation = FuncAnimation(figure, draw, frames=frames, interval=interval, blit=False)
    plt.close(figure)
    return animation


def plot_ranked_images(images, scores, *, n: int = 8, axes: Sequence[Axes] | None = None,
                       vmax: float = 16.0, score_name: str = "score") -> Figure:
    """The ``n`` inputs with the lowest scores (top row, the most typical) and the ``n`` with
    the highest (bottom row, the most anomalous), each captioned with its score."""
    images = _numpy(images).reshape(len(_numpy(scores)), -1)
    scores = _numpy(scores)
    side = int(round(np.sqrt(images.shape[1])))
    if side * side != images.shape[1]:
        raise ValueError(f"plot_ranked_images: expected square images, got {images.shape[1]} pixels")
    n = min(n, len(scores))
    order = np.argsort(scores)
    if axes is None:
        axes = plt.subplots(2, n, figsize=(1.1 * n, 3.0), layout="constrained")[1]
    axes = np.asarray(axes).reshape(2, n)
    for row, (picked, name) in enumerate(((order[:n], "lowest"), (order[::-1][:n], "highest"))):
        for ax, k in zip(axes[row], picked):
            ax.imshow(images[k].reshape(side, side), cmap="gray_r", vmin=0, vmax=vmax,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            ax.set_title(f"{scores[k]:.2f}", fontsize="small")
        axes[row, 0].set_ylabel(f"{name}\n{score_name}", fontsize="small")
    return axes[0, 0].figure


def plot_posteriors(panels: dict, xlim: tuple[float, float], ylim: tuple[float, float], *,
                    resolution: int = 150, axes: Sequence[Axes] | None = None,
                    dtype: torch.dtype | None = None, log_scale: bool = False) -> Figure:
    """Densities of a two-dimensional latent side by side on one colour scale, one panel
    per entry ``title: log_density`` (points ``(n, 2)`` to ``(n,)``): typically the true
    posterior, normalised, beside approximations ``q(z|x)``. No grid lines: they would
    cover the density the colour shows. With ``log_scale`` the colours span three decades
    below the highest density, so a spread-out density stays visible beside a peaked one."""
    if axes is None:
        aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
        axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels) + 0.8,
                                                     min(3.3 * aspect, 4.0) + 0.8),
                            layout="constrained")[1]
    axes = np.atleast_1d(axes)
    grids = [log_density_on_grid(f, xlim, ylim, resolution, dtype) for f in panels.values()]
    gx, gy = grids[0][:2]
    densities = [np.exp(values.cpu().numpy().astype(float)) for *_, values in grids]
    top = max(d.max() for d in densities)
    norm = colors.LogNorm(top / 1e3, top, clip=True) if log_scale else colors.Normalize(0, top)
    for ax, title, density in zip(axes, panels, densities):
        # zeros (underflow) would be masked on a log scale and leave holes: show them at the floor
        shown = np.maximum(density, norm.vmin) if log_scale else density
        mesh = ax.pcolormesh(gx, gy, shown, cmap="viridis", norm=norm, shading="auto")
        ax.grid(False)
        ax.set_aspect("equal")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel("$z_1$")
        ax.set_title(title, fontsize="medium")
    axes[0].set_ylabel("$z_2$")
    axes[0].figure.colorbar(mesh, ax=list(axes), shrink=0.9,
                            label="density (log scale)" if log_scale else "density")
    return axes[0].figure


def plot_completions(image, observed, completions, *, axes: Sequence[Axes] | None = None,
                     vmax: float = 16.0) -> Figure:
    """An inverse problem on an image: the whole image, the part that is observed (hidden
    pixels in pink) and candidate completions (observed pixels kept, the rest filled in)."""
    image, mask = _numpy(image), _numpy(observed).astype(bool)
    completions = _numpy(completions).reshape(-1, image.size)
    side = int(round(np.sqrt(image.size)))
    n = len(completions)
    if axes is None:
        axes = plt.subplots(1, n + 2, figsize=(1.15 * (n + 2), 1.7), layout="constrained")[1]
    hidden = plt.get_cmap("gray_r").with_extremes(bad="pink")
    shown = [(image, "digit"), (np.where(mask, image, np.nan), "observed")]
    shown += [(c, f"fill {k + 1}") for k, c in enumerate(completions)]
    for ax, (values, title) in zip(axes, shown):
        ax.imshow(np.ma.masked_invalid(values.reshape(side, side)), cmap=hidden, vmin=0,
                  vmax=vmax, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize="small")
    return axes[0].figure

"""Lecture 12: applications."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from ..plotting import plot_completions, plot_posteriors, plot_threshold
from .common import FigureExplorer

__all__ = ["observed_rows_explorer", "threshold_explorer"]


def threshold_explorer(normal_scores, anomalous_scores, threshold: float | None = None, *,
                       xlabel: str = "anomaly score") -> FigureExplorer:
    """A slider for the threshold ``τ`` of an anomaly detector: the score histograms with
    ``τ`` and the flagged side, the ROC curve with the point ``τ`` picks, and the confusion
    counts, precision and recall in the title. Starts at the 95th percentile of the normal
    scores (5 % false alarms) unless ``threshold`` is given."""
    normal = np.asarray(normal_scores, dtype=float).ravel()
    anomalous = np.asarray(anomalous_scores, dtype=float).ravel()
    both = np.r_[normal, anomalous]
    low, high = float(both.min()), float(np.quantile(both, 0.99))
    start = float(np.quantile(normal, 0.95)) if threshold is None else float(threshold)
    step = round((high - low) / 200, 4) or 0.01
    controls = {"threshold": widgets.FloatSlider(
        value=min(max(start, low), high), min=low, max=high, step=step, description="τ",
        continuous_update=False, readout_format=".2f",
        layout=widgets.Layout(width="500px"))}

    def draw(figure: Figure, threshold: float) -> None:
        axes = figure.subplots(1, 2, width_ratios=[1.6, 1])
        plot_threshold(normal, anomalous, threshold, axes=axes, xlabel=xlabel)

    return FigureExplorer(controls, draw, figsize=(10.0, 3.9))


def observed_rows_explorer(vae, image, rows: int = 3, *, lim: float = 6.0,
                           resolution: int = 120, completions: int = 6,
                           seed: int = 0) -> FigureExplorer:
    """An inverse problem with a trained VAE (two-dimensional latent): observe only the top
    ``rows`` rows of ``image`` (a slider) and see the posterior ``p(z | x_observed)`` on a
    grid, with completions: draws ``z`` from it, decoded to ``E[x|z]`` in the hidden rows."""
    from ..grid_posterior import posterior_on_grid
    parameter = next(vae.parameters())
    image = torch.as_tensor(image).reshape(1, -1).to(parameter)
    side = int(round(image.shape[1] ** 0.5))
    controls = {"rows": widgets.IntSlider(value=rows, min=0, max=side, description="rows seen",
                                          continuous_update=False)}

    def draw(figure: Figure, rows: int) -> None:
        observed = (torch.arange(image.shape[1], device=image.device) < rows * side).to(image)
        truth = posterior_on_grid(lambda z: vae.log_joint(image, z, observed), lim, resolution,
                                  image.dtype, image.device)
        z = truth.sample(completions, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            filled = torch.where(observed.bool(), image, vae.decode_mean(z))
        left, right = figure.subfigures(1, 2, width_ratios=[1.25, 1])
        ax = left.subplots()
        title = f"p(z | top {rows} rows)\nlog p(observed) = {truth.log_evidence:.1f}"
        plot_posteriors({title: lambda p: vae.log_joint(image, p, observed) - truth.log_evidence},
                        (-lim, lim), (-lim, lim), resolution=resolution, axes=[ax],
                        dtype=image.dtype)
        ax.plot(z[:, 0], z[:, 1], "x", color="white", markersize=6, label="draws of z")
        ax.legend(fontsize="small", loc="lower right")
        columns = (completions + 3) // 2
        axes = right.subplots(2, columns).ravel()
        plot_completions(image, observed, filled, axes=axes)
        for extra in axes[completions + 2:]:
            extra.set_axis_off()
    return FigureExplorer(controls, draw, figsize=(9.5, 4.2))

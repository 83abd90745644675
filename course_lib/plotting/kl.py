"""Lecture 08: forward against reverse KL."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..model import NormalizingFlow
from ..sampling import effective_sample_size
from .common import _axes, log_density_on_grid, model_device, model_dtype
from .composition import log_mass_on_window

__all__ = ["MIN_ANIMATION_WIDTH", "SampleSnapshots", "animate_snapshots", "plot_gaussian_entropy",
           "plot_importance_weights", "plot_target_and_fits"]

#: the narrowest an animation may render, in pixels, so its labels stay readable in a static view
MIN_ANIMATION_WIDTH = 640


class SampleSnapshots:
    """A ``fit`` callback that records where a model sends fixed latents while it trains.

    ``snapshots = SampleSnapshots(model, z, every=10)`` stores ``x = f(z)`` at once (step 0)
    and after every ``every``-th step of ``fit(model, ..., callback=snapshots)``;
    ``snapshots.steps`` lists the steps and ``snapshots.samples`` the points (NumPy arrays of
    shape ``(n, 2)``). The same ``z`` at every step, so one can follow each point.
    """

    def __init__(self, model: NormalizingFlow, z: torch.Tensor, every: int = 10):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.model, self.z, self.every = model, z, every
        self.steps: list[int] = []
        self.samples: list[np.ndarray] = []
        self.record(0)

    def record(self, step: int) -> None:
        with torch.no_grad():
            x = self.model.flow(self.z.to(model_device(self.model), model_dtype(self.model)))[0]
        self.steps.append(step)
        self.samples.append(x.cpu().numpy().astype(float))

    def __call__(self, step: int, loss: float) -> None:
        if step % self.every == 0:
            self.record(step)


def _density_on_grid(log_prob: Callable, xlim, ylim, resolution: int, dtype: torch.dtype):
    gx, gy, values = log_density_on_grid(log_prob, xlim, ylim, resolution, dtype)
    return gx, gy, values.to(torch.float64).exp().cpu().numpy()


def plot_target_and_fits(log_target: Callable, fits: dict, xlim: tuple[float, float],
                         ylim: tuple[float, float], *, target_samples=None, model_samples: int = 0,
                         resolution: int = 120, axes: Sequence[Axes] | None = None,
                         target_title: str = "target $p$ (normalised on the window)",
                         seed: int = 0) -> Figure:
    """The target and the density ``q = exp(model.log_prob)`` of each fitted model in a row,
    on one window and **one colour scale**, so a spread-out fit looks paler than a sharp one.

    Args:
        log_target: ``log p~``, possibly unnormalised (normalised numerically on the window).
        fits: title -> model.
        target_samples: optional exact samples of the target, drawn on its panel.
        model_samples: draw this many samples of each model on its panel (seeded by ``seed``,
            without touching the global random state).
    """
    if axes is None:
        axes = plt.subplots(1, 1 + len(fits), figsize=(3.3 * (1 + len(fits)) + 0.8, 3.4),
                            layout="constrained")[1]
    dtypes = [model_dtype(model) for model in fits.values()]
    dtype = dtypes[0] if dtypes else torch.get_default_dtype()
    log_z = log_mass_on_window(log_target, xlim, ylim, resolution, dtype)
    panels = [(target_title, lambda x: log_target(x) - log_z, target_samples)]
    for title, model in fits.items():
        points = None
        if model_samples:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                points = model.sample(model_samples).numpy()
        panels.append((title, model.log_prob, points))
    grids = [_density_on_grid(log_prob, xlim, ylim, resolution, dtype) for _, log_prob, _ in panels]
    top = max(float(np.nanmax(density)) for *_, density in grids)
    for ax, (title, _, points), (gx, gy, density) in zip(axes, panels, grids):
        mesh = ax.pcolormesh(gx, gy, density, cmap="viridis", shading="auto", vmin=0, vmax=top)
        if points is not None:
            points = np.asarray(points, dtype=float)
            ax.scatter(points[:, 0], points[:, 1], s=1.5, color="white", alpha=0.45, linewidths=0)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.grid(False)
        ax.set_xlabel("$x_1$")
        ax.set_title(title, fontsize="medium")
    axes[0].set_ylabel("$x_2$")
    axes[0].figure.colorbar(mesh, ax=list(axes), label="density", shrink=0.9)
    return axes[0].figure


def animate_snapshots(snapshots: dict, log_target: Callable, xlim: tuple[float, float],
                      ylim: tuple[float, float], *, panel_size: float = 3.6, dpi: int = 100,
                      interval: int = 200) -> FuncAnimation:
    """Models learning side by side: the samples recorded by each :class:`SampleSnapshots`
    (title -> snapshots, all recorded at the same steps) move over the contour lines of the
    target, one frame per recorded step. Each point keeps the colour of its latent's angle.
    The frames are at least ``MIN_ANIMATION_WIDTH`` pixels wide (``dpi`` is raised when
    ``panel_size`` times the number of panels would be narrower). The figure is closed once
    the animation is built."""
    names = list(snapshots)
    steps = snapshots[names[0]].steps
    if any(snapshots[name].steps != steps for name in names):
        raise ValueError("animate_snapshots: expected snapshots recorded at the same steps, got "
                         + "; ".join(f"{name}: {snapshots[name].steps}" for name in names))
    gx, gy, density = _density_on_grid(log_target, xlim, ylim, 100, torch.float64)
    dpi = max(dpi, math.ceil(MIN_ANIMATION_WIDTH / (panel_size * len(names))))
    figure, axes = plt.subplots(1, len(names), figsize=(panel_size * len(names), panel_size),
                                dpi=dpi, layout="constrained", squeeze=False)
    dots, titles = [], []
    for ax, name in zip(axes[0], names):
        z = snapshots[name].z.numpy()
        ax.contour(gx, gy, density, levels=np.linspace(0, density.max(), 6)[1:], colors="0.6",
                   linewidths=0.8)
        first = snapshots[name].samples[0]
        dots.append(ax.scatter(first[:, 0], first[:, 1], c=np.arctan2(z[:, 1], z[:, 0]),
                               cmap="hsv", s=4, linewidths=0, alpha=0.8))
        titles.append(ax.set_title(""))
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
    axes[0][0].set_ylabel("$x_2$")

    def draw(i: int):
        for dot, title, name in zip(dots, titles, names):
            dot.set_offsets(snapshots[name].samples[i])
            title.set_text(f"{name}: step {steps[i]}")
        return (*dots, *titles)

    # lay the figure out once: redoing the layout for every frame triples the rendering time
    draw(0)
    figure.canvas.draw()
    figure.set_layout_engine("none")

    animation = FuncAnimation(figure, draw, frames=len(steps), interval=interval, blit=False)
    plt.close(figure)
    return animation


def plot_importance_weights(log_weights: dict, *, ax: Axes | None = None,
                            bins: int = 50) -> Figure:
    """Histograms of the normalised importance weights ``n w_i / sum_j w_j`` (log scale) of
    several samplers (label -> log-weights of shape ``(n,)``), each labelled with its
    ``ESS / n``. A perfect sampler has every weight equal to 1 (the dashed line). Weights
    below ``1e-8`` are counted in the leftmost bin."""
    ax = _axes(ax, figsize=(6.0, 3.4))
    scaled = {}
    for label, log_w in log_weights.items():
        log_w = torch.as_tensor(log_w, dtype=torch.float64)
        ess = float(effective_sample_size(log_w))
        rel = (log_w - torch.logsumexp(log_w, 0) + np.log(len(log_w))) / np.log(10)
        scaled[f"{label}: ESS/n = {ess / len(log_w):.2f}"] = rel[torch.isfinite(rel)].numpy()
    low = max(min(v.min() for v in scaled.values()), -8.0)
    high = max(v.max() for v in scaled.values())
    edges = np.linspace(low, high + 1e-9, bins + 1)
    for label, values in scaled.items():
        ax.hist(np.clip(values, low, None), bins=edges, alpha=0.55, label=label)
    ax.axvline(0.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(r"$\log_{10}(n\, w_i / \sum_j w_j)$")
    ax.set_ylabel("number of samples")
    ax.legend(fontsize="small")
    return ax.figure


def plot_gaussian_entropy(stds: Sequence[float] = (1.0, 0.242, 0.1), *, ax: Axes | None = None,
                          lim: float = 3.0) -> Figure:
    """Densities of ``N(0, sigma^2)`` for several ``sigma``, each labelled with its entropy
    ``H = log(2 pi e sigma^2) / 2``, the smallest expected NLL any model can reach on its
    samples. Where a density passes 1 (the dashed line) its log is positive, and once
    ``sigma < 1 / sqrt(2 pi e) = 0.242`` the entropy is negative."""
    ax = _axes(ax, figsize=(6.0, 3.4))
    grid = np.linspace(-lim, lim, 600)
    for std in stds:
        entropy = 0.5 * np.log(2 * np.pi * np.e * std ** 2)
        density = np.exp(-0.5 * (grid / std) ** 2) / (std * np.sqrt(2 * np.pi))
        ax.plot(grid, density, linewidth=2, label=f"$\\sigma$ = {std:g}: H = {entropy:.3f} nats")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="density 1 (log p = 0)")
    ax.set_title("a density can exceed 1; there log p > 0")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.legend(fontsize="small", loc="upper right")
    return ax.figure

"""Lecture 03: composing flows."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .change_of_variables import plot_density_2d
from .common import log_density_on_grid, model_dtype

__all__ = ["animate_layers", "flow_stages", "log_mass_on_window", "plot_model_and_target"]


def flow_stages(flow: torch.nn.Module, z: torch.Tensor) -> list[torch.Tensor]:
    """The points ``z_0 = z, z_1 = f_1(z_0), ..., z_K = f_K(z_{K-1}) = x`` of a stack.

    ``flow`` is a ``NormalizingFlow`` or a ``Compose`` (its layers in order from latent
    to data) or a single flow (one stage). Computed without gradients.
    """
    layers = flow.flows if hasattr(flow, "flows") else [flow]
    stages = [z]
    with torch.no_grad():
        for layer in layers:
            stages.append(layer(stages[-1])[0])
    return stages


def _window(points: np.ndarray, quantile: float = 0.995, margin: float = 0.1):
    """A square window around the central ``quantile`` of the points, centred on them."""
    lo = np.quantile(points.reshape(-1, 2), 1 - quantile, axis=0)
    hi = np.quantile(points.reshape(-1, 2), quantile, axis=0)
    centre, half = (lo + hi) / 2, (1 + margin) * (hi - lo).max() / 2
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def animate_layers(flow: torch.nn.Module, z: torch.Tensor, *, frames_per_layer: int = 5,
                   xlim: tuple[float, float] | None = None,
                   ylim: tuple[float, float] | None = None, figsize=(6.6, 6.6), dpi: int = 100,
                   interval: int = 120, ax: Axes | None = None) -> FuncAnimation:
    """Samples of the base passing through a stack, one layer after the other.

    Between ``z_{k-1}`` and ``z_k = f_k(z_{k-1})`` the points move along straight lines
    in ``frames_per_layer`` steps; each point keeps the colour of its angle in the base,
    so one can follow where a region of the Gaussian ends up. The window (the central
    99.5 % of all stages unless ``xlim``, ``ylim`` are given) stays fixed. The figure is
    closed once the animation is built, so a notebook shows only the animation. Given
    ``ax``, the points move in that axes and the rest of its figure (a density beside it,
    data drawn underneath) stays as it is in every frame.
    """
    if not isinstance(frames_per_layer, int) or frames_per_layer < 1:
        raise ValueError(f"frames_per_layer must be a positive integer, got {frames_per_layer!r}")
    stages = np.stack([s.numpy().astype(float) for s in flow_stages(flow, z)])
    n_layers = len(stages) - 1
    if xlim is None or ylim is None:
        auto_x, auto_y = _window(stages)
        xlim, ylim = xlim or auto_x, ylim or auto_y
    angle = np.arctan2(stages[0][:, 1], stages[0][:, 0])
    if ax is None:
        figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    else:
        figure = ax.figure
    dots = ax.scatter(stages[0][:, 0], stages[0][:, 1], c=angle, cmap="hsv", s=4,
                      linewidths=0, alpha=0.8)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("first coordinate")
    ax.set_ylabel("second coordinate")
    title = ax.set_title("")

    def draw(i: int):
        k, step = divmod(i, frames_per_layer)
        if k >= n_layers:
            k, t = n_layers - 1, 1.0
        else:
            t = step / frames_per_layer
        points = (1 - t) * stages[k] + t * stages[k + 1]
        dots.set_offsets(points)
        done = k + (t == 1.0)
        if t not in (0.0, 1.0):
            title.set_text(f"layer {k + 1} of {n_layers} acting")
        elif done == 0:
            title.set_text("$z_0$: samples of the base")
        else:
            title.set_text(f"$z_{{{done}}}$: after layer {done} of {n_layers}")
        return dots, title

    animation = FuncAnimation(figure, draw, frames=n_layers * frames_per_layer + 1,
                              interval=interval, blit=False)
    plt.close(figure)
    return animation


def log_mass_on_window(log_density: Callable, xlim: tuple[float, float],
                       ylim: tuple[float, float], resolution: int = 200,
                       dtype: torch.dtype | None = None) -> float:
    """``log`` of the Riemann sum of ``exp(log_density)`` over the window, on the same grid
    as :func:`plot_density_2d`: about 0 for a density whose mass lies inside the window,
    and the log-normaliser ``log Z`` of a density known up to a constant."""
    gx, gy, values = log_density_on_grid(log_density, xlim, ylim, resolution, dtype)
    cell = (gx[0, 1] - gx[0, 0]) * (gy[1, 0] - gy[0, 0])
    return float(torch.logsumexp(values.flatten(), 0)) + float(np.log(cell))


def plot_model_and_target(model: torch.nn.Module, xlim: tuple[float, float],
                          ylim: tuple[float, float], *, log_target: Callable | None = None,
                          samples=None, resolution: int = 150,
                          axes: Sequence[Axes] | None = None,
                          titles: tuple[str, str] | None = None) -> Figure:
    """What a model should match (left) beside the model's density ``exp(model.log_prob)``
    (right), on the same window.

    Give exactly one of ``log_target`` (a log-density, possibly unnormalised: it is
    normalised numerically on the window so both colour scales mean the same) or
    ``samples`` of the data (shown as a normalised 2D histogram).
    """
    if (log_target is None) == (samples is None):
        raise ValueError("plot_model_and_target: give exactly one of log_target (a "
                         "log-density) or samples (data), got "
                         f"{'both' if log_target is not None else 'neither'}")
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9.6, 3.8), layout="constrained")[1]
    dtype = model_dtype(model)
    if log_target is not None:
        log_z = log_mass_on_window(log_target, xlim, ylim, resolution, dtype)
        left = titles[0] if titles else "target (normalised on the window)"
        plot_density_2d(lambda x: log_target(x) - log_z, xlim, ylim, ax=axes[0],
                        resolution=resolution, dtype=dtype, title=left)
    else:
        points = np.asarray(samples, dtype=float)
        *_, image = axes[0].hist2d(points[:, 0], points[:, 1], bins=resolution // 2,
                                   range=[xlim, ylim], density=True, cmap="viridis")
        axes[0].figure.colorbar(image, ax=axes[0], label="density")
        axes[0].set_aspect("equal")
        axes[0].set_xlabel("$x_1$")
        axes[0].set_ylabel("$x_2$")
        axes[0].set_title(titles[0] if titles else f"data ({len(points)} samples)")
    plot_density_2d(model.log_prob, xlim, ylim, ax=axes[1], resolution=resolution, dtype=dtype,
                    title=titles[1] if titles else "model density $p_X(x)$")
    # one colour scale for both panels, so equal colours mean equal densities
    meshes = [ax.collections[0] for ax in axes[:2]]
    top = max(float(np.nanmax(np.ma.filled(m.get_array(), np.nan))) for m in meshes)
    for mesh in meshes:
        mesh.set_clim(0.0, top)
    return axes[0].figure

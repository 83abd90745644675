"""Lecture 01: change of variables in 1D; Densities in the plane (from lecture 01 on)."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .common import DENSITY_STYLE, SAMPLE_STYLE, _axes, log_density_on_grid

__all__ = ["plot_base_and_pushed", "plot_density_2d", "plot_equal_mass", "plot_pushed_density"]


def plot_pushed_density(samples, grid, density, *, ax: Axes | None = None, bins: int = 60,
                        label: str = r"$p_X(x)$ (formula)", sample_label: str = "samples of $x$",
                        title: str | None = None) -> Figure:
    """A histogram of pushed samples against the density the formula predicts.

    The histogram is normalised by the total number of samples, not by the number that
    fall inside ``grid``'s range, so its bars estimate ``p_X`` even when part of the
    mass lies outside the window.

    Args:
        samples: samples of ``x``, any shape (flattened).
        grid: increasing points where ``density`` was evaluated; also the window.
        density: ``p_X`` at ``grid``.
    """
    ax = _axes(ax)
    samples = np.asarray(samples, dtype=float).ravel()
    grid, density = np.asarray(grid, dtype=float), np.asarray(density, dtype=float)
    edges = np.linspace(grid[0], grid[-1], bins + 1)
    counts, _ = np.histogram(samples, bins=edges)
    ax.stairs(counts / (samples.size * np.diff(edges)), edges, fill=True, label=sample_label,
              **SAMPLE_STYLE)
    ax.plot(grid, density, label=label, **DENSITY_STYLE)
    ax.set_xlim(grid[0], grid[-1])
    # room above the tallest bar or curve for the legend, so it never covers the histogram;
    # the bars' baseline keeps the bottom at 0 until something negative is drawn
    ax.margins(y=0.3)
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return ax.figure


def plot_base_and_pushed(z_grid, base_density, x_grid, pushed_density, *, z_samples=None,
                         x_samples=None, axes: Sequence[Axes] | None = None, bins: int = 60,
                         titles: tuple[str, str] = (r"base $p_Z(z)$", r"pushed $p_X(x)$"),
                         ) -> Figure:
    """Two panels side by side: the base density of ``z`` and the density of ``x = f(z)``,
    each with a histogram of samples when they are given."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")[1]
    for ax, grid, density, samples, name in ((axes[0], z_grid, base_density, z_samples, "z"),
                                             (axes[1], x_grid, pushed_density, x_samples, "x")):
        if samples is None:
            ax.plot(grid, density, **DENSITY_STYLE)
            ax.set_xlim(grid[0], grid[-1])
            ax.set_ylabel("density")
        else:
            plot_pushed_density(samples, grid, density, ax=ax, bins=bins,
                                label="formula", sample_label=f"samples of ${name}$")
        ax.set_xlabel(f"${name}$")
    axes[0].set_title(titles[0])
    axes[1].set_title(titles[1])
    return axes[0].figure


def _mass(density: Callable, lo: float, hi: float, n: int = 4001) -> float:
    grid = np.linspace(lo, hi, n)
    return float(np.trapezoid(density(grid), grid))


def plot_equal_mass(f: Callable, p_z: Callable, p_x: Callable, z_interval: tuple[float, float], *,
                    z_range: tuple[float, float] = (-4.0, 4.0),
                    x_range: tuple[float, float] | None = None,
                    axes: Sequence[Axes] | None = None) -> Figure:
    """``p_Z(z) dz = p_X(x) dx``: an interval of ``z`` and its image under ``f``, shaded.

    The two shaded areas are the same probability, although the intervals have
    different lengths and the curves different heights; each panel's title states its
    area (by the trapezoidal rule).

    Args:
        f: the monotone map ``x = f(z)`` on NumPy arrays.
        p_z, p_x: the two densities on NumPy arrays.
        z_interval: the interval ``[z0, z1]`` to shade.
        z_range, x_range: the windows; ``x_range`` defaults to the image of ``z_range``.
    """
    z0, z1 = sorted(z_interval)
    x0, x1 = sorted((float(f(np.array(z0))), float(f(np.array(z1)))))
    if x_range is None:
        x_range = tuple(sorted(float(f(np.array(v))) for v in z_range))
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")[1]
    panels = ((axes[0], p_z, z_range, (z0, z1), "z", "tab:blue"),
              (axes[1], p_x, x_range, (x0, x1), "x", "tab:orange"))
    for ax, density, window, (lo, hi), name, color in panels:
        grid = np.linspace(*window, 400)
        ax.plot(grid, density(grid), **DENSITY_STYLE)
        shaded = np.linspace(lo, hi, 200)
        ax.fill_between(shaded, density(shaded), color=color, alpha=0.5)
        ax.set_xlim(*window)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(f"${name}$")
        ax.set_title(f"$\\int_{{{lo:.3g}}}^{{{hi:.3g}}} p_{name.upper()}\\,d{name}$"
                     f" = {_mass(density, lo, hi):.4f}")
    return axes[0].figure


def plot_density_2d(log_prob: Callable[[torch.Tensor], torch.Tensor],
                    xlim: tuple[float, float], ylim: tuple[float, float], *, samples=None,
                    resolution: int = 200, ax: Axes | None = None, dtype: torch.dtype | None = None,
                    title: str | None = None, cmap: str = "viridis") -> Figure:
    """A density in the plane as a colour map, with samples on top when given.

    Args:
        log_prob: maps points of shape ``(n, 2)`` to ``log p(x)`` of shape ``(n,)``
            (``-inf`` outside the support is fine).
        xlim, ylim: the window.
        samples: optional points of shape ``(n, 2)``.
        dtype: dtype of the grid handed to ``log_prob`` (default: torch's default).
    """
    ax = _axes(ax, figsize=(4.6, 3.8))
    gx, gy, values = log_density_on_grid(log_prob, xlim, ylim, resolution, dtype)
    density = values.exp().cpu().numpy()
    mesh = ax.pcolormesh(gx, gy, density, cmap=cmap, shading="auto")
    ax.figure.colorbar(mesh, ax=ax, label="density")
    if samples is not None:
        samples = np.asarray(samples, dtype=float)
        ax.scatter(samples[:, 0], samples[:, 1], s=2, color="white", alpha=0.6, linewidths=0)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax.figure



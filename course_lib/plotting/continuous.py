"""Lecture 10: continuous normalizing flows."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, patheffects
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..bench.memory import backprop_memory, saved_tensor_bytes
from ..jacobian import hutchinson_variance_theory
from .common import _axes
from .composition import _window

__all__ = ["HUTCHINSON_COLOURS", "TRACKED_COLOURS", "animate_trajectories",
           "plot_backprop_memory", "plot_hutchinson_variance", "plot_log_density_paths",
           "plot_trajectories",
           # computed elsewhere, offered here too because lecture 10 imports them from plotting
           "backprop_memory", "hutchinson_variance_theory", "saved_tensor_bytes"]


HUTCHINSON_COLOURS = {"gaussian": "tab:blue", "rademacher": "tab:orange"}
#: the points whose paths are followed, the same colour in every panel
# eight colours far from each other and from viridis (the colour of the points), each path drawn
# over a white edge so that it stands out on dark and bright points alike
TRACKED_COLOURS = ["#e6194b", "#f58231", "#ff69b4", "#000000", "#911eb4", "#8b4513",
                   "#00bfff", "#ffe119"]


def plot_backprop_memory(step_counts: Sequence[int], memory: dict[str, Sequence[int]], *,
                         ax: Axes | None = None) -> Figure:
    """Memory held for the backward pass against the number of solver steps (from
    :func:`backprop_memory`), on log-log axes: a line of slope 1 for direct backpropagation
    through the solver, a flat line for the adjoint method."""
    ax = _axes(ax, figsize=(5.6, 3.6))
    styles = {"direct": ("tab:red", "o", "backprop through the solver"),
              "adjoint": ("tab:green", "s", "adjoint method")}
    for name, values in memory.items():
        colour, marker, label = styles.get(name, ("black", "^", name))
        ax.plot(step_counts, np.asarray(values) / 1e6, marker=marker, color=colour, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(step_counts), [str(n) for n in step_counts])
    ax.set_xlabel("solver steps (rk4) from $t = 1$ to $t = 0$")
    ax.set_ylabel("held for backward (MB)")
    ax.set_title("memory of one gradient of the NLL")
    ax.legend(fontsize="small")
    return ax.figure


def plot_hutchinson_variance(rows: Sequence[Sequence], *, ax: Axes | None = None,
                             highlight: tuple[str, int] | None = None) -> Figure:
    """Variance of Hutchinson's estimate against the number of probes ``k``, log-log: measured
    (markers) and the theory ``2 |S|_F^2 / k`` (Gaussian) or ``2 (|S|_F^2 - sum_i S_ii^2) / k``
    (Rademacher) as lines of slope -1.

    Args:
        rows: ``[noise, k, |mean - exact|, variance, theory]`` per row, as returned by
            ``course_lib.bench.continuous.hutchinson_variance``.
        highlight: ``(noise, k)`` to mark with a ring on its theory line.
    """
    ax = _axes(ax, figsize=(5.2, 3.6))
    k_all = np.array([row[1] for row in rows], dtype=float)
    k_line = np.geomspace(k_all.min(), k_all.max(), 50)
    for noise in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == noise]
        k = np.array([row[1] for row in mine], dtype=float)
        measured = np.array([row[3] for row in mine], dtype=float)
        per_probe = float(np.mean([row[4] * row[1] for row in mine]))  # theory times k
        colour = HUTCHINSON_COLOURS.get(noise, "black")
        ax.plot(k_line, per_probe / k_line, color=colour, linewidth=1.5, alpha=0.7,
                label=f"{noise}: theory")
        ax.plot(k, measured, "o", color=colour, label=f"{noise}: measured")
        if highlight is not None and highlight[0] == noise:
            ax.plot([highlight[1]], [per_probe / highlight[1]], "o", markersize=13,
                    markerfacecolor="none", markeredgecolor="black", markeredgewidth=1.5)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sorted(set(int(v) for v in k_all))
    ax.set_xticks(ticks, [str(v) for v in ticks])
    ax.set_xlabel("probes $k$ (vector-Jacobian products)")
    ax.set_ylabel("variance of the estimate")
    ax.set_title(r"Hutchinson: variance $\propto 1/k$")
    ax.legend(fontsize="small")
    return ax.figure


def _trajectory_arrays(paths, log_p) -> tuple[np.ndarray, np.ndarray]:
    paths = np.asarray(paths, dtype=float)
    log_p = np.asarray(log_p, dtype=float)
    if paths.ndim != 3 or paths.shape[2] != 2 or log_p.shape != paths.shape[:2]:
        raise ValueError(f"expected paths of shape (times, n, 2) and log_p of shape (times, n), "
                         f"got {paths.shape} and {log_p.shape}")
    return paths, log_p


def _log_p_norm(log_p: np.ndarray) -> colors.Normalize:
    return colors.Normalize(*np.quantile(log_p, [0.01, 0.99]))


def plot_trajectories(paths, log_p, times: Sequence[float], index: int, *,
                      ax: Axes | None = None, tracked: int = 8, data=None,
                      colorbar: bool = True, norm: colors.Normalize | None = None) -> Figure:
    """The points ``z_t`` of a CNF at ``t = times[index]``, coloured by ``log p_t(z_t)``, with
    the paths of the first ``tracked`` points from ``t = 0`` up to ``t``.

    Args:
        paths, log_p: ``z_t`` of shape ``(len(times), n, 2)`` and ``log p_t(z_t)`` of shape
            ``(len(times), n)``, as returned by ``continuous.density_paths``.
        data: optional data samples, drawn in light grey underneath: where the points
            should arrive at ``t = 1``.
        norm: the colour scale of ``log p``; by default the 1% to 99% quantiles of ``log_p``
            over all times (pass one norm to several panels to compare them on one scale).

    The window and the colour scale are the same for every ``index``, so that moving along
    the times changes the points only.
    """
    paths, log_p = _trajectory_arrays(paths, log_p)
    ax = _axes(ax, figsize=(4.8, 4.0))
    if data is not None:
        data = np.asarray(data, dtype=float)
        ax.scatter(data[:, 0], data[:, 1], s=2, color="0.85", linewidths=0, zorder=0)
    dots = ax.scatter(paths[index, :, 0], paths[index, :, 1], c=log_p[index], s=6,
                      cmap="viridis", norm=_log_p_norm(log_p) if norm is None else norm,
                      linewidths=0)
    for k, path in enumerate(paths[:index + 1, :tracked].transpose(1, 0, 2)):
        colour = TRACKED_COLOURS[k % len(TRACKED_COLOURS)]
        ax.plot(path[:, 0], path[:, 1], color=colour, linewidth=1.6,
                path_effects=[patheffects.Stroke(linewidth=3.2, foreground="white"), patheffects.Normal()])
        ax.plot(path[-1:, 0], path[-1:, 1], "o", color=colour, markersize=5,
                markeredgecolor="black", markeredgewidth=0.6)
    if colorbar:
        ax.figure.colorbar(dots, ax=ax, label=r"$\log p_t(z_t)$")
    xlim, ylim = _window(paths)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xlabel("first coordinate of $z_t$")
    ax.set_ylabel("second coordinate of $z_t$")
    ax.set_title(f"$t$ = {times[index]:.2f}")
    return ax.figure


def plot_log_density_paths(log_p, times: Sequence[float], index: int | None = None, *,
                           ax: Axes | None = None, tracked: int = 8) -> Figure:
    """``log p_t(z_t)`` against ``t`` along the paths of the first ``tracked`` points (thin), and
    its mean over all points (thick), a Monte Carlo estimate of ``-H(p_t)``, minus the entropy
    of the density at time ``t``. A vertical line marks ``times[index]``."""
    log_p = np.asarray(log_p, dtype=float)
    ax = _axes(ax, figsize=(5.0, 3.6))
    times = np.asarray(times, dtype=float)
    for k in range(min(tracked, log_p.shape[1])):
        ax.plot(times, log_p[:, k], color=TRACKED_COLOURS[k % len(TRACKED_COLOURS)],
                linewidth=1.2)
    ax.plot(times, log_p.mean(axis=1), color="black", linewidth=2.5,
            label=r"mean over all points $\approx -H(p_t)$")
    if index is not None:
        ax.axvline(times[index], color="tab:red", linewidth=1.2)
    ax.set_xlim(times[0], times[-1])
    ax.set_xlabel("$t$")
    ax.set_ylabel(r"$\log p_t(z_t)$")
    ax.set_title("log-density along the paths")
    ax.legend(fontsize="small", loc="lower right")
    return ax.figure


def animate_trajectories(paths, log_p, times: Sequence[float], *, data=None,
                         figsize=(6.4, 5.4), dpi: int = 100, interval: int = 150,
                         hold: int = 4) -> FuncAnimation:
    """Points of a CNF flowing from the base (``t = 0``) to the data (``t = 1``), coloured by
    ``log p_t(z_t)`` on one colour scale, over optional data in light grey; the last frame
    is held a little. The figure is closed once the animation is built."""
    paths, log_p = _trajectory_arrays(paths, log_p)
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    plot_trajectories(paths, log_p, times, 0, ax=ax, tracked=0, data=data)
    dots = ax.collections[-1]
    title = ax.title

    def draw(i: int):
        k = min(i, len(times) - 1)
        dots.set_offsets(paths[k])
        dots.set_array(log_p[k])
        title.set_text(f"$t$ = {times[k]:.2f}")
        return dots, title

    # lay the figure out once: redoing the layout for every frame is slow
    figure.canvas.draw()
    figure.set_layout_engine("none")
    animation = FuncAnimation(figure, draw, frames=len(times) + hold, interval=interval,
                              blit=False)
    plt.close(figure)
    return animation

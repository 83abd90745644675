"""Lecture 04: coupling layers."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..flows import AffineCoupling
from .common import _axes
from .composition import _window, flow_stages

__all__ = ["plot_bounded_log_scale", "plot_flow_stages", "plot_jacobian_matrix"]


def plot_jacobian_matrix(J, *, split: int | None = None, ax: Axes | None = None,
                         title: str | None = None, decimals: int = 2) -> Figure:
    """A Jacobian as a table of coloured cells, ``J[i, j] = dx_i / dz_j`` in row ``i`` and
    column ``j``, with its value written in each cell. Entries that are exactly 0 are left
    white and marked ``0``: the structure that makes a determinant cheap is what the eye
    should find. ``split`` draws the block boundary after the first ``split`` rows and
    columns (between ``z_a`` and ``z_b`` of a coupling layer that copies the first half).

    Args:
        J: a ``(d, d)`` matrix, or a batch of one ``(1, d, d)`` as ``jacobian`` returns it.
    """
    J = np.asarray(J.detach() if isinstance(J, torch.Tensor) else J, dtype=float)
    if J.ndim == 3 and J.shape[0] == 1:
        J = J[0]
    if J.ndim != 2 or J.shape[0] != J.shape[1]:
        raise ValueError(f"plot_jacobian_matrix: expected a square matrix (d, d) or (1, d, d), "
                         f"got shape {J.shape}")
    d = J.shape[0]
    ax = _axes(ax, figsize=(0.9 * d + 1.6, 0.9 * d + 0.8))
    reach = max(float(np.abs(J).max()), 1e-12)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    ax.imshow(np.ma.masked_equal(J, 0.0), cmap=cmap, vmin=-reach, vmax=reach)
    for (i, j), value in np.ndenumerate(J):
        text = "0" if value == 0 else f"{value:.{decimals}f}"
        # dark cells at either end of the colour map need light text
        color = "0.5" if value == 0 else ("white" if abs(value) > 0.6 * reach else "black")
        ax.text(j, i, text, ha="center", va="center", fontsize="small", color=color)
    if split is not None:
        for line in (ax.axhline, ax.axvline):
            line(split - 0.5, color="black", linewidth=1.5)
    ax.set_xticks(range(d), [f"$z_{{{j + 1}}}$" for j in range(d)])
    ax.set_yticks(range(d), [f"$x_{{{i + 1}}}$" for i in range(d)])
    ax.xaxis.tick_top()
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax.figure


def _moved_coordinates(before: np.ndarray, after: np.ndarray) -> list[int]:
    changed = ~np.isclose(after, before, rtol=1e-12, atol=1e-12)
    return [int(i) + 1 for i in np.flatnonzero(changed.any(axis=0))]


def plot_flow_stages(flow: torch.nn.Module, z: torch.Tensor, *,
                     stages: Sequence[int] | None = None, axes: Sequence[Axes] | None = None,
                     xlim: tuple[float, float] | None = None,
                     ylim: tuple[float, float] | None = None) -> Figure:
    """Samples of the base after chosen layers of a stack, side by side (stage 0 is the
    base, stage ``k`` the points after layer ``k``; default: all stages).

    Points keep the colour of their angle in the base, as in :func:`animate_layers`, and
    every panel is titled with the coordinates its layer moved, so one sees a coupling
    layer move only its own half. All panels share one window.
    """
    points = [s.numpy().astype(float) for s in flow_stages(flow, z)]
    stages = list(range(len(points))) if stages is None else list(stages)
    if not stages or any(not 0 <= k < len(points) for k in stages):
        raise ValueError(f"expected stages among 0..{len(points) - 1} (a stack of "
                         f"{len(points) - 1} layer(s)), got {stages}")
    if axes is None:
        axes = plt.subplots(1, len(stages), figsize=(3.2 * len(stages), 3.4),
                            layout="constrained", squeeze=False)[1][0]
    if xlim is None or ylim is None:
        auto_x, auto_y = _window(np.stack([points[k] for k in stages]))
        xlim, ylim = xlim or auto_x, ylim or auto_y
    angle = np.arctan2(points[0][:, 1], points[0][:, 0])
    for ax, k in zip(axes, stages):
        ax.scatter(points[k][:, 0], points[k][:, 1], c=angle, cmap="hsv", s=3, linewidths=0,
                   alpha=0.8)
        if k == 0:
            ax.set_title("$z_0$: samples of the base")
        else:
            moved = _moved_coordinates(points[k - 1], points[k])
            what = ("moved nothing" if not moved else
                    f"moved coordinate{'s' if len(moved) > 1 else ''} "
                    + ", ".join(map(str, moved)))
            ax.set_title(f"after layer {k}: {what}")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xlabel("first coordinate")
    axes[0].set_ylabel("second coordinate")
    return axes[0].figure


def plot_bounded_log_scale(scale_bound: float = 3.0, *,
                           s_raw_range: tuple[float, float] = (-10.0, 10.0),
                           ax: Axes | None = None) -> Figure:
    """The bounded log-scale of ``AffineCoupling``, ``s = B tanh(s_raw / B)``, against the
    unbounded ``s = s_raw``: equal near 0, never beyond ``+-B``, so the scale ``exp(s)``
    stays between ``exp(-B)`` and ``exp(B)``."""
    ax = _axes(ax, figsize=(5.0, 3.4))
    layer = AffineCoupling(2, scale_bound=scale_bound)
    s_raw = torch.linspace(*s_raw_range, 401, dtype=torch.float64)
    with torch.no_grad():
        s = layer.log_scale(s_raw)
    ax.plot(s_raw, s_raw, "--", color="gray", label="unbounded: $s = s_{raw}$")
    ax.plot(s_raw, s, color="tab:blue", linewidth=2,
            label=f"bounded: $s = {scale_bound:g}\\,\\tanh(s_{{raw}}/{scale_bound:g})$")
    for level in (-scale_bound, scale_bound):
        ax.axhline(level, color="tab:red", linestyle=":", linewidth=1)
    ax.set_xlim(*s_raw_range)
    ax.set_ylim(s_raw_range[0] / 2, s_raw_range[1] / 2)
    ax.set_xlabel("network output $s_{raw}$")
    ax.set_ylabel("log-scale $s$")
    ax.set_title(f"scale $e^s$ stays within [{np.exp(-scale_bound):.3f}, "
                 f"{np.exp(scale_bound):.1f}]")
    ax.legend(loc="upper left", fontsize="small")
    return ax.figure

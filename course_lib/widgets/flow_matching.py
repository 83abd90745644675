"""Lecture 11: flow matching."""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib import cm, colors
from matplotlib.figure import Figure

from ..plotting import plot_trajectories
from .common import FigureExplorer

__all__ = ["path_explorer"]


def path_explorer(paths: dict, times: Sequence[float], *, data=None, tracked: int = 8,
                  t: float = 0.0) -> FigureExplorer:
    """A time slider over several sets of precomputed paths side by side, each drawn as in
    :func:`~course_lib.plotting.plot_trajectories` (points coloured by ``log p_t`` on one
    colour scale shared by all panels, with one colour bar; the first ``tracked`` paths traced
    up to ``t``).

    Args:
        paths: title -> ``(z_t, log_p)`` of shapes ``(len(times), n, 2)`` and
            ``(len(times), n)``, e.g. from ``continuous.density_paths``.
        data: optional data samples, drawn in light grey in every panel.

    Moving the slider only picks one of ``times``; nothing is integrated.
    """
    times = [float(v) for v in times]
    for name, (z_t, log_p) in paths.items():
        if len(times) < 2 or len(z_t) != len(times) or len(log_p) != len(times):
            raise ValueError(f"path_explorer: expected one time per row of the paths {name!r}, "
                             f"got {len(times)} times for {len(z_t)} rows")
    step = (times[-1] - times[0]) / (len(times) - 1)
    every_log_p = np.concatenate([np.asarray(log_p, dtype=float).ravel() for _, log_p in paths.values()])
    norm = colors.Normalize(*np.quantile(every_log_p, [0.01, 0.99]))

    def draw(figure: Figure, t: float) -> None:
        index = int(np.argmin(np.abs(np.asarray(times) - t)))
        axes = figure.subplots(1, len(paths), squeeze=False)[0]
        for ax, (name, (z_t, log_p)) in zip(axes, paths.items()):
            plot_trajectories(z_t, log_p, times, index, ax=ax, tracked=tracked, data=data,
                              colorbar=False, norm=norm)
            ax.set_title(f"{name}\n$t$ = {times[index]:.2f}", fontsize="medium")
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
        figure.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes),
                        label=r"$\log p_t$", shrink=0.8)

    slider = widgets.FloatSlider(value=t, min=times[0], max=times[-1], step=step,
                                 description="t", continuous_update=False, readout_format=".2f")
    return FigureExplorer({"t": slider}, draw, figsize=(3.6 * len(paths) + 1.0, 4.0))

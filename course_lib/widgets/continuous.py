"""Lecture 10: continuous normalizing flows."""
from __future__ import annotations

from typing import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from ..jacobian import divergence_hutchinson, jacobian
from ..plotting import (HUTCHINSON_COLOURS, hutchinson_variance_theory, plot_hutchinson_variance,
                        plot_log_density_paths, plot_trajectories)
from .autoregressive import _WIDE_LABEL
from .common import FigureExplorer

__all__ = ["hutchinson_explorer", "trajectory_explorer"]


def trajectory_explorer(paths, log_p, times: Sequence[float], *, data=None,
                        tracked: int = 8, t: float = 0.0) -> FigureExplorer:
    """A time slider over precomputed paths of a CNF model (``continuous.density_paths``): the
    points ``z_t`` coloured by ``log p_t(z_t)`` with the paths of ``tracked`` of them (left), and
    ``log p_t(z_t)`` against ``t`` with its mean over all points (right). Moving the slider
    only picks one of ``times``; nothing is integrated."""
    times = [float(v) for v in times]
    if len(times) < 2 or len(times) != len(paths):
        raise ValueError(f"trajectory_explorer: expected one time per row of paths, got "
                         f"{len(times)} times for {len(paths)} rows")
    step = (times[-1] - times[0]) / (len(times) - 1)

    def draw(figure: Figure, t: float) -> None:
        index = int(np.argmin(np.abs(np.asarray(times) - t)))
        left, right = figure.subplots(1, 2, width_ratios=[1.15, 1])
        figure.get_layout_engine().set(wspace=0.08)  # keeps the colour bar off the right panel
        plot_trajectories(paths, log_p, times, index, ax=left, tracked=tracked, data=data)
        plot_log_density_paths(log_p, times, index, ax=right, tracked=tracked)

    slider = widgets.FloatSlider(value=t, min=times[0], max=times[-1], step=step,
                                 description="t", continuous_update=False, readout_format=".2f")
    return FigureExplorer({"t": slider}, draw, figsize=(10.5, 4.2))


def hutchinson_explorer(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                        rows: Sequence[Sequence], *, draws: int = 2000, max_probes: int = 16,
                        seed: int = 0) -> FigureExplorer:
    """Choose the noise and the number of probes ``k`` of Hutchinson's estimate of
    ``div f(z) = tr(J)`` at one point ``z`` of shape ``(1, d)``.

    Left: a histogram of ``draws`` independent estimates, each the mean of ``k`` terms
    ``eps^T J eps``, with the exact trace; the title compares their variance with the
    theory at this point, ``2 |S|_F^2 / k`` (Gaussian) or ``2 (|S|_F^2 - sum_i S_ii^2) / k``
    (Rademacher), ``S = (J + J^T) / 2``. Right: the variance against ``k`` from ``rows``
    (``course_lib.bench.continuous.hutchinson_variance``, averaged over many points), with the
    current choice marked. The same seed at every redraw, so only the controls change the
    picture.
    """
    if z.dim() != 2 or z.shape[0] != 1:
        raise ValueError(f"hutchinson_explorer: expected one point of shape (1, d), "
                         f"got {tuple(z.shape)}")
    J = jacobian(f, z)[0]
    exact = float(torch.trace(J))
    per_probe = {noise: float(hutchinson_variance_theory(J, noise))
                 for noise in HUTCHINSON_COLOURS}
    points = z.detach().repeat(draws, 1)

    def draw(figure: Figure, noise: str, k: int) -> None:
        left, right = figure.subplots(1, 2)
        estimates = divergence_hutchinson(f, points, k, noise, create_graph=False,
                                          generator=torch.Generator().manual_seed(seed))
        values = estimates.detach().numpy().astype(float)
        spread = 5 * np.sqrt(per_probe["gaussian"])  # one window for every choice
        edges = np.linspace(exact - spread, exact + spread, 61)
        left.hist(np.clip(values, edges[0], edges[-1]), bins=edges, density=True,
                  color=HUTCHINSON_COLOURS[noise], alpha=0.6, label=f"{draws} estimates")
        left.axvline(exact, color="black", linewidth=2, label=f"exact tr J = {exact:.3f}")
        left.axvline(values.mean(), color="tab:red", linestyle="--", linewidth=1.5,
                     label=f"mean of the estimates = {values.mean():.3f}")
        left.set_xlim(edges[0], edges[-1])
        left.set_xlabel(r"$\frac{1}{k}\sum_{j=1}^{k} \epsilon_j^T J \epsilon_j$")
        left.set_ylabel("density")
        left.set_title(f"{noise}, k = {k}: variance {values.var():.3f} "
                       f"(theory {per_probe[noise] / k:.3f})", fontsize="medium")
        left.legend(fontsize="small", loc="upper left")
        plot_hutchinson_variance(rows, ax=right, highlight=(noise, k))
        right.set_title("variance against k, averaged over many points", fontsize="medium")

    controls = {
        "noise": widgets.Dropdown(options=["rademacher", "gaussian"], value="gaussian",
                                  description="noise"),
        "k": widgets.IntSlider(value=1, min=1, max=max_probes, description="probes k",
                               continuous_update=False, style=_WIDE_LABEL),
    }
    return FigureExplorer(controls, draw, figsize=(11.0, 4.0))

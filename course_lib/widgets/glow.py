"""Lecture 05: Glow."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from ..flows import InvConv1x1
from ..flows.base import FlowInputError
from ..plotting import plot_channel_mixing, three_channel_pattern
from .common import FigureExplorer, _slider

__all__ = ["channel_mixing_explorer", "rotation_3d"]


def rotation_3d(angle_1: float, angle_2: float, angle_3: float) -> torch.Tensor:
    """A rotation of channel space, ``R = R_3 R_2 R_1`` (float64, ``det R = 1``), where
    ``R_k`` turns by ``angle_k`` degrees in the plane of the two channels other than ``k``."""
    rotation = torch.eye(3, dtype=torch.float64)
    for k, angle in enumerate((angle_1, angle_2, angle_3)):
        i, j = (a for a in range(3) if a != k)
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        turn = torch.eye(3, dtype=torch.float64)
        turn[i, i], turn[i, j], turn[j, i], turn[j, j] = c, -s, s, c
        rotation = turn @ rotation
    return rotation


def channel_mixing_explorer(size: int = 32,
                            scales: tuple[float, float, float] = (2.0, 0.5, 0.8),
                            angles: tuple[float, float, float] = (30.0, -45.0, 60.0)
                            ) -> FigureExplorer:
    """A 3-channel image ``z`` (``three_channel_pattern``) mixed by a 1x1 convolution,
    ``x = W z`` at every pixel, with ``W = R diag(s)``: sliders for the three angles of the
    rotation ``R`` (degrees) and for the scales ``s``.

    The figure shows ``z`` and ``x`` channel by channel, the matrix ``W``, the diagonal of
    ``U`` in ``InvConv1x1``'s factorisation ``W = P L U``, and the log-determinant the flow
    returns, ``H W sum_i log|U_ii|``. With the default scales this is the lecture's worked
    example, ``1024 * (log 2 + log 0.5 + log 0.8) = -228.5``, whatever the angles: they
    start away from 0, so the channels are visibly mixed and the diagonal of ``U`` differs
    from the scales while the log-determinant does not. A zero scale makes ``W`` singular:
    ``InvConv1x1`` refuses it, and the figure says so.
    """
    z = three_channel_pattern(size).to(torch.float64)

    def draw(figure: Figure, angle_1: float, angle_2: float, angle_3: float,
             s_1: float, s_2: float, s_3: float) -> None:
        diagonal = torch.tensor(np.round([s_1, s_2, s_3], 9), dtype=torch.float64)
        weight = rotation_3d(angle_1, angle_2, angle_3) @ torch.diag(diagonal)
        try:
            conv = InvConv1x1(3, weight=weight).double()
        except FlowInputError as error:
            ax = figure.subplots()
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"W is singular: no 1x1 convolution flow.\n\n{error}", wrap=True,
                    ha="center", va="center", transform=ax.transAxes, color="tab:red")
            return
        with torch.no_grad():
            x, logdet = conv(z)
            upper = conv.lu.factors()[1]
            # rounded first so that a rotation shows 0.0, not -0.0
            per_pixel = round(conv.lu.log_abs_det().item(), 4) + 0.0
            total = round(logdet[0].item(), 1) + 0.0
        axes = figure.subplot_mosaic([["z", "z1", "z2", "z3", "W"],
                                      ["x", "x1", "x2", "x3", "W"]])
        plot_channel_mixing(z, x, conv.lu.matrix().detach(), axes=axes)
        u = ", ".join(f"{v:.2f}" for v in torch.diagonal(upper).tolist())
        figure.suptitle(f"W = P L U with diagonal of U = ({u});   log|det J| = H·W·Σ log|U_ii| "
                        f"= {size * size} × ({per_pixel:.4f}) = {total:.1f}",
                        fontsize="medium")

    controls = {f"angle_{k}": widgets.FloatSlider(value=angle, min=-180.0, max=180.0, step=5.0,
                                                  description=f"angle {k}",
                                                  continuous_update=False, readout_format=".0f")
                for k, angle in enumerate(angles, start=1)}
    for k, value in enumerate(scales, start=1):
        controls[f"s_{k}"] = _slider(f"s{k}", value, -2.5, 2.5, 0.05)
    return FigureExplorer(controls, draw, figsize=(10.5, 4.6))

"""Lecture 04: coupling layers."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..flows import AdditiveCoupling, AffineCoupling
from ..flows import Flow
from ..model import NormalizingFlow
from ..plotting import plot_density_2d
from ..plotting import plot_grid_deformation
from .common import FigureExplorer, _slider

__all__ = ["KnobConditioner", "coupling_explorer", "knob_coupling"]


class KnobConditioner(nn.Module):
    """A conditioner with three knobs instead of a network: from the copied coordinate
    ``z_a`` it returns the raw log-scale ``a z_a + c`` and the shift ``t = b sin(z_a)``
    (only the shift for an additive layer), in the layout coupling layers expect."""

    def __init__(self, a: float, b: float, c: float, additive: bool = False):
        super().__init__()
        self.a, self.b, self.c, self.additive = float(a), float(b), float(c), additive

    def forward(self, z_a: torch.Tensor) -> torch.Tensor:
        t = self.b * torch.sin(z_a)
        if self.additive:
            return t
        return torch.cat([self.a * z_a + self.c, t], dim=1)


def knob_coupling(a: float, b: float, c: float, *, transformed: int = 2,
                  additive: bool = False) -> Flow:
    """A coupling layer of the plane driven by :class:`KnobConditioner`.

    ``transformed`` is the coordinate ``z_b`` that moves (1 or 2); the other one is
    ``z_a``. RealNVP: ``x_b = z_b exp(s(z_a)) + t(z_a)`` with the library's bounded
    log-scale ``s = 3 tanh((a z_a + c) / 3)``; NICE (``additive=True``): ``x_b = z_b + t(z_a)``.
    Both with ``t(z_a) = b sin(z_a)``.
    """
    if transformed not in (1, 2):
        raise ValueError(f"expected the transformed coordinate to be 1 or 2, got {transformed!r}")
    layer = AdditiveCoupling if additive else AffineCoupling
    return layer(2, parity=0 if transformed == 2 else 1,
                 conditioner=KnobConditioner(a, b, c, additive))


def _coupling_formula(a: float, b: float, c: float, transformed: int, additive: bool) -> str:
    za, zb = (1, 2) if transformed == 2 else (2, 1)
    shift = f"{b:.2f}\\,\\sin z_{za}"
    if additive:
        return (f"NICE: $x_{za} = z_{za}$,  $x_{zb} = z_{zb} + {shift}$;  "
                "$\\log|\\det J| = 0$ everywhere")
    return (f"RealNVP: $x_{za} = z_{za}$,  $x_{zb} = z_{zb}\\,e^{{s}} + {shift}$,  "
            f"$s = 3\\tanh(({a:.2f}\\,z_{za} {c:+.2f})/3)$;  $\\log|\\det J| = s(z_{za})$")


def coupling_explorer(a: float = 0.5, b: float = 1.0, c: float = 0.0, *, lim: float = 3.0,
                      window: float = 5.0, samples: int = 1500, resolution: int = 120,
                      seed: int = 0) -> FigureExplorer:
    """One coupling layer of the plane with knobs for its conditioner (:func:`knob_coupling`):
    sliders for ``a``, ``c`` (the log-scale ``s``) and ``b`` (the shift ``t``), the
    coordinate that moves, and a switch to NICE's additive layer.

    Left: the image of a grid of ``[-lim, lim]^2``, cells coloured by ``log10|det J|``
    (it depends on ``z_a`` alone, so it is constant along the lines ``z_a`` = const).
    All three panels show the window ``[-window, window]^2``.
    Middle: samples of ``N(0, I)`` (grey) and where the layer moves them, each coloured by
    its angle in the base. Right: ``p_X = exp(model.log_prob)`` on ``[-window, window]^2``,
    computed with the layer's inverse. The same latent samples are used at every redraw.
    """
    z = torch.randn(samples, 2, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    angle = np.arctan2(z[:, 1].numpy(), z[:, 0].numpy())
    box = (-window, window)
    controls = {
        "a": _slider("a", a, -1.0, 1.0, 0.05),
        "c": _slider("c", c, -1.5, 1.5, 0.05),
        "b": _slider("b", b, -2.0, 2.0, 0.05),
        "transformed": widgets.Dropdown(options=[("z₂ (z_a = z₁)", 2), ("z₁ (z_a = z₂)", 1)],
                                        value=2, description="moves"),
        "additive": widgets.Checkbox(value=False, description="NICE: additive, no scale"),
    }

    def draw(figure: Figure, a: float, b: float, c: float, transformed: int,
             additive: bool) -> None:
        layer = knob_coupling(a, b, c, transformed=transformed, additive=additive)
        grid_ax, sample_ax, density_ax = figure.subplots(1, 3)
        figure.suptitle(_coupling_formula(a, b, c, transformed, additive), fontsize="medium")
        plot_grid_deformation(layer, lim=lim, cells=16, ax=grid_ax,
                              title="image of a grid: colour is $\\log_{10}|\\det J|$")
        grid_ax.set_xlim(*box)
        grid_ax.set_ylim(*box)
        with torch.no_grad():
            x = layer(z)[0].numpy()
        sample_ax.scatter(z[:, 0], z[:, 1], s=2, color="0.75", linewidths=0, label="$z$")
        sample_ax.scatter(x[:, 0], x[:, 1], c=angle, cmap="hsv", s=3, linewidths=0,
                          alpha=0.8)
        sample_ax.set_xlim(*box)
        sample_ax.set_ylim(*box)
        sample_ax.set_aspect("equal")
        sample_ax.set_xlabel("$x_1$")
        sample_ax.set_ylabel("$x_2$")
        sample_ax.set_title("samples: $z$ (grey) and $x = f(z)$")
        model = NormalizingFlow(2, [layer]).double()
        plot_density_2d(model.log_prob, box, box, ax=density_ax, resolution=resolution,
                        dtype=torch.float64, title="$p_X(x)$ by the inverse")

    return FigureExplorer(controls, draw, figsize=(13.0, 4.3))

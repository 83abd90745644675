"""Lecture 01: change of variables in 1D."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

from ..flows import Affine, Exp, Sigmoid
from ..flows.base import FlowInputError
from ..model import NormalizingFlow
from ..plotting import density_1d, plot_base_and_pushed, plot_pushed_density
from .common import FigureExplorer, _slider

__all__ = ["BASE_TITLE", "MAPS", "change_of_variables_explorer", "scalar_flow"]


BASE_TITLE = r"base $p_Z(z)$, $z \sim N(0, 1)$"
MAPS = {"affine": "x = a z + b", "exp": "x = exp(a z + b)", "sigmoid": "x = sigmoid(a z + b)"}


def scalar_flow(kind: str, a: float, b: float) -> NormalizingFlow:
    """``N(0, 1)`` pushed through ``a z + b``, optionally followed by ``exp`` or the sigmoid.

    With ``a = 0`` every ``z`` lands on one point: sampling or evaluating the density
    then raises ``FlowInputError``.
    """
    if kind not in MAPS:
        raise ValueError(f"expected a map among {sorted(MAPS)}, got {kind!r}")
    flows = [Affine(1, scale=a, shift=b, learnable=False)]
    if kind == "exp":
        flows.append(Exp(1))
    elif kind == "sigmoid":
        flows.append(Sigmoid(1))
    return NormalizingFlow(1, flows).double()


def _draw_change_of_variables(figure: Figure, kind: str, a: float, b: float,
                              drop_absolute_value: bool, z_samples: torch.Tensor) -> None:
    axes = figure.subplots(1, 2)
    z_grid = np.linspace(-4.0, 4.0, 400)
    a = round(a, 9)
    model = scalar_flow(kind, a, b)
    try:
        with torch.no_grad():
            x_samples = model.flow.forward(z_samples)[0]
            # the log-normal's long right tail would squeeze its peak into a few pixels
            tail = 2.0 if kind == "exp" else 3.5
            z_ends = torch.tensor([[-3.5], [tail]], dtype=torch.float64) * (1.0 if a > 0 else -1.0)
            ends = model.flow.forward(z_ends)[0]
        x_grid = np.linspace(*sorted(ends.flatten().tolist()), 400)
        pushed = density_1d(model, x_grid)
    except FlowInputError as error:
        plot_pushed_density(z_samples, z_grid, stats.norm.pdf(z_grid), ax=axes[0],
                            label="formula", sample_label="samples of $z$")
        axes[0].set_xlabel("$z$")
        axes[0].set_title(BASE_TITLE)
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, f"a = 0: no density\n\n{error}", wrap=True, ha="center",
                     va="center", transform=axes[1].transAxes, fontsize="small", color="tab:red")
        return
    plot_base_and_pushed(z_grid, stats.norm.pdf(z_grid), x_grid, pushed, z_samples=z_samples,
                         x_samples=x_samples, axes=axes,
                         titles=(BASE_TITLE, f"pushed $p_X(x)$, {MAPS[kind]}"))
    if drop_absolute_value:
        # every map offered is monotone, so df/dz has the sign of a everywhere
        axes[1].plot(x_grid, np.sign(a) * pushed, "--", color="tab:red", label="without |.|")
        axes[1].axhline(0.0, color="gray", linewidth=0.8)
        axes[1].legend(loc="upper right", fontsize="small")


def change_of_variables_explorer(samples: int = 20_000, seed: int = 0) -> FigureExplorer:
    """Sliders for ``a`` and ``b``, a choice of map, and a switch that drops the absolute
    value; both densities, ``p_Z`` and ``p_X``, are redrawn with histograms of samples.

    The same latent samples ``z`` are pushed at every redraw, so what changes on screen
    is the map alone.
    """
    z = torch.randn(samples, 1, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    controls = {
        "kind": widgets.Dropdown(options=[(f"{k}: {v}", k) for k, v in MAPS.items()],
                                 value="affine", description="map"),
        "a": _slider("a", 2.0, -3.0, 3.0, 0.1),
        "b": _slider("b", 3.0, -5.0, 5.0, 0.1),
        "drop_absolute_value": widgets.Checkbox(value=False, description="drop |.|"),
    }
    return FigureExplorer(controls, lambda figure, **values: _draw_change_of_variables(
        figure, z_samples=z, **values))



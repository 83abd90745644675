"""Lecture 03: composing flows."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from ..flows import Affine
from ..flows import Flow, planar, radial
from ..flows.base import FlowInputError
from ..model import NormalizingFlow
from ..plotting import log_mass_on_window, plot_density_2d
from .common import FigureExplorer, _slider

__all__ = ["PLANAR_LAYERS", "RADIAL_LAYERS", "stack_explorer", "stack_layer"]


class _FixedPlanar(Flow):
    """A planar layer ``x = z + u tanh(w^T z + b)`` with ``u`` exactly as given (no
    ``u_hat``), so that a slider moves the formula's own ``u``; ``planar`` rejects
    ``w^T u < -1``."""

    def __init__(self, u, w, b):
        super().__init__((len(u),))
        for name, value in (("u", u), ("w", w), ("b", b)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float64))

    def _forward(self, z):
        return planar(z, self.u, self.w, self.b)

    def _inverse(self, x):
        return planar(x, self.u, self.w, self.b, inverse=True)


class _FixedRadial(Flow):
    """A radial layer ``x = z + beta (z - z0) / (alpha + |z - z0|)`` with the parameters
    as given; ``radial`` rejects ``alpha <= 0`` and ``beta < -alpha``."""

    def __init__(self, z0, alpha, beta):
        super().__init__((len(z0),))
        for name, value in (("z0", z0), ("alpha", alpha), ("beta", beta)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float64))

    def _forward(self, z):
        return radial(z, self.z0, self.alpha, self.beta)

    def _inverse(self, x):
        return radial(x, self.z0, self.alpha, self.beta, inverse=True)


# Starting stacks: each layer adds a visible bend to what the layers before it made.
PLANAR_LAYERS = [
    {"u1": 1.0, "u2": 0.0, "w1": 2.0, "w2": 0.0, "b": 0.0},
    {"u1": 0.0, "u2": 1.0, "w1": 1.5, "w2": 0.0, "b": 0.0},
    {"u1": 0.8, "u2": 0.0, "w1": 0.0, "w2": 2.0, "b": 0.0},
    {"u1": -0.6, "u2": 0.6, "w1": 1.0, "w2": 1.0, "b": 0.0},
    {"u1": 0.0, "u2": -0.8, "w1": 2.0, "w2": 0.0, "b": -1.0},
    {"u1": 0.5, "u2": 0.5, "w1": -1.5, "w2": 1.5, "b": 0.5},
]
RADIAL_LAYERS = [
    {"c1": 0.0, "c2": 0.0, "alpha": 1.0, "beta": 1.0},
    {"c1": 1.5, "c2": 1.0, "alpha": 0.5, "beta": -0.2},
    {"c1": -1.5, "c2": -1.0, "alpha": 0.5, "beta": 0.8},
    {"c1": -1.5, "c2": 1.5, "alpha": 0.5, "beta": -0.2},
    {"c1": 1.5, "c2": -1.5, "alpha": 0.6, "beta": 0.8},
    {"c1": 0.0, "c2": 2.5, "alpha": 0.5, "beta": -0.2},
]
_STACK_SLIDERS = {
    "planar": {"u1": ("u₁", -3, 3), "u2": ("u₂", -3, 3), "w1": ("w₁", -3, 3),
               "w2": ("w₂", -3, 3), "b": ("b", -3, 3)},
    "radial": {"c1": ("z0₁", -3, 3), "c2": ("z0₂", -3, 3), "alpha": ("α", 0.05, 3),
               "beta": ("β", -3, 3)},
}


def stack_layer(kind: str, params: dict) -> Flow:
    """One layer of the stack explorer from its slider values (see ``PLANAR_LAYERS``,
    ``RADIAL_LAYERS`` for the names)."""
    p = params
    if kind == "planar":
        return _FixedPlanar([p["u1"], p["u2"]], [p["w1"], p["w2"]], p["b"])
    if kind == "radial":
        return _FixedRadial([p["c1"], p["c2"]], p["alpha"], p["beta"])
    raise ValueError(f"expected kind 'planar' or 'radial', got {kind!r}")


def _constraint(kind: str, p: dict) -> str:
    if kind == "planar":
        wu = p["w1"] * p["u1"] + p["w2"] * p["u2"]
        verdict = "≥ −1: invertible" if wu >= -1 else "< −1: folds over"
        return f"$w^\\top u$ = {wu:.2f} {verdict}"
    verdict = "≥ −α: invertible" if p["beta"] >= -p["alpha"] else "< −α: folds over"
    return f"β = {p['beta']:.2f} {verdict}"


class _StackExplorer(FigureExplorer):
    """A ``FigureExplorer`` that skips drawing while it moves its own sliders."""

    syncing = False

    def _redraw(self, **values) -> None:
        if not self.syncing:
            super()._redraw(**values)


def stack_explorer(kind: str = "planar", max_layers: int = 6, lim: float = 4.0,
                   resolution: int = 90, samples: int = 1500, seed: int = 0) -> FigureExplorer:
    """A standard normal pushed through a stack of ``K`` planar (or radial) layers.

    Sliders choose ``K``, the layer to edit, and that layer's parameters (the other
    layers keep theirs). Left: samples ``x = f_K(...f_1(z))``, coloured by their angle in
    the base. Right: ``exp(model.log_prob(x))`` on a grid (the inverse direction) and the
    mass it puts on the window. A layer that breaks its invertibility condition
    (``w^T u >= -1``, ``beta >= -alpha``) leaves no density to draw, and the panel says so.
    """
    if kind not in _STACK_SLIDERS:
        raise ValueError(f"expected kind 'planar' or 'radial', got {kind!r}")
    presets = PLANAR_LAYERS if kind == "planar" else RADIAL_LAYERS
    if not isinstance(max_layers, int) or not 1 <= max_layers <= len(presets):
        raise ValueError(f"expected 1 <= max_layers <= {len(presets)}, got {max_layers!r}")
    table = [dict(p) for p in presets[:max_layers]]
    z = torch.randn(samples, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    angle = np.arctan2(z[:, 1].numpy(), z[:, 0].numpy())
    window = (-lim, lim)
    controls = {
        "layers": widgets.IntSlider(value=min(2, max_layers), min=0, max=max_layers,
                                    description="K layers", continuous_update=False),
        "edit": widgets.IntSlider(value=1, min=1, max=max_layers, description="edit layer",
                                  continuous_update=False),
    }
    for name, (label, low, high) in _STACK_SLIDERS[kind].items():
        controls[name] = _slider(label, table[0][name], low, high, 0.05)
    state = {"edit": 1}

    def draw(figure: Figure, layers: int, edit: int, **params) -> None:
        if edit != state["edit"]:
            state["edit"] = edit
            explorer.syncing = True
            try:
                for name, value in table[edit - 1].items():
                    controls[name].value = value
            finally:
                explorer.syncing = False
        else:
            table[edit - 1].update(params)
        left, right = figure.subplots(1, 2)
        stack = [stack_layer(kind, p) for p in table[:layers]]
        editing = f"editing layer {edit}: {_constraint(kind, table[edit - 1])}"
        if edit > layers:
            editing += f" (not in the stack: K = {layers})"
        figure.suptitle(f"{kind} stack, K = {layers}; {editing}", fontsize="medium")
        try:
            # K = 0 is the base itself: the identity map
            model = NormalizingFlow(2, stack or [Affine(2, learnable=False)]).double()
            with torch.no_grad():
                x = model.flow(z)[0].numpy()
            mass = np.exp(log_mass_on_window(model.log_prob, window, window, resolution,
                                             torch.float64))
        except FlowInputError as error:
            for ax in (left, right):
                ax.set_axis_off()
            right.text(0.5, 0.5, f"No density: a layer is not invertible.\n\n{error}",
                       wrap=True, ha="center", va="center", transform=right.transAxes,
                       fontsize="small", color="tab:red")
            return
        left.scatter(x[:, 0], x[:, 1], c=angle, cmap="hsv", s=3, linewidths=0, alpha=0.7)
        left.set_xlim(*window)
        left.set_ylim(*window)
        left.set_aspect("equal")
        left.set_xlabel("$x_1$")
        left.set_ylabel("$x_2$")
        left.set_title("samples $x = f(z)$ (forward)")
        plot_density_2d(model.log_prob, window, window, ax=right, resolution=resolution,
                        dtype=torch.float64,
                        title=f"$p_X$ by the inverse; mass in window {mass:.3f}")

    explorer = _StackExplorer(controls, draw, figsize=(9.0, 4.0))
    return explorer

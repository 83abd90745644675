"""Interactive explorers of the lectures, grouped by the lecture that introduces them.

Each explorer is a ``FigureExplorer``: controls above a matplotlib figure that is drawn
again whenever a control changes. Displayed in JupyterLab it is live; it also carries a
PNG of its current figure (and a quiz its question as HTML), which is what a static
export of the notebook (HTML, slides) shows in place of the live widget.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import Image, clear_output, display
from matplotlib.figure import Figure
from scipy import stats

from .flows import Affine, Exp, Sigmoid
from .flows.base import FlowInputError
from .model import NormalizingFlow
from .plotting import density_1d, plot_base_and_pushed, plot_pushed_density
from .plotting import plot_grid_deformation, plot_linear_map, plot_pushed_gaussian
from .flows import Flow, planar, radial
from .plotting import log_mass_on_window, plot_density_2d
from torch import nn
from .flows import AdditiveCoupling, AffineCoupling

__all__ = ["FigureExplorer", "MultipleChoice", "stretch_explorer", "scalar_flow",
           "change_of_variables_explorer"]


class FigureExplorer(widgets.VBox):
    """Controls above a figure that ``draw(figure, **values)`` redraws on every change.

    Args:
        controls: name -> widget with a ``value``; the names are ``draw``'s keyword arguments.
        draw: draws into the (cleared) figure.
        figsize: size of the figure in inches (at 100 dots per inch).

    The figure is drawn once when the explorer is built, so ``explorer.figure`` always
    shows the current values of the controls.
    """

    def __init__(self, controls: dict[str, widgets.ValueWidget], draw: Callable[..., None], *,
                 figsize: tuple[float, float] = (9.0, 3.4)):
        super().__init__()
        self.controls = dict(controls)
        self.figure = Figure(figsize=figsize, dpi=100, layout="constrained")
        self.png = b""
        self._holding = False
        self._draw = draw
        self.output = widgets.interactive_output(self._redraw, self.controls)
        row = widgets.HBox(list(self.controls.values()),
                           layout=widgets.Layout(flex_flow="row wrap"))
        self.children = [row, self.output]

    def set(self, **values) -> None:
        """Move several controls at once and redraw once, e.g. ``explorer.set(a=-1.0, b=0.0)``."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"expected controls among {sorted(self.controls)}, got {unknown}")
        if all(self.controls[name].value == value for name, value in values.items()):
            return
        self._holding = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._holding = False
        with self.output:
            clear_output(wait=True)
            self._redraw(**{name: c.value for name, c in self.controls.items()})

    def _redraw(self, **values) -> None:
        if self._holding:
            return
        self.figure.clear()
        self._draw(self.figure, **values)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        self.png = buffer.getvalue()
        display(Image(data=self.png, format="png"))

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = (f"A figure with controls {', '.join(self.controls)}; "
                                    "run the notebook to move them.")
            if self.png:
                bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        return bundle


class MultipleChoice(widgets.VBox):
    """A "check yourself" question: pick an option, read why it is right or wrong.

    Args:
        question: the question (HTML; ``$...$`` is typeset).
        options: the answers offered, as plain text.
        answer: index of the correct option.
        explanations: one explanation per option, shown once that option is picked.
    """

    def __init__(self, question: str, options: Sequence[str], answer: int,
                 explanations: Sequence[str]):
        if len(explanations) != len(options) or not 0 <= answer < len(options):
            raise ValueError(f"expected one explanation per option and 0 <= answer < "
                             f"{len(options)}, got {len(explanations)} explanations for "
                             f"{len(options)} options and answer={answer}")
        super().__init__()
        self.answer = answer
        self.explanations = list(explanations)
        self.question = widgets.HTMLMath(question)
        self.choices = widgets.RadioButtons(options=list(options), value=None,
                                            layout=widgets.Layout(width="max-content"))
        self.feedback = widgets.HTMLMath("")
        self.choices.observe(self._give_feedback, "value")
        self.children = [self.question, self.choices, self.feedback]

    @property
    def correct(self) -> bool | None:
        """Whether the picked option is the right one (``None`` before any pick)."""
        index = self.choices.index
        return None if index is None else index == self.answer

    def _give_feedback(self, _change=None) -> None:
        if self.correct is None:
            self.feedback.value = ""
            return
        verdict = "Correct." if self.correct else "Not quite."
        self.feedback.value = f"<b>{verdict}</b> {self.explanations[self.choices.index]}"

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            items = "".join(f"<li>{html.escape(o)}</li>" for o in self.choices.options)
            letter = chr(ord("A") + self.answer)
            bundle["text/plain"] = self.question.value
            bundle["text/html"] = (
                f"<div>{self.question.value}<ol type='A'>{items}</ol><details><summary>Answer"
                f"</summary>{letter}. {self.explanations[self.answer]}</details></div>")
        return bundle


def _slider(name: str, value: float, low: float, high: float, step: float) -> widgets.FloatSlider:
    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=name,
                               continuous_update=False, readout_format=".2f")


# -- Lecture 00: a first slider -------------------------------------------------------------

def stretch_explorer() -> FigureExplorer:
    """Stretch the standard normal by ``x = a z``: the curve widens by ``a`` and its peak
    drops by ``a``, so the area under it stays 1."""
    grid = np.linspace(-8.0, 8.0, 801)
    base = stats.norm.pdf(grid)

    def draw(figure: Figure, a: float) -> None:
        ax = figure.subplots()
        pushed = density_1d(NormalizingFlow(1, [Affine(1, scale=a, learnable=False)]).double(),
                            grid)
        ax.plot(grid, base, "--", color="gray", label=r"$p_Z(z)$, standard normal")
        ax.plot(grid, pushed, color="black", linewidth=2, label=fr"$p_X(x)$ for $x = {a:.2f}\,z$")
        ax.fill_between(grid, pushed, alpha=0.3, color="tab:orange")
        area = np.trapezoid(pushed, grid)
        ax.set_title(f"peak height {pushed.max():.3f}, area under the curve {area:.3f}")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0, 1.7)
        ax.set_xlabel("$x$")
        ax.legend(loc="upper right", fontsize="small")

    return FigureExplorer({"a": _slider("a", 2.0, 0.25, 3.0, 0.05)}, draw, figsize=(8, 3.2))


# -- Lecture 01: change of variables in 1D -------------------------------------------------

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
        "b": _slider("b", 3.0, -3.0, 3.0, 0.1),
        "drop_absolute_value": widgets.Checkbox(value=False, description="drop |.|"),
    }
    return FigureExplorer(controls, lambda figure, **values: _draw_change_of_variables(
        figure, z_samples=z, **values))


# -- Lecture 02: the Jacobian as local geometry --------------------------------------------

__all__ += ["matrix_explorer", "invertibility_explorer"]


def matrix_explorer(a: float = 3.0, b: float = 1.0, c: float = 0.0,
                    d: float = 2.0) -> FigureExplorer:
    """Sliders for the entries of ``J = [[a, b], [c, d]]``: the image of the unit square and
    of a grid under ``x = J z`` with its area ``|det J|``, and ``N(0, I)`` pushed by ``J``
    (no density when ``det J = 0``)."""
    def draw(figure: Figure, a: float, b: float, c: float, d: float) -> None:
        J = np.round([[a, b], [c, d]], 9)  # slider steps are not exact binary fractions
        left, right = figure.subplots(1, 2)
        plot_linear_map(J, ax=left)
        plot_pushed_gaussian(J, ax=right)

    controls = {name: _slider(name, value, -3.0, 3.0, 0.1)
                for name, value in zip("abcd", (a, b, c, d))}
    return FigureExplorer(controls, draw, figsize=(9.5, 4.3))


def invertibility_explorer(f: Callable, k: float = 0.7, k_range: tuple[float, float] = (0.0, 1.6),
                           lim: float = 3.0) -> FigureExplorer:
    """A slider for the parameter ``k`` of a family of maps ``f(z, k)`` of the plane: the
    image of a grid coloured by ``log10|det J|``; cells where ``det J <= 0`` (the map folds
    and stops being invertible) are dark grey."""
    def draw(figure: Figure, k: float) -> None:
        plot_grid_deformation(lambda z: f(z, k), lim=lim, ax=figure.subplots())

    return FigureExplorer({"k": _slider("k", k, *k_range, 0.05)}, draw, figsize=(6.0, 4.6))


# -- Lecture 03: composing flows ------------------------------------------------------------

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


__all__ += ["stack_layer", "stack_explorer"]


# -- Lecture 04: coupling layers ------------------------------------------------------------

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


__all__ += ["KnobConditioner", "knob_coupling", "coupling_explorer"]


# -- Lecture 06: autoregressive flows -------------------------------------------------------

from .flows import MADE  # noqa: E402
from .plotting import mask_paths, plot_dependency, plot_made_network  # noqa: E402


_WIDE_LABEL = {"description_width": "initial"}


def _draw_made(figure: Figure, dim: int, layers: int, width: int, order: str,
               seed: int) -> None:
    made = MADE(dim, hidden=(width,) * layers, order=order, seed=seed)
    network, by_index, by_order = figure.subplots(1, 3, width_ratios=[1.8, 1, 1])
    plot_made_network(made, ax=network)
    paths = mask_paths(made)
    plot_dependency(paths, order=made.order, in_order=False, ax=by_index, annotate=True,
                    row_symbol="h", col_symbol="x",
                    title="paths from $x_j$ (column)\nto $h_i = (\\mu_i, s_i)$ (row)")
    plot_dependency(paths, order=made.order, ax=by_order, annotate=True, row_symbol="h",
                    col_symbol="x", title="the same, listed in the order")
    position = torch.empty(dim, dtype=torch.long)
    position[made.order] = torch.arange(dim)
    allowed = position[None, :] < position[:, None]
    missing = int((allowed & (paths == 0)).sum())
    if missing:
        verdict = (f"{missing} allowed dependenc{'y is' if missing == 1 else 'ies are'} "
                   f"lost (light cells): a hidden layer narrower than d - 1 = {dim - 1} "
                   "misses some degrees")
    else:
        verdict = "every allowed dependency is connected; none other is"
    figure.suptitle(f"d = {dim}, hidden {tuple([width] * layers)}: {verdict}",
                    fontsize="medium")


def made_explorer(dim: int = 4, layers: int = 2, width: int = 6, order: str = "sequential",
                  seed: int = 0) -> FigureExplorer:
    """Build a MADE from the controls (``d``, number and width of hidden layers, the order,
    the seed of a random order) and draw its kept weights with every unit's degree, and
    the number of mask paths from each input to each variable's outputs, by variable
    index and listed in the order (a strictly lower triangle)."""
    controls = {
        "dim": widgets.IntSlider(value=dim, min=2, max=8, description="d",
                                 continuous_update=False),
        "layers": widgets.IntSlider(value=layers, min=1, max=3, description="hidden layers",
                                    continuous_update=False, style=_WIDE_LABEL),
        "width": widgets.IntSlider(value=width, min=1, max=12, description="width",
                                   continuous_update=False),
        "order": widgets.Dropdown(options=["sequential", "random"], value=order,
                                  description="order"),
        "seed": widgets.IntSlider(value=seed, min=0, max=20, description="seed (random)",
                                  continuous_update=False, style=_WIDE_LABEL),
    }
    return FigureExplorer(controls, _draw_made, figsize=(11.0, 4.4))


__all__ += ["made_explorer"]


# -- Lecture 05: Glow -----------------------------------------------------------------------

from .flows import InvConv1x1  # noqa: E402
from .plotting import plot_channel_mixing, three_channel_pattern  # noqa: E402


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
                            scales: tuple[float, float, float] = (2.0, 0.5, 0.8)) -> FigureExplorer:
    """A 3-channel image ``z`` (``three_channel_pattern``) mixed by a 1x1 convolution,
    ``x = W z`` at every pixel, with ``W = R diag(s)``: sliders for the three angles of the
    rotation ``R`` (degrees) and for the scales ``s``.

    The figure shows ``z`` and ``x`` channel by channel, the matrix ``W``, the diagonal of
    ``U`` in ``InvConv1x1``'s factorisation ``W = P L U``, and the log-determinant the flow
    returns, ``H W sum_i log|U_ii|``. With all angles 0 and the default scales this is the
    chapter's example: ``1024 * (log 2 + log 0.5 + log 0.8) = -228.5``. A zero scale makes
    ``W`` singular: ``InvConv1x1`` refuses it, and the figure says so.
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

    controls = {f"angle_{k}": widgets.FloatSlider(value=0.0, min=-180.0, max=180.0, step=5.0,
                                                  description=f"angle {k}",
                                                  continuous_update=False, readout_format=".0f")
                for k in (1, 2, 3)}
    for k, value in enumerate(scales, start=1):
        controls[f"s_{k}"] = _slider(f"s{k}", value, -2.5, 2.5, 0.05)
    return FigureExplorer(controls, draw, figsize=(10.5, 4.6))


__all__ += ["rotation_3d", "channel_mixing_explorer"]


# -- Lecture 08: forward against reverse KL ---------------------------------------------------

from .plotting import plot_target_and_fits  # noqa: E402
from .sampling import (effective_sample_size, log_importance_weights,  # noqa: E402
                       log_normaliser_estimate)

OBJECTIVE_LABELS = {"forward_kl": "forward KL", "reverse_kl": "reverse KL"}


def _sampler_summary(model: nn.Module, target, log_z: float, exact: bool, n: int,
                     seed: int) -> str:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        _, log_w = log_importance_weights(model, target.log_prob, n)
    log_w = log_w.to(torch.float64)
    ess = effective_sample_size(log_w).item() / n
    # rounded first so that a tiny negative estimate shows as 0.00, not -0.00
    estimate = round(log_normaliser_estimate(log_w).item(), 2) + 0.0
    reference = "exact" if exact else "grid"
    return f"ESS/n = {ess:.2f}, $\\log\\hat Z$ = {estimate:.2f} ({reference} {log_z:.2f})"


def kl_explorer(targets: Sequence, fits: dict, *, samples: int = 400, n_weights: int = 4000,
                resolution: int = 100, seed: int = 0) -> FigureExplorer:
    """Switch between targets and between models already fitted to them by the forward KL
    and the reverse KL: nothing is trained when a control moves.

    Args:
        targets: the targets (``course_lib.targets``), listed by their ``name``.
        fits: ``(target.name, "forward_kl" or "reverse_kl")`` -> trained model.

    The figure shows the target (with exact samples where it can be sampled) and each chosen
    fit with ``samples`` of its samples, on one colour scale. Each fit's title gives its
    ``ESS / n`` and its importance-sampling estimate of ``log Z`` from ``n_weights`` samples,
    against the exact value (or a grid sum on the window where there is no closed form).
    """
    by_name = {target.name: target for target in targets}
    missing = [(name, objective) for name in by_name for objective in OBJECTIVE_LABELS
               if (name, objective) not in fits]
    if missing:
        raise ValueError(f"kl_explorer: expected a fitted model for every target and objective, "
                         f"missing {missing}")
    controls = {
        "target": widgets.Dropdown(options=list(by_name), description="target"),
        "objective": widgets.ToggleButtons(options=[("forward KL", "forward_kl"),
                                                    ("reverse KL", "reverse_kl"),
                                                    ("both", "both")],
                                           value="both", description="objective"),
    }

    def draw(figure: Figure, target: str, objective: str) -> None:
        chosen = list(OBJECTIVE_LABELS) if objective == "both" else [objective]
        t = by_name[target]
        exact = t.log_normaliser is not None
        log_z = t.log_normaliser if exact else log_mass_on_window(t.log_prob, t.xlim, t.ylim,
                                                                  400, torch.float64)
        shown = {}
        for name in chosen:
            model = fits[target, name]
            summary = _sampler_summary(model, t, log_z, exact, n_weights, seed)
            shown[f"{OBJECTIVE_LABELS[name]} fit $q$\n{summary}"] = model
        try:
            points = t.sample(samples, generator=torch.Generator().manual_seed(seed))
        except NotImplementedError:
            points = None
        axes = figure.subplots(1, 1 + len(chosen))
        plot_target_and_fits(t.log_prob, shown, t.xlim, t.ylim, target_samples=points,
                             model_samples=samples, resolution=resolution, axes=axes,
                             target_title=f"target: {target}", seed=seed)

    return FigureExplorer(controls, draw, figsize=(11.0, 3.9))


__all__ += ["kl_explorer"]


# -- Lecture 12: applications ---------------------------------------------------------------

from .plotting import plot_completions, plot_posteriors, plot_threshold  # noqa: E402


def threshold_explorer(normal_scores, anomalous_scores, threshold: float | None = None, *,
                       xlabel: str = "anomaly score") -> FigureExplorer:
    """A slider for the threshold ``τ`` of an anomaly detector: the score histograms with
    ``τ`` and the flagged side, the ROC curve with the point ``τ`` picks, and the confusion
    counts, precision and recall in the title. Starts at the 95th percentile of the normal
    scores (5 % false alarms) unless ``threshold`` is given."""
    normal = np.asarray(normal_scores, dtype=float).ravel()
    anomalous = np.asarray(anomalous_scores, dtype=float).ravel()
    both = np.r_[normal, anomalous]
    low, high = float(both.min()), float(np.quantile(both, 0.99))
    start = float(np.quantile(normal, 0.95)) if threshold is None else float(threshold)
    step = round((high - low) / 200, 4) or 0.01
    controls = {"threshold": widgets.FloatSlider(
        value=min(max(start, low), high), min=low, max=high, step=step, description="τ",
        continuous_update=False, readout_format=".2f",
        layout=widgets.Layout(width="500px"))}

    def draw(figure: Figure, threshold: float) -> None:
        axes = figure.subplots(1, 2, width_ratios=[1.6, 1])
        plot_threshold(normal, anomalous, threshold, axes=axes, xlabel=xlabel)

    return FigureExplorer(controls, draw, figsize=(10.0, 3.9))


def observed_rows_explorer(vae, image, rows: int = 3, *, lim: float = 6.0,
                           resolution: int = 120, completions: int = 6,
                           seed: int = 0) -> FigureExplorer:
    """An inverse problem with a trained VAE (two-dimensional latent): observe only the top
    ``rows`` rows of ``image`` (a slider) and see the posterior ``p(z | x_observed)`` on a
    grid, with completions: draws ``z`` from it, decoded to ``E[x|z]`` in the hidden rows."""
    from .vae import posterior_on_grid
    image = torch.as_tensor(image).reshape(1, -1).to(next(vae.parameters()).dtype)
    side = int(round(image.shape[1] ** 0.5))
    controls = {"rows": widgets.IntSlider(value=rows, min=0, max=side, description="rows seen",
                                          continuous_update=False)}

    def draw(figure: Figure, rows: int) -> None:
        observed = (torch.arange(image.shape[1]) < rows * side).to(image.dtype)
        truth = posterior_on_grid(lambda z: vae.log_joint(image, z, observed), lim, resolution,
                                  image.dtype)
        z = truth.sample(completions, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            filled = torch.where(observed.bool(), image, vae.decode_mean(z))
        left, right = figure.subfigures(1, 2, width_ratios=[1.25, 1])
        ax = left.subplots()
        title = f"p(z | top {rows} rows)\nlog p(observed) = {truth.log_evidence:.1f}"
        plot_posteriors({title: lambda p: vae.log_joint(image, p, observed) - truth.log_evidence},
                        (-lim, lim), (-lim, lim), resolution=resolution, axes=[ax],
                        dtype=image.dtype)
        ax.plot(z[:, 0], z[:, 1], "x", color="white", markersize=6, label="draws of z")
        ax.legend(fontsize="small", loc="lower right")
        columns = (completions + 3) // 2
        axes = right.subplots(2, columns).ravel()
        plot_completions(image, observed, filled, axes=axes)
        for extra in axes[completions + 2:]:
            extra.set_axis_off()
    return FigureExplorer(controls, draw, figsize=(9.5, 4.2))


__all__ += ["threshold_explorer", "observed_rows_explorer"]


# -- Lecture 09: the continuity equation ------------------------------------------------------

from .continuity import cell_centres, total_mass  # noqa: E402
from .plotting import (EULER_STEPS, SPIRAL, SWIRL, gaussian_flux,  # noqa: E402
                       plot_density_on_grid, plot_euler, plot_flux_box)


def euler_explorer(a: float = 1.0, step: float = 0.25, t_end: float = 2.0) -> FigureExplorer:
    """Euler's method on ``dz/dt = a z``: a slider for ``a`` and one for the step ``h`` (halved
    from 1 down to 1/32). Left, the Euler polygon against ``z_0 e^{at}``; right, the error at
    ``t_end`` for every ``h`` (:func:`~course_lib.plotting.plot_euler`)."""
    controls = {
        "a": _slider("a", a, -2.5, 1.5, 0.25),
        "step": widgets.SelectionSlider(options=[(f"{h:g}", h) for h in EULER_STEPS], value=step,
                                        description="h", continuous_update=False),
    }

    def draw(figure: Figure, a: float, step: float) -> None:
        plot_euler(round(a, 9), step, t_end=t_end, axes=figure.subplots(1, 2))

    return FigureExplorer(controls, draw, figsize=(10.0, 3.6))


#: velocities ``f`` offered by :func:`flux_box_explorer`, on batches ``(n, 2)``
FLUX_FIELDS = {
    "expansion f = z": lambda z: z,
    "rotation f = (-z2, z1)": lambda z: torch.stack([-z[:, 1], z[:, 0]], dim=1),
    "drift f = (1, 0)": lambda z: torch.stack([torch.ones_like(z[:, 0]),
                                               torch.zeros_like(z[:, 0])], dim=1),
}


def flux_box_explorer(field: str = "expansion f = z", centre: tuple[float, float] = (1.25, 0.25),
                      size: tuple[float, float] = (1.5, 1.5), lim: float = 3.0) -> FigureExplorer:
    """The flux ``J = p f`` of ``p = N(0, I)`` through a box ``V``: a menu for the velocity ``f``
    (:data:`FLUX_FIELDS`), sliders for the centre and the sides of the box. The figure
    (:func:`~course_lib.plotting.plot_flux_box`) shows ``div J``, the arrows of ``J``, the normal
    flux on the sides, and the two sides of the divergence theorem."""
    if field not in FLUX_FIELDS:
        raise ValueError(f"expected a field among {sorted(FLUX_FIELDS)}, got {field!r}")
    controls = {
        "field": widgets.Dropdown(options=list(FLUX_FIELDS), value=field, description="f"),
        "c1": _slider("centre z₁", centre[0], -2.5, 2.5, 0.05),
        "c2": _slider("centre z₂", centre[1], -2.5, 2.5, 0.05),
        "width": _slider("width", size[0], 0.1, 3.0, 0.05),
        "height": _slider("height", size[1], 0.1, 3.0, 0.05),
    }

    def draw(figure: Figure, field: str, c1: float, c2: float, width: float,
             height: float) -> None:
        box = tuple(round(v, 9) for v in (c1 - width / 2, c1 + width / 2, c2 - height / 2,
                                          c2 + height / 2))
        plot_flux_box(gaussian_flux(FLUX_FIELDS[field]), box, lim=lim, ax=figure.subplots())

    return FigureExplorer(controls, draw, figsize=(6.6, 5.2))


#: densities offered by :func:`continuity_explorer` (``course_lib.plotting.MovingDensity``)
MOVING_DENSITIES = {"spiral": SPIRAL, "swirl": SWIRL}


def continuity_explorer(example: str = "spiral", t: float = 0.5, *, t_end: float = 1.0,
                        frames: int = 11, cells: int = 100, resolution: int = 70,
                        particles: int = 12, seed: int = 0) -> FigureExplorer:
    """A density moved by a field, with a time slider and a menu of examples
    (:data:`MOVING_DENSITIES`).

    Left: the continuity equation solved on a fixed grid of ``cells x cells`` (finite volumes,
    computed once per example at ``frames`` times from 0 to ``t_end``), with the streamlines of
    the field. Right: the same density by change of variables 2.0, integrating
    ``d/dt log p = -div f`` along the path that ends at each point of a ``resolution``-square
    grid. Both panels show a few particles of ``p_0`` and their paths, on one colour scale,
    and state the total mass on their grid.
    """
    if example not in MOVING_DENSITIES:
        raise ValueError(f"expected an example among {sorted(MOVING_DENSITIES)}, got {example!r}")
    times = np.linspace(0.0, t_end, frames).tolist()
    prepared: dict[str, tuple] = {}

    def grid_points(half_width: float) -> tuple[torch.Tensor, float]:
        z1, z2, h = cell_centres(half_width, resolution)
        return torch.stack([z1.flatten(), z2.flatten()], dim=1), h

    def prepare(name: str) -> tuple:
        # the grid solution and the particles, once per example; the scale covers the last frame
        if name not in prepared:
            moving = MOVING_DENSITIES[name]
            on_grid = moving.on_grid(times, cells).numpy()
            paths = moving.paths(moving.sample(particles, seed), times)[0].numpy()
            last = moving.log_density(t_end, grid_points(moving.half_width)[0]).exp()
            prepared[name] = (on_grid, paths, max(float(on_grid.max()), float(last.max())))
        return prepared[name]

    def draw(figure: Figure, example: str, t: float) -> None:
        moving = MOVING_DENSITIES[example]
        on_grid, paths, top = prepare(example)
        i = int(round(t / t_end * (frames - 1)))
        points, h = grid_points(moving.half_width)
        exact = moving.log_density(times[i], points).exp().reshape(resolution, resolution)
        left, right = figure.subplots(1, 2)
        cell = 2 * moving.half_width / cells
        plot_density_on_grid(on_grid[i], moving.half_width, field=moving.field, t=times[i],
                             ax=left, vmax=top, colorbar=False,
                             title=f"continuity equation on a grid\ntotal mass "
                                   f"{on_grid[i].sum() * cell * cell:.4f}")
        plot_density_on_grid(exact.numpy(), moving.half_width, ax=right, vmax=top,
                             title=f"change of variables 2.0 along paths\ntotal mass "
                                   f"{total_mass(exact, h).item():.4f}")
        for ax in (left, right):
            for k in range(particles):
                ax.plot(paths[:i + 1, k, 0], paths[:i + 1, k, 1], color="tab:red", linewidth=1)
            ax.scatter(paths[i, :, 0], paths[i, :, 1], s=14, color="tab:red", zorder=3)
        figure.suptitle(f"{moving.title}, t = {times[i]:.2f}", fontsize="medium")

    controls = {
        "example": widgets.Dropdown(options=[(m.title, name) for name, m in MOVING_DENSITIES.items()],
                                    value=example, description="field",
                                    layout=widgets.Layout(width="max-content")),
        "t": widgets.FloatSlider(value=t, min=0.0, max=t_end, step=t_end / (frames - 1),
                                 description="t", continuous_update=False, readout_format=".2f"),
    }
    return FigureExplorer(controls, draw, figsize=(10.0, 4.6))


__all__ += ["euler_explorer", "FLUX_FIELDS", "flux_box_explorer", "MOVING_DENSITIES",
            "continuity_explorer"]


# -- Lecture 11: flow matching ----------------------------------------------------------------

from .plotting import plot_trajectories  # noqa: E402


def path_explorer(paths: dict, times: Sequence[float], *, data=None, tracked: int = 8,
                  t: float = 0.0) -> FigureExplorer:
    """A time slider over several sets of precomputed paths side by side, each drawn as in
    :func:`~course_lib.plotting.plot_trajectories` (points coloured by ``log p_t`` on the
    panel's own scale, the first ``tracked`` paths traced up to ``t``).

    Args:
        paths: title -> ``(z_t, log_p)`` of shapes ``(len(times), n, 2)`` and
            ``(len(times), n)``, e.g. from ``CNF.trajectory``.
        data: optional data samples, drawn in light grey in every panel.

    Moving the slider only picks one of ``times``; nothing is integrated.
    """
    times = [float(v) for v in times]
    for name, (z_t, log_p) in paths.items():
        if len(times) < 2 or len(z_t) != len(times) or len(log_p) != len(times):
            raise ValueError(f"path_explorer: expected one time per row of the paths {name!r}, "
                             f"got {len(times)} times for {len(z_t)} rows")
    step = (times[-1] - times[0]) / (len(times) - 1)

    def draw(figure: Figure, t: float) -> None:
        index = int(np.argmin(np.abs(np.asarray(times) - t)))
        axes = figure.subplots(1, len(paths), squeeze=False)[0]
        for ax, (name, (z_t, log_p)) in zip(axes, paths.items()):
            plot_trajectories(z_t, log_p, times, index, ax=ax, tracked=tracked, data=data,
                              colorbar=False)
            ax.set_title(f"{name}\n$t$ = {times[index]:.2f}", fontsize="medium")
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")

    slider = widgets.FloatSlider(value=t, min=times[0], max=times[-1], step=step,
                                 description="t", continuous_update=False, readout_format=".2f")
    return FigureExplorer({"t": slider}, draw, figsize=(3.6 * len(paths), 4.0))


__all__ += ["path_explorer"]


# -- Lecture 10: continuous normalizing flows ---------------------------------------------------

from .jacobian import divergence_hutchinson, jacobian  # noqa: E402
from .plotting import (HUTCHINSON_COLOURS, hutchinson_variance_theory,  # noqa: E402
                       plot_hutchinson_variance, plot_log_density_paths, plot_trajectories)


def trajectory_explorer(paths, log_p, times: Sequence[float], *, data=None,
                        tracked: int = 8, t: float = 0.0) -> FigureExplorer:
    """A time slider over precomputed paths of a CNF (``CNF.trajectory``): the points ``z_t``
    coloured by ``log p_t(z_t)`` with the paths of ``tracked`` of them (left), and
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


__all__ += ["trajectory_explorer", "hutchinson_explorer"]


# -- Lecture 07: spline and residual flows ---------------------------------------------------

from .plotting import plot_residual_fold, plot_spline  # noqa: E402

__all__ += ["spline_explorer", "lipschitz_explorer"]


def spline_explorer(heights: Sequence[float] = (0.5, 2.5, 2.5, 0.5),
                    derivatives: Sequence[float] = (0.3, 3.0, 0.3), *,
                    bound: float = 3.0) -> FigureExplorer:
    """Reshape a rational-quadratic spline with ``K`` equal bin widths on ``[-B, B]``.

    One slider per bin height ``h_k`` (rescaled so that the heights sum to ``2B``, as the
    softmax of ``spline_parameters`` does) and one per interior slope ``delta_k``. The
    figure is :func:`plot_spline`: the spline and its inverse, its derivative, and the
    standard normal pushed through it with the mean log-determinant.
    """
    bins = len(heights)
    if bins < 2 or len(derivatives) != bins - 1:
        raise ValueError(f"spline_explorer: expected K >= 2 heights and K - 1 derivatives, "
                         f"got {len(heights)} heights and {len(derivatives)} derivatives")
    if min(heights) <= 0 or min(derivatives) <= 0:
        raise ValueError(f"spline_explorer: heights and derivatives must be positive, got "
                         f"{list(heights)} and {list(derivatives)}")
    widths = np.full(bins, 2 * bound / bins)
    controls = {f"h{k + 1}": _slider(f"h{k + 1}", h, 0.1, 4.0, 0.05)
                for k, h in enumerate(heights)}
    controls.update({f"delta{k + 1}": widgets.FloatLogSlider(
        value=v, base=10, min=-1.3, max=1.0, step=0.02, description=f"δ{k + 1}",
        continuous_update=False, readout_format=".2f") for k, v in enumerate(derivatives)})

    def draw(figure: Figure, **values) -> None:
        h = np.array([values[f"h{k + 1}"] for k in range(bins)])
        d = np.array([values[f"delta{k + 1}"] for k in range(bins - 1)])
        plot_spline(widths, h * (2 * bound / h.sum()), d, bound, axes=figure.subplots(1, 3))

    return FigureExplorer(controls, draw, figsize=(12.0, 3.8))


def lipschitz_explorer(c: float = 0.6, x: float = 1.0) -> FigureExplorer:
    """A residual map ``z + g(z)`` with ``g = c sin`` and a slider for its Lipschitz
    constant ``c``, and one for the point ``x`` to invert. The figure is
    :func:`plot_residual_fold`: the 1D curve (monotone for ``c < 1``, folding for
    ``c > 1``), the fixed-point iteration at ``x``, and the 2D version on a grid.
    """
    controls = {"c": _slider("c = Lip(g)", c, 0.1, 2.5, 0.05),
                "x": _slider("x", x, -4.0, 4.0, 0.1)}
    controls["c"].style = _WIDE_LABEL

    def draw(figure: Figure, c: float, x: float) -> None:
        plot_residual_fold(c, x, axes=figure.subplots(1, 3))

    return FigureExplorer(controls, draw, figsize=(13.0, 4.0))

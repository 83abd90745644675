"""Lecture 06: autoregressive flows."""
from __future__ import annotations

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from ..flows import MADE
from ..plotting import mask_paths, plot_dependency, plot_made_network
from .common import FigureExplorer

__all__ = ["made_explorer"]


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

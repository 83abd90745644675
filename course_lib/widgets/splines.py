"""Lecture 07: spline and residual flows."""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from ..plotting import plot_residual_fold, plot_spline
from .autoregressive import _WIDE_LABEL
from .common import FigureExplorer, _slider

__all__ = ["lipschitz_explorer", "spline_explorer"]


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

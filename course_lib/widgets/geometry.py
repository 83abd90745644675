"""Lecture 02: the Jacobian as local geometry."""
from __future__ import annotations

from typing import Callable

import numpy as np
from matplotlib.figure import Figure

from ..plotting import plot_grid_deformation, plot_linear_map, plot_pushed_gaussian
from .common import FigureExplorer, _slider

__all__ = ["invertibility_explorer", "matrix_explorer"]


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

    controls = {name: _slider(name, value, -4.0, 4.0, 0.1)
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

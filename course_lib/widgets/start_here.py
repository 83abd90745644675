"""Lecture 00: a first slider."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from ..flows import Affine
from ..model import NormalizingFlow
from ..plotting import density_1d
from .common import FigureExplorer, _slider

__all__ = ["stretch_explorer"]


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
        # the y-axis follows the taller of the two curves, so neither is cut off or flattened
        ax.set_ylim(0, 1.15 * max(pushed.max(), base.max()))
        ax.set_xlabel("$x$")
        ax.legend(loc="upper right", fontsize="small")

    return FigureExplorer({"a": _slider("a", 2.0, 0.25, 3.0, 0.05)}, draw, figsize=(8, 3.2))



"""Lecture 02: the Jacobian as local geometry."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..flows import LULinear
from ..flows.base import FlowInputError
from ..jacobian import jacobian
from ..model import NormalizingFlow
from .change_of_variables import plot_density_2d
from .common import _axes

__all__ = ["DET_CMAP", "DET_NORM", "FOLD_CMAP", "animate_grid_deformation", "image_area",
           "plot_grid_deformation", "plot_linear_map", "plot_local_linearisation",
           "plot_pushed_gaussian", "plot_pushforward", "polygon_area", "square_boundary"]


#: cells coloured by ``log10|det J|``: blue where ``f`` compresses, red where it expands;
#: dark grey where ``det J <= 0`` (the map folds there and is not invertible).
#: The cell edges are thin and translucent, so they outline the cells without hiding
#: the colour of the thin, compressed ones.
EDGE_STYLE = {"edgecolors": (0.0, 0.0, 0.0, 0.3), "linewidth": 0.2}
DET_CMAP = plt.get_cmap("RdBu_r").with_extremes(bad="0.25")
DET_NORM = colors.Normalize(vmin=-1.0, vmax=1.0)
FOLD_CMAP = colors.ListedColormap(["0.25"])


def polygon_area(points) -> float:
    """Area enclosed by a closed polygon with vertices ``points`` of shape ``(n, 2)``, in
    order (either orientation): the shoelace formula ``|sum_i x_i y_{i+1} - x_{i+1} y_i| / 2``."""
    p = np.asarray(points, dtype=float)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2)


def square_boundary(corner, side: float, n_per_side: int = 50,
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """``4 n_per_side`` points walking counter-clockwise around the square
    ``[c_1, c_1 + side] x [c_2, c_2 + side]`` with lower-left corner ``corner = c``."""
    s = torch.linspace(0.0, side, n_per_side + 1, dtype=dtype or torch.get_default_dtype())[:-1]
    zero, full = torch.zeros_like(s), torch.full_like(s, side)
    walk = torch.cat([torch.stack(p, dim=1) for p in
                      ((s, zero), (full, s), (side - s, full), (zero, side - s))])
    return walk + torch.as_tensor(corner, dtype=walk.dtype)


def image_area(f: Callable, corner, side: float, n_per_side: int = 200,
               dtype: torch.dtype | None = None) -> float:
    """Area of ``f(square)`` for a one-to-one map ``f`` of the plane: the shoelace area of
    the image of the square's boundary, drawn with ``n_per_side`` points on each side."""
    with torch.no_grad():
        edge = f(square_boundary(corner, side, n_per_side, dtype))
    return polygon_area(edge[0] if isinstance(edge, tuple) else edge)


def _map_points(f: Callable, points: np.ndarray) -> np.ndarray:
    """``f`` on NumPy points of shape ``(..., 2)`` (``f`` takes torch batches)."""
    z = torch.as_tensor(points.reshape(-1, 2), dtype=torch.get_default_dtype())
    with torch.no_grad():
        x = f(z)
    x = x[0] if isinstance(x, tuple) else x
    return x.numpy().astype(float).reshape(points.shape)


def _jacobians(f: Callable, points: np.ndarray) -> np.ndarray:
    z = torch.as_tensor(points.reshape(-1, 2), dtype=torch.get_default_dtype())
    return jacobian(f, z).numpy().astype(float).reshape(*points.shape[:-1], 2, 2)


def _grid(lim: float, n: int) -> np.ndarray:
    ticks = np.linspace(-lim, lim, n)
    return np.stack(np.meshgrid(ticks, ticks), axis=-1)


def _frame(ax: Axes, points: np.ndarray, margin: float = 0.08) -> None:
    lo, hi = points.reshape(-1, 2).min(axis=0), points.reshape(-1, 2).max(axis=0)
    pad = margin * (hi - lo).max()
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")


def plot_linear_map(J, *, ax: Axes | None = None, lim: float | None = None,
                    grid_lines: int = 9) -> Figure:
    """The unit square (dashed) and its image under ``x = J z``, a parallelogram of area
    ``|det J|`` spanned by the columns ``J e_1`` and ``J e_2`` (the arrows), over the image of
    a grid of ``[-2, 2]^2``. The title gives ``det J`` and the area by the shoelace formula."""
    ax = _axes(ax, figsize=(4.2, 4.2))
    J = np.asarray(J, dtype=float)
    ticks = np.linspace(-2.0, 2.0, grid_lines)
    for t in ticks:
        for line in (np.stack([np.full_like(ticks, t), ticks], 1),
                     np.stack([ticks, np.full_like(ticks, t)], 1)):
            image = line @ J.T
            ax.plot(image[:, 0], image[:, 1], color="0.75", linewidth=0.7)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    image = square @ J.T
    ax.fill(*image.T, color="tab:orange", alpha=0.45, label="image $J\\,[0,1]^2$")
    ax.plot(*np.vstack([square, square[:1]]).T, "--", color="black", linewidth=1,
            label="unit square")
    for column, name in ((J[:, 0], "$Je_1$"), (J[:, 1], "$Je_2$")):
        ax.annotate("", xy=column, xytext=(0, 0),
                    arrowprops={"arrowstyle": "->", "color": "tab:red", "linewidth": 1.5})
        ax.text(*(1.08 * column), name, color="tab:red", ha="center", va="center")
    det = float(np.linalg.det(J))
    reach = lim or max(2.0, 1.25 * np.abs(image).max())
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(f"det J = {det:.2f}, area of the image = {polygon_area(image):.2f}")
    ax.legend(loc="lower right", fontsize="small")
    return ax.figure


def plot_pushed_gaussian(J, *, ax: Axes | None = None, lim: float = 6.0, samples: int = 300,
                         seed: int = 0) -> Figure:
    """``z ~ N(0, I)`` pushed by ``x = J z``: the density from the change of variables,
    ``p_X(x) = p_Z(J^{-1} x) / |det J|`` (a ``NormalizingFlow`` with one ``LULinear``), with
    samples on top. For ``det J = 0`` there is no density: the samples fall on a line (or a
    point) and the panel says so."""
    ax = _axes(ax, figsize=(4.2, 4.2))
    J = torch.as_tensor(np.asarray(J, dtype=float), dtype=torch.float64)
    z = torch.randn(samples, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = (z @ J.T).numpy()
    det = float(torch.linalg.det(J))
    window = (-lim, lim)
    model = None
    if abs(det) > 1e-9:
        try:
            model = NormalizingFlow(2, [LULinear(2, weight=J)]).double()
        except FlowInputError:
            model = None
    if model is None:
        ax.scatter(x[:, 0], x[:, 1], s=4, color="tab:blue", alpha=0.5)
        ax.text(0.5, 0.9, "collapse: no density\n(det J = 0, all mass on a set of area 0)",
                transform=ax.transAxes, ha="center", va="top", color="tab:red",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "tab:red"})
        ax.set_xlim(*window)
        ax.set_ylim(*window)
        ax.set_aspect("equal")
        ax.set_title("pushed samples of $N(0, I)$")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        return ax.figure
    peak = 1 / (2 * np.pi * abs(det))
    plot_density_2d(model.log_prob, window, window, samples=x, ax=ax, dtype=torch.float64,
                    resolution=120,
                    title=f"$p_X(x) = p_Z(J^{{-1}}x)/|\\det J|$, peak {peak:.3f}")
    return ax.figure


def plot_local_linearisation(f: Callable, z0, side: float, *,
                             axes: Sequence[Axes] | None = None) -> Figure:
    """A small square at ``z0`` (left) and, on the right, its image under ``f`` (filled)
    next to its image under the linearisation ``f(z0) + J_f(z0)(z - z0)`` (dashed).
    The titles give the exact image area and ``|det J_f(z0)|`` times the square's area."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(8.4, 3.8), layout="constrained")[1]
    z0 = np.asarray(z0, dtype=float)
    corner = z0 - side / 2
    edge = square_boundary(corner, side, 60).numpy().astype(float)
    J0 = _jacobians(f, z0[None])[0]
    x0 = _map_points(f, z0[None])[0]
    curved = _map_points(f, edge)
    straight = x0 + (edge - z0) @ J0.T
    axes[0].fill(*edge.T, color="tab:blue", alpha=0.4)
    axes[0].plot(*z0, "k.")
    _frame(axes[0], edge, margin=0.5)
    axes[0].set_title(f"square of side {side:g} at $z_0$, area {side ** 2:.4f}")
    axes[0].set_xlabel("$z_1$")
    axes[0].set_ylabel("$z_2$")
    axes[1].fill(*curved.T, color="tab:orange", alpha=0.45, label="image under $f$")
    axes[1].plot(*np.vstack([straight, straight[:1]]).T, "--", color="black",
                 label="image under the linearisation")
    axes[1].plot(*x0, "k.")
    _frame(axes[1], np.vstack([curved, straight]), margin=0.3)
    det = abs(float(np.linalg.det(J0)))
    axes[1].set_title(f"area {polygon_area(curved):.4f}; "
                      f"$|\\det J_f(z_0)|\\,h^2$ = {det * side ** 2:.4f}")
    axes[1].set_xlabel("$x_1$")
    axes[1].set_ylabel("$x_2$")
    axes[1].legend(loc="best", fontsize="small")
    return axes[0].figure


def _deformation(f: Callable, lim: float, cells: int):
    """Nodes of a ``cells x cells`` grid of ``[-lim, lim]^2``, their images, and the
    Jacobian of ``f`` at the centre of every cell."""
    nodes = _grid(lim, cells + 1)
    centres = (nodes[:-1, :-1] + nodes[1:, 1:]) / 2
    return nodes, _map_points(f, nodes), _jacobians(f, centres)


def _draw_deformation(ax: Axes, nodes, images, jacobians, t: float):
    """Draw ``(1 - t) z + t f(z)``: its Jacobian is ``(1 - t) I + t J_f(z)``."""
    moved = (1 - t) * nodes + t * images
    det = np.linalg.det((1 - t) * np.eye(2) + t * jacobians)
    log_det = np.ma.log10(np.ma.masked_less_equal(det, 0))
    mesh = ax.pcolormesh(moved[..., 0], moved[..., 1], log_det, cmap=DET_CMAP, norm=DET_NORM,
                         shading="flat", **EDGE_STYLE)
    if bool((det <= 0).any()):
        # folded cells lie under other cells of the image; draw them again on top
        ax.pcolormesh(moved[..., 0], moved[..., 1], np.ma.masked_greater(det, 0),
                      cmap=FOLD_CMAP, shading="flat", edgecolors="none")
    return mesh


def plot_grid_deformation(f: Callable, *, lim: float = 3.0, cells: int = 24, t: float = 1.0,
                          ax: Axes | None = None, colorbar: bool = True,
                          title: str | None = None) -> Figure:
    """The image of a grid of ``[-lim, lim]^2`` under ``f`` (or under ``(1 - t) z + t f(z)``),
    every cell coloured by ``log10|det J|`` at its centre: red cells grew, blue cells
    shrank, dark grey cells have ``det J <= 0`` (the map folds there). The default title
    gives the smallest ``det J`` over the cells.

    ``f`` maps torch batches ``(n, 2) -> (n, 2)``; its Jacobian comes from autograd.
    """
    ax = _axes(ax, figsize=(5.0, 4.2))
    nodes, images, jacobians = _deformation(f, lim, cells)
    mesh = _draw_deformation(ax, nodes, images, jacobians, t)
    _frame(ax, (1 - t) * nodes + t * images)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=r"$\log_{10}|\det J|$", extend="both")
    if title is None:
        smallest = float(np.linalg.det((1 - t) * np.eye(2) + t * jacobians).min())
        verdict = "folds on the grey cells" if smallest <= 0 else "no fold on the grid"
        title = f"smallest det J = {smallest:.2f}: {verdict}"
    ax.set_title(title)
    return ax.figure


def animate_grid_deformation(f: Callable, *, lim: float = 3.0, cells: int = 20,
                             frames: int = 13, figsize=(7.2, 5.8), dpi: int = 100):
    """A ``FuncAnimation`` of the grid moving from ``z`` (``t = 0``) to ``f(z)`` (``t = 1``)
    along ``(1 - t) z + t f(z)``, coloured as in :func:`plot_grid_deformation`.

    The figure is closed after the animation is built, so a notebook shows only the
    animation (``show_animation(anim)``).
    """
    nodes, images, jacobians = _deformation(f, lim, cells)
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    mesh = _draw_deformation(ax, nodes, images, jacobians, 0.0)
    figure.colorbar(mesh, ax=ax, label=r"$\log_{10}|\det J|$", extend="both")
    _frame(ax, np.concatenate([nodes, images]))
    ax.set_xlabel("first coordinate")
    ax.set_ylabel("second coordinate")

    def draw(i: int):
        t = i / (frames - 1)
        for artist in list(ax.collections):
            artist.remove()
        _draw_deformation(ax, nodes, images, jacobians, t)
        ax.set_title(f"$(1-t)\\,z + t\\,f(z)$, t = {t:.2f}")
        return ax.collections

    animation = FuncAnimation(figure, draw, frames=frames, interval=250)
    plt.close(figure)
    return animation


def plot_pushforward(f: Callable, *, lim: float = 3.0, cells: int = 60, samples: int = 1500,
                     seed: int = 0, axes: Sequence[Axes] | None = None) -> Figure:
    """The pushforward ``f_# p_Z`` of ``p_Z = N(0, I)`` in three panels: samples of ``z``,
    the same samples moved by ``f``, and the density ``p_X(f(z)) = p_Z(z) / |det J_f(z)|``
    painted on the image of a grid (the forward form: no inverse of ``f`` needed)."""
    if axes is None:
        axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")[1]
    z = torch.randn(samples, 2, generator=torch.Generator().manual_seed(seed))
    z = z.to(torch.get_default_dtype()).numpy()
    x = _map_points(f, z)
    nodes, images, jacobians = _deformation(f, lim, cells)
    centres = (nodes[:-1, :-1] + nodes[1:, 1:]) / 2
    p_z = np.exp(-0.5 * (centres ** 2).sum(-1)) / (2 * np.pi)
    p_x = np.ma.masked_invalid(p_z / np.abs(np.linalg.det(jacobians)))
    axes[0].scatter(z[:, 0], z[:, 1], s=3, alpha=0.4, color="tab:blue", linewidths=0)
    axes[0].set_title("$z \\sim p_Z = N(0, I)$")
    _frame(axes[0], nodes)
    axes[1].scatter(x[:, 0], x[:, 1], s=3, alpha=0.4, color="tab:orange", linewidths=0)
    axes[1].set_title("$x = f(z)$: samples of $f_\\# p_Z$")
    _frame(axes[1], images)
    mesh = axes[2].pcolormesh(images[..., 0], images[..., 1], p_x, cmap="viridis",
                              shading="flat")
    axes[2].figure.colorbar(mesh, ax=axes[2], label="density")
    axes[2].set_title("$p_X(f(z)) = p_Z(z)\\,/\\,|\\det J_f(z)|$")
    _frame(axes[2], images)
    for ax, name in zip(axes, "zxx"):
        ax.set_xlabel(f"${name}_1$")
        ax.set_ylabel(f"${name}_2$")
    return axes[0].figure

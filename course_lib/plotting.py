"""Figures of the lectures, grouped by the lecture that introduces them.

Every function draws into ``ax`` (or ``axes``) when given one, so the same picture can
live in a notebook cell or inside a widget, and returns the ``Figure``. Without ``ax`` it
opens a new pyplot figure, which the notebook's inline backend shows when the cell ends.

Densities on a grid are evaluated without gradients; a 1D model is anything with
``log_prob`` on batches of shape ``(batch, 1)``, such as ``NormalizingFlow(1, [...])``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .flows import LULinear
from .flows import AffineCoupling
from .flows.base import FlowInputError
from .jacobian import jacobian
from .model import NormalizingFlow

__all__ = ["model_dtype", "density_1d", "plot_pushed_density", "plot_base_and_pushed",
           "plot_equal_mass", "plot_density_2d"]

SAMPLE_STYLE = {"color": "tab:blue", "alpha": 0.35}
DENSITY_STYLE = {"color": "black", "linewidth": 2}


def _axes(ax: Axes | None, figsize=None) -> Axes:
    if ax is not None:
        return ax
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a model's parameters or buffers (the default dtype if it has none)."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def density_1d(model: torch.nn.Module, x) -> np.ndarray:
    """``p_X(x) = exp(log_prob(x))`` of a one-dimensional model at the points ``x`` (any shape)."""
    points = np.asarray(x, dtype=float)
    with torch.no_grad():
        batch = torch.as_tensor(points.reshape(-1, 1), dtype=model_dtype(model))
        return model.log_prob(batch).exp().numpy().astype(float).reshape(points.shape)


# -- Lecture 01: change of variables in 1D ------------------------------------------------

def plot_pushed_density(samples, grid, density, *, ax: Axes | None = None, bins: int = 60,
                        label: str = r"$p_X(x)$ (formula)", sample_label: str = "samples of $x$",
                        title: str | None = None) -> Figure:
    """A histogram of pushed samples against the density the formula predicts.

    The histogram is normalised by the total number of samples, not by the number that
    fall inside ``grid``'s range, so its bars estimate ``p_X`` even when part of the
    mass lies outside the window.

    Args:
        samples: samples of ``x``, any shape (flattened).
        grid: increasing points where ``density`` was evaluated; also the window.
        density: ``p_X`` at ``grid``.
    """
    ax = _axes(ax)
    samples = np.asarray(samples, dtype=float).ravel()
    grid, density = np.asarray(grid, dtype=float), np.asarray(density, dtype=float)
    edges = np.linspace(grid[0], grid[-1], bins + 1)
    counts, _ = np.histogram(samples, bins=edges)
    ax.stairs(counts / (samples.size * np.diff(edges)), edges, fill=True, label=sample_label,
              **SAMPLE_STYLE)
    ax.plot(grid, density, label=label, **DENSITY_STYLE)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    return ax.figure


def plot_base_and_pushed(z_grid, base_density, x_grid, pushed_density, *, z_samples=None,
                         x_samples=None, axes: Sequence[Axes] | None = None, bins: int = 60,
                         titles: tuple[str, str] = (r"base $p_Z(z)$", r"pushed $p_X(x)$"),
                         ) -> Figure:
    """Two panels side by side: the base density of ``z`` and the density of ``x = f(z)``,
    each with a histogram of samples when they are given."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")[1]
    for ax, grid, density, samples, name in ((axes[0], z_grid, base_density, z_samples, "z"),
                                             (axes[1], x_grid, pushed_density, x_samples, "x")):
        if samples is None:
            ax.plot(grid, density, **DENSITY_STYLE)
            ax.set_xlim(grid[0], grid[-1])
            ax.set_ylabel("density")
        else:
            plot_pushed_density(samples, grid, density, ax=ax, bins=bins,
                                label="formula", sample_label=f"samples of ${name}$")
        ax.set_xlabel(f"${name}$")
    axes[0].set_title(titles[0])
    axes[1].set_title(titles[1])
    return axes[0].figure


def _mass(density: Callable, lo: float, hi: float, n: int = 4001) -> float:
    grid = np.linspace(lo, hi, n)
    return float(np.trapezoid(density(grid), grid))


def plot_equal_mass(f: Callable, p_z: Callable, p_x: Callable, z_interval: tuple[float, float], *,
                    z_range: tuple[float, float] = (-4.0, 4.0),
                    x_range: tuple[float, float] | None = None,
                    axes: Sequence[Axes] | None = None) -> Figure:
    """``p_Z(z) dz = p_X(x) dx``: an interval of ``z`` and its image under ``f``, shaded.

    The two shaded areas are the same probability, although the intervals have
    different lengths and the curves different heights; each panel's title states its
    area (by the trapezoidal rule).

    Args:
        f: the monotone map ``x = f(z)`` on NumPy arrays.
        p_z, p_x: the two densities on NumPy arrays.
        z_interval: the interval ``[z0, z1]`` to shade.
        z_range, x_range: the windows; ``x_range`` defaults to the image of ``z_range``.
    """
    z0, z1 = sorted(z_interval)
    x0, x1 = sorted((float(f(np.array(z0))), float(f(np.array(z1)))))
    if x_range is None:
        x_range = tuple(sorted(float(f(np.array(v))) for v in z_range))
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")[1]
    panels = ((axes[0], p_z, z_range, (z0, z1), "z", "tab:blue"),
              (axes[1], p_x, x_range, (x0, x1), "x", "tab:orange"))
    for ax, density, window, (lo, hi), name, color in panels:
        grid = np.linspace(*window, 400)
        ax.plot(grid, density(grid), **DENSITY_STYLE)
        shaded = np.linspace(lo, hi, 200)
        ax.fill_between(shaded, density(shaded), color=color, alpha=0.5)
        ax.set_xlim(*window)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(f"${name}$")
        ax.set_title(f"$\\int_{{{lo:.3g}}}^{{{hi:.3g}}} p_{name.upper()}\\,d{name}$"
                     f" = {_mass(density, lo, hi):.4f}")
    return axes[0].figure


# -- Densities in the plane (from lecture 01 on) ------------------------------------------

def plot_density_2d(log_prob: Callable[[torch.Tensor], torch.Tensor],
                    xlim: tuple[float, float], ylim: tuple[float, float], *, samples=None,
                    resolution: int = 200, ax: Axes | None = None, dtype: torch.dtype | None = None,
                    title: str | None = None, cmap: str = "viridis") -> Figure:
    """A density in the plane as a colour map, with samples on top when given.

    Args:
        log_prob: maps points of shape ``(n, 2)`` to ``log p(x)`` of shape ``(n,)``
            (``-inf`` outside the support is fine).
        xlim, ylim: the window.
        samples: optional points of shape ``(n, 2)``.
        dtype: dtype of the grid handed to ``log_prob`` (default: torch's default).
    """
    ax = _axes(ax, figsize=(4.6, 3.8))
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1),
                             dtype=dtype or torch.get_default_dtype())
    with torch.no_grad():
        density = log_prob(points).exp().reshape(gx.shape).numpy()
    mesh = ax.pcolormesh(gx, gy, density, cmap=cmap, shading="auto")
    ax.figure.colorbar(mesh, ax=ax, label="density")
    if samples is not None:
        samples = np.asarray(samples, dtype=float)
        ax.scatter(samples[:, 0], samples[:, 1], s=2, color="white", alpha=0.6, linewidths=0)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax.figure


# -- Lecture 02: the Jacobian as local geometry --------------------------------------------

__all__ += ["polygon_area", "square_boundary", "image_area", "plot_linear_map",
            "plot_pushed_gaussian", "plot_local_linearisation", "plot_grid_deformation",
            "animate_grid_deformation", "plot_pushforward"]

#: cells coloured by ``log10|det J|``: blue where ``f`` compresses, red where it expands;
#: dark grey where ``det J <= 0`` (the map folds there and is not invertible).
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
                         edgecolors="black", linewidth=0.25, shading="flat")
    if bool((det <= 0).any()):
        # folded cells lie under other cells of the image; draw them again on top
        ax.pcolormesh(moved[..., 0], moved[..., 1], np.ma.masked_greater(det, 0),
                      cmap=FOLD_CMAP, edgecolors="black", linewidth=0.25, shading="flat")
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
                             frames: int = 13, figsize=(4.4, 3.8), dpi: int = 72):
    """A ``FuncAnimation`` of the grid moving from ``z`` (``t = 0``) to ``f(z)`` (``t = 1``)
    along ``(1 - t) z + t f(z)``, coloured as in :func:`plot_grid_deformation`.

    The figure is closed after the animation is built, so a notebook shows only the
    animation (``HTML(anim.to_jshtml())``).
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


# -- Lecture 03: composing flows ------------------------------------------------------------

def flow_stages(flow: torch.nn.Module, z: torch.Tensor) -> list[torch.Tensor]:
    """The points ``z_0 = z, z_1 = f_1(z_0), ..., z_K = f_K(z_{K-1}) = x`` of a stack.

    ``flow`` is a ``NormalizingFlow`` or a ``Compose`` (its layers in order from latent
    to data) or a single flow (one stage). Computed without gradients.
    """
    layers = flow.flows if hasattr(flow, "flows") else [flow]
    stages = [z]
    with torch.no_grad():
        for layer in layers:
            stages.append(layer(stages[-1])[0])
    return stages


def _window(points: np.ndarray, quantile: float = 0.995, margin: float = 0.1):
    """A square window around the central ``quantile`` of the points, centred on them."""
    lo = np.quantile(points.reshape(-1, 2), 1 - quantile, axis=0)
    hi = np.quantile(points.reshape(-1, 2), quantile, axis=0)
    centre, half = (lo + hi) / 2, (1 + margin) * (hi - lo).max() / 2
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def animate_layers(flow: torch.nn.Module, z: torch.Tensor, *, frames_per_layer: int = 5,
                   xlim: tuple[float, float] | None = None,
                   ylim: tuple[float, float] | None = None, figsize=(4.0, 4.0), dpi: int = 60,
                   interval: int = 120, ax: Axes | None = None) -> FuncAnimation:
    """Samples of the base passing through a stack, one layer after the other.

    Between ``z_{k-1}`` and ``z_k = f_k(z_{k-1})`` the points move along straight lines
    in ``frames_per_layer`` steps; each point keeps the colour of its angle in the base,
    so one can follow where a region of the Gaussian ends up. The window (the central
    99.5 % of all stages unless ``xlim``, ``ylim`` are given) stays fixed. The figure is
    closed once the animation is built, so a notebook shows only the animation. Given
    ``ax``, the points move in that axes and the rest of its figure (a density beside it,
    data drawn underneath) stays as it is in every frame.
    """
    if not isinstance(frames_per_layer, int) or frames_per_layer < 1:
        raise ValueError(f"frames_per_layer must be a positive integer, got {frames_per_layer!r}")
    stages = np.stack([s.numpy().astype(float) for s in flow_stages(flow, z)])
    n_layers = len(stages) - 1
    if xlim is None or ylim is None:
        auto_x, auto_y = _window(stages)
        xlim, ylim = xlim or auto_x, ylim or auto_y
    angle = np.arctan2(stages[0][:, 1], stages[0][:, 0])
    if ax is None:
        figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    else:
        figure = ax.figure
    dots = ax.scatter(stages[0][:, 0], stages[0][:, 1], c=angle, cmap="hsv", s=4,
                      linewidths=0, alpha=0.8)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("first coordinate")
    ax.set_ylabel("second coordinate")
    title = ax.set_title("")

    def draw(i: int):
        k, step = divmod(i, frames_per_layer)
        if k >= n_layers:
            k, t = n_layers - 1, 1.0
        else:
            t = step / frames_per_layer
        points = (1 - t) * stages[k] + t * stages[k + 1]
        dots.set_offsets(points)
        done = k + (t == 1.0)
        if t not in (0.0, 1.0):
            title.set_text(f"layer {k + 1} of {n_layers} acting")
        elif done == 0:
            title.set_text("$z_0$: samples of the base")
        else:
            title.set_text(f"$z_{{{done}}}$: after layer {done} of {n_layers}")
        return dots, title

    animation = FuncAnimation(figure, draw, frames=n_layers * frames_per_layer + 1,
                              interval=interval, blit=False)
    plt.close(figure)
    return animation


def log_mass_on_window(log_density: Callable, xlim: tuple[float, float],
                       ylim: tuple[float, float], resolution: int = 200,
                       dtype: torch.dtype | None = None) -> float:
    """``log`` of the Riemann sum of ``exp(log_density)`` over the window, on the same grid
    as :func:`plot_density_2d`: about 0 for a density whose mass lies inside the window,
    and the log-normaliser ``log Z`` of a density known up to a constant."""
    dtype = dtype or torch.get_default_dtype()
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=dtype)
    with torch.no_grad():
        values = log_density(points)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    return float(torch.logsumexp(values, 0)) + float(np.log(cell))


def plot_model_and_target(model: torch.nn.Module, xlim: tuple[float, float],
                          ylim: tuple[float, float], *, log_target: Callable | None = None,
                          samples=None, resolution: int = 150,
                          axes: Sequence[Axes] | None = None,
                          titles: tuple[str, str] | None = None) -> Figure:
    """What a model should match (left) beside the model's density ``exp(model.log_prob)``
    (right), on the same window.

    Give exactly one of ``log_target`` (a log-density, possibly unnormalised: it is
    normalised numerically on the window so both colour scales mean the same) or
    ``samples`` of the data (shown as a normalised 2D histogram).
    """
    if (log_target is None) == (samples is None):
        raise ValueError("plot_model_and_target: give exactly one of log_target (a "
                         "log-density) or samples (data), got "
                         f"{'both' if log_target is not None else 'neither'}")
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9.6, 3.8), layout="constrained")[1]
    dtype = model_dtype(model)
    if log_target is not None:
        log_z = log_mass_on_window(log_target, xlim, ylim, resolution, dtype)
        left = titles[0] if titles else "target (normalised on the window)"
        plot_density_2d(lambda x: log_target(x) - log_z, xlim, ylim, ax=axes[0],
                        resolution=resolution, dtype=dtype, title=left)
    else:
        points = np.asarray(samples, dtype=float)
        *_, image = axes[0].hist2d(points[:, 0], points[:, 1], bins=resolution // 2,
                                   range=[xlim, ylim], density=True, cmap="viridis")
        axes[0].figure.colorbar(image, ax=axes[0], label="density")
        axes[0].set_aspect("equal")
        axes[0].set_xlabel("$x_1$")
        axes[0].set_ylabel("$x_2$")
        axes[0].set_title(titles[0] if titles else f"data ({len(points)} samples)")
    plot_density_2d(model.log_prob, xlim, ylim, ax=axes[1], resolution=resolution, dtype=dtype,
                    title=titles[1] if titles else "model density $p_X(x)$")
    return axes[0].figure


__all__ += ["flow_stages", "animate_layers", "log_mass_on_window", "plot_model_and_target"]


# -- Lecture 04: coupling layers ------------------------------------------------------------

def plot_jacobian_matrix(J, *, split: int | None = None, ax: Axes | None = None,
                         title: str | None = None, decimals: int = 2) -> Figure:
    """A Jacobian as a table of coloured cells, ``J[i, j] = dx_i / dz_j`` in row ``i`` and
    column ``j``, with its value written in each cell. Entries that are exactly 0 are left
    white and marked ``0``: the structure that makes a determinant cheap is what the eye
    should find. ``split`` draws the block boundary after the first ``split`` rows and
    columns (between ``z_a`` and ``z_b`` of a coupling layer that copies the first half).

    Args:
        J: a ``(d, d)`` matrix, or a batch of one ``(1, d, d)`` as ``jacobian`` returns it.
    """
    J = np.asarray(J.detach() if isinstance(J, torch.Tensor) else J, dtype=float)
    if J.ndim == 3 and J.shape[0] == 1:
        J = J[0]
    if J.ndim != 2 or J.shape[0] != J.shape[1]:
        raise ValueError(f"plot_jacobian_matrix: expected a square matrix (d, d) or (1, d, d), "
                         f"got shape {J.shape}")
    d = J.shape[0]
    ax = _axes(ax, figsize=(0.9 * d + 1.6, 0.9 * d + 0.8))
    reach = max(float(np.abs(J).max()), 1e-12)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    ax.imshow(np.ma.masked_equal(J, 0.0), cmap=cmap, vmin=-reach, vmax=reach)
    for (i, j), value in np.ndenumerate(J):
        text = "0" if value == 0 else f"{value:.{decimals}f}"
        # dark cells at either end of the colour map need light text
        color = "0.5" if value == 0 else ("white" if abs(value) > 0.6 * reach else "black")
        ax.text(j, i, text, ha="center", va="center", fontsize="small", color=color)
    if split is not None:
        for line in (ax.axhline, ax.axvline):
            line(split - 0.5, color="black", linewidth=1.5)
    ax.set_xticks(range(d), [f"$z_{{{j + 1}}}$" for j in range(d)])
    ax.set_yticks(range(d), [f"$x_{{{i + 1}}}$" for i in range(d)])
    ax.xaxis.tick_top()
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax.figure


def _moved_coordinates(before: np.ndarray, after: np.ndarray) -> list[int]:
    changed = ~np.isclose(after, before, rtol=1e-12, atol=1e-12)
    return [int(i) + 1 for i in np.flatnonzero(changed.any(axis=0))]


def plot_flow_stages(flow: torch.nn.Module, z: torch.Tensor, *,
                     stages: Sequence[int] | None = None, axes: Sequence[Axes] | None = None,
                     xlim: tuple[float, float] | None = None,
                     ylim: tuple[float, float] | None = None) -> Figure:
    """Samples of the base after chosen layers of a stack, side by side (stage 0 is the
    base, stage ``k`` the points after layer ``k``; default: all stages).

    Points keep the colour of their angle in the base, as in :func:`animate_layers`, and
    every panel is titled with the coordinates its layer moved, so one sees a coupling
    layer move only its own half. All panels share one window.
    """
    points = [s.numpy().astype(float) for s in flow_stages(flow, z)]
    stages = list(range(len(points))) if stages is None else list(stages)
    if not stages or any(not 0 <= k < len(points) for k in stages):
        raise ValueError(f"expected stages among 0..{len(points) - 1} (a stack of "
                         f"{len(points) - 1} layer(s)), got {stages}")
    if axes is None:
        axes = plt.subplots(1, len(stages), figsize=(3.2 * len(stages), 3.4),
                            layout="constrained", squeeze=False)[1][0]
    if xlim is None or ylim is None:
        auto_x, auto_y = _window(np.stack([points[k] for k in stages]))
        xlim, ylim = xlim or auto_x, ylim or auto_y
    angle = np.arctan2(points[0][:, 1], points[0][:, 0])
    for ax, k in zip(axes, stages):
        ax.scatter(points[k][:, 0], points[k][:, 1], c=angle, cmap="hsv", s=3, linewidths=0,
                   alpha=0.8)
        if k == 0:
            ax.set_title("$z_0$: samples of the base")
        else:
            moved = _moved_coordinates(points[k - 1], points[k])
            what = ("moved nothing" if not moved else
                    f"moved coordinate{'s' if len(moved) > 1 else ''} "
                    + ", ".join(map(str, moved)))
            ax.set_title(f"after layer {k}: {what}")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xlabel("first coordinate")
    axes[0].set_ylabel("second coordinate")
    return axes[0].figure


def plot_bounded_log_scale(scale_bound: float = 3.0, *,
                           s_raw_range: tuple[float, float] = (-10.0, 10.0),
                           ax: Axes | None = None) -> Figure:
    """The bounded log-scale of ``AffineCoupling``, ``s = B tanh(s_raw / B)``, against the
    unbounded ``s = s_raw``: equal near 0, never beyond ``+-B``, so the scale ``exp(s)``
    stays between ``exp(-B)`` and ``exp(B)``."""
    ax = _axes(ax, figsize=(5.0, 3.4))
    layer = AffineCoupling(2, scale_bound=scale_bound)
    s_raw = torch.linspace(*s_raw_range, 401, dtype=torch.float64)
    with torch.no_grad():
        s = layer.log_scale(s_raw)
    ax.plot(s_raw, s_raw, "--", color="gray", label="unbounded: $s = s_{raw}$")
    ax.plot(s_raw, s, color="tab:blue", linewidth=2,
            label=f"bounded: $s = {scale_bound:g}\\,\\tanh(s_{{raw}}/{scale_bound:g})$")
    for level in (-scale_bound, scale_bound):
        ax.axhline(level, color="tab:red", linestyle=":", linewidth=1)
    ax.set_xlim(*s_raw_range)
    ax.set_ylim(s_raw_range[0] / 2, s_raw_range[1] / 2)
    ax.set_xlabel("network output $s_{raw}$")
    ax.set_ylabel("log-scale $s$")
    ax.set_title(f"scale $e^s$ stays within [{np.exp(-scale_bound):.3f}, "
                 f"{np.exp(scale_bound):.1f}]")
    ax.legend(loc="upper left", fontsize="small")
    return ax.figure


__all__ += ["plot_jacobian_matrix", "plot_flow_stages", "plot_bounded_log_scale"]


# -- Lecture 06: autoregressive flows -------------------------------------------------------

from matplotlib.collections import LineCollection  # noqa: E402

#: cells of a dependency matrix: no dependency; allowed by the order but not connected;
#: connected
DEPENDENCY_CMAP = colors.ListedColormap(["white", "#f7d9b5", "tab:blue"])


def mask_paths(made: torch.nn.Module) -> torch.Tensor:
    """How many paths through a MADE's masks lead from input ``x_j`` to the outputs of
    variable ``i``: an integer matrix of shape ``(d, d)``, row ``i``, column ``j``.

    Entry ``(b, a)`` of a product of 0/1 masks ``M_{L+1} ... M_1`` counts the chains of
    kept weights from unit ``a`` of the input to unit ``b`` of the output. Output ``i``
    can depend on ``x_j`` only if this count is positive; MADE's degree rule makes it
    zero unless ``x_j`` comes strictly before ``x_i`` in the order. All ``P`` outputs of
    a variable share its degree, hence its mask row; row ``i`` counts paths to the first.
    """
    paths = None
    for mask in made.masks:
        mask = mask.to(torch.float64)
        paths = mask if paths is None else mask @ paths
    d, p = made.dim, made.params_per_dim
    return paths.reshape(d, p, d)[:, 0, :].round().long()


def _variable_labels(symbol: str, indices) -> list[str]:
    return [f"${symbol}_{{{int(k) + 1}}}$" for k in indices]


def plot_dependency(matrix, *, order=None, in_order: bool = True, ax: Axes | None = None,
                    title: str | None = None, annotate: bool = False, row_symbol: str = "x",
                    col_symbol: str = "z") -> Figure:
    """Which output depends on which input: cell ``(i, j)`` is filled when ``matrix[i, j]``
    is not 0 (a Jacobian entry, or a count of :func:`mask_paths`).

    With ``order`` (the variables in generation order, counted from 0 as in
    ``MADE.order``) rows and columns are listed in that order (unless ``in_order`` is
    False), so an autoregressive map fills a lower triangle. Cells the order allows
    (column strictly before row) that are still empty are shaded light: a dependency the
    map could have but does not. Variables are labelled from 1, as in the formulas.
    ``annotate`` writes the values.
    """
    values = np.asarray(matrix.detach() if isinstance(matrix, torch.Tensor) else matrix)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"plot_dependency: expected a square matrix (d, d), got shape "
                         f"{values.shape}")
    d = values.shape[0]
    generation = np.arange(d) if order is None else np.asarray(order, dtype=int)
    if sorted(generation.tolist()) != list(range(d)):
        raise ValueError(f"plot_dependency: expected order to be a permutation of 0..{d - 1}, "
                         f"got {generation.tolist()}")
    index = generation if in_order else np.arange(d)
    shown = values[np.ix_(index, index)]
    cells = 2 * (shown != 0).astype(int)
    if order is not None:
        position = np.empty(d, dtype=int)
        position[generation] = np.arange(d)
        earlier = position[index][None, :] < position[index][:, None]
        cells[earlier & (cells == 0)] = 1
    ax = _axes(ax, figsize=(0.55 * d + 1.4, 0.55 * d + 1.0))
    ax.imshow(cells, cmap=DEPENDENCY_CMAP, vmin=0, vmax=2)
    if annotate:
        for (i, j), value in np.ndenumerate(shown):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize="small",
                    color="white" if value != 0 else "0.55")
    ax.set_xticks(range(d), _variable_labels(col_symbol, index))
    ax.set_yticks(range(d), _variable_labels(row_symbol, index))
    ax.set_xticks(np.arange(d + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(d + 1) - 0.5, minor=True)
    ax.tick_params(which="minor", length=0)
    ax.grid(False)
    ax.grid(which="minor", color="0.8", linewidth=0.8)
    ax.xaxis.tick_top()
    if title:
        ax.set_title(title, fontsize="medium")
    return ax.figure


def _made_layers(made: torch.nn.Module):
    """Degrees of every layer and the masks between them, with one output unit per variable."""
    p = made.params_per_dim
    degrees = [deg.numpy() for deg in made.degrees[:-1]] + [made.degrees[-1][::p].numpy()]
    masks = [m.numpy() for m in made.masks[:-1]] + [made.masks[-1][::p].numpy()]
    return degrees, masks


def _unit_positions(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def plot_made_network(made: torch.nn.Module, *, ax: Axes | None = None,
                      title: str | None = None) -> Figure:
    """A MADE drawn as a network: inputs at the bottom, hidden layers above, one output
    unit per variable on top (standing for its ``P`` outputs, e.g. ``(mu_i, s_i)``), and a
    line for every weight its mask keeps. Each unit shows its degree ``m``: input ``x_j``
    has the position of ``j`` in the order (from 1), a hidden unit any of ``1..d-1``.
    A weight into a hidden unit is kept when ``m_out >= m_in``, into an output when
    ``m_out > m_in``.
    """
    ax = _axes(ax, figsize=(5.2, 4.2))
    degrees, masks = _made_layers(made)
    d = made.dim
    norm = colors.Normalize(vmin=0.5, vmax=d + 0.5)
    cmap = plt.get_cmap("viridis", d)
    segments = []
    for level, mask in enumerate(masks):
        x_in, x_out = _unit_positions(mask.shape[1]), _unit_positions(mask.shape[0])
        for out, inp in zip(*np.nonzero(mask)):
            segments.append([(x_in[inp], level), (x_out[out], level + 1)])
    ax.add_collection(LineCollection(segments, colors="0.55", linewidths=0.7, alpha=0.7))
    size = 260 if max(len(deg) for deg in degrees) <= 12 else 120
    for level, deg in enumerate(degrees):
        xs = _unit_positions(len(deg))
        ax.scatter(xs, np.full(len(deg), level), s=size, c=cmap(norm(deg)), edgecolors="black",
                   linewidths=0.6, zorder=3)
        for x, m in zip(xs, deg):
            ax.text(x, level, str(int(m)), ha="center", va="center", fontsize="x-small",
                    color="white" if m <= d / 2 else "black", zorder=4)
    top = len(degrees) - 1
    for j, x in enumerate(_unit_positions(d)):
        ax.text(x, -0.32, f"$x_{{{j + 1}}}$", ha="center", va="top")
        ax.text(x, top + 0.3, f"$\\mu_{{{j + 1}}}, s_{{{j + 1}}}$", ha="center", va="bottom",
                fontsize="small")
    ax.set_yticks(range(top + 1), ["inputs"] + [f"hidden {k}" for k in range(1, top)]
                  + ["outputs"])
    ax.set_xticks([])
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.75, top + 0.75)
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    order = ", ".join(str(int(k) + 1) for k in made.order)
    ax.set_title(title or f"MADE, order ({order}); numbers are degrees $m$", fontsize="medium")
    return ax.figure


def plot_autoregressive_timings(rows, *, axes: Sequence[Axes] | None = None) -> Figure:
    """Time of a density evaluation (data to latent) and of sampling (latent to data)
    against the dimension ``d``, one panel for MAF and one for IAF, on log-log axes.

    Args:
        rows: rows ``[flow name, d, density ms, sampling ms, ...]`` as
            ``course_lib.bench.autoregressive.autoregressive_rows`` returns them.
    """
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(9.0, 3.4), layout="constrained", sharey=True)[1]
    names = ("MAF", "IAF")
    for ax, name in zip(axes, names):
        mine = sorted((r for r in rows if r[0] == name), key=lambda r: r[1])
        if not mine:
            raise ValueError(f"plot_autoregressive_timings: no rows for {name}")
        dims = [r[1] for r in mine]
        ax.plot(dims, [r[2] for r in mine], "o-", color="tab:blue",
                label="density $\\log p(x)$")
        ax.plot(dims, [r[3] for r in mine], "s--", color="tab:orange", label="sampling")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.minorticks_off()
        ax.set_xlabel("dimension $d$")
        slow = "sampling" if name == "MAF" else "density"
        ax.set_title(f"{name}: {slow} takes $d$ passes")
        ax.legend(loc="upper left", fontsize="small")
    axes[0].set_ylabel("milliseconds (batch of 512)")
    return axes[0].figure


def sequential_passes(flow: torch.nn.Module, u: torch.Tensor,
                      direction: str = "forward") -> list[torch.Tensor]:
    """The input of every MADE pass of ``flow.forward`` (or ``flow.inverse``), followed by
    the result, recorded by a forward hook on ``flow.made``.

    On the slow side (MAF's sampling, IAF's density) there are ``d`` passes: the first
    reads ``u`` itself, and after pass ``k`` the first ``k`` variables in the order are
    final, so the list holds ``d + 1`` tensors and the last is the answer. On the fast
    side there is one pass and the list holds two.
    """
    if direction not in ("forward", "inverse"):
        raise ValueError(f"expected direction 'forward' or 'inverse', got {direction!r}")
    inputs: list[torch.Tensor] = []
    handle = flow.made.register_forward_hook(
        lambda module, args, output: inputs.append(args[0].detach().clone()))
    try:
        with torch.no_grad():
            result = getattr(flow, direction)(u)[0]
    finally:
        handle.remove()
    return inputs + [result]


def animate_sequential_passes(flow: torch.nn.Module, u: torch.Tensor, *,
                              direction: str = "forward", figsize=(5.6, 3.2), dpi: int = 72,
                              interval: int = 800) -> FuncAnimation:
    """The slow side of an autoregressive flow, one MADE pass per frame, for one point
    ``u`` of shape ``(1, d)``: bars are the current values, listed in the flow's order,
    black ticks the final answer. After pass ``k`` the first ``k`` bars are final (green).

    ``direction="forward"`` is MAF's sampling (the bars become ``x``); ``"inverse"`` is
    IAF's density evaluation (they become ``z``). The figure is closed once the animation
    is built, so a notebook shows only the animation.
    """
    iterates = [t[0].numpy().astype(float) for t in sequential_passes(flow, u[:1], direction)]
    order = flow.order.numpy()
    steps = np.stack([it[order] for it in iterates])
    final, d = steps[-1], len(order)
    symbol = "x" if direction == "forward" else "z"
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    positions = np.arange(d)
    bars = ax.bar(positions, steps[0], color="0.7", width=0.7)
    ax.scatter(positions, final, marker="_", s=600, linewidths=2.5, color="black", zorder=3,
               label=f"final ${symbol}_i$")
    reach = 1.15 * np.abs(steps).max()
    ax.set_ylim(-reach, reach)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(positions, _variable_labels(symbol, order))
    ax.set_xlabel("variables in the flow's order")
    ax.legend(loc="upper right", fontsize="small")
    title = ax.set_title("")

    def draw(k: int):
        values = steps[k]
        done = np.isclose(values, final, rtol=1e-9, atol=1e-12)
        for bar, value, ok in zip(bars, values, done):
            bar.set_height(value)
            bar.set_color("tab:green" if ok else "tab:orange")
        if k == 0:
            title.set_text("start: the MADE's first input is the given point")
        else:
            title.set_text(f"after pass {k} of {len(steps) - 1}: {int(done.sum())} of {d} final")
        return (*bars, title)

    animation = FuncAnimation(figure, draw, frames=len(steps), interval=interval, blit=False)
    plt.close(figure)
    return animation


__all__ += ["mask_paths", "plot_dependency", "plot_made_network",
            "plot_autoregressive_timings", "sequential_passes", "animate_sequential_passes"]


# -- Lecture 05: Glow -----------------------------------------------------------------------

from matplotlib.collections import PolyCollection  # noqa: E402

from .flows import Squeeze  # noqa: E402

# the four places of a pixel in its 2x2 block: top-left, top-right, bottom-left, bottom-right
BLOCK_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange")


def three_channel_pattern(size: int = 32) -> torch.Tensor:
    """A batch of one image ``(1, 3, size, size)`` with values in ``[0, 1]`` whose channels
    are easy to tell apart: a disc (red), diagonal stripes (green), a left-to-right ramp
    (blue)."""
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"three_channel_pattern: expected an integer size >= 2, got {size!r}")
    u = torch.linspace(-1.0, 1.0, size, dtype=torch.float64)
    rows, cols = torch.meshgrid(u, u, indexing="ij")
    disc = ((rows + 0.2) ** 2 + (cols + 0.2) ** 2 < 0.45).to(torch.float64)
    stripes = 0.5 + 0.5 * torch.cos(2 * torch.pi * 2.5 * (rows + cols) / 2)
    ramp = (cols + 1) / 2
    return torch.stack([disc, stripes, ramp])[None].to(torch.get_default_dtype())


def image_grid(images, nrow: int = 8, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """One-channel images ``(batch, 1, H, W)`` (or ``(batch, H, W)``) tiled into one array,
    ``nrow`` images per row, separated by ``pad`` cells of ``fill`` (NaN: drawn blank)."""
    images = np.asarray(images.detach() if isinstance(images, torch.Tensor) else images,
                        dtype=float)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"image_grid: expected images of shape (batch, 1, H, W) or "
                         f"(batch, H, W), got {images.shape}")
    n, h, w = images.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.full((nrows * (h + pad) - pad, ncol * (w + pad) - pad), fill)
    for k, image in enumerate(images):
        r, c = divmod(k, ncol)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = image
    return grid


def plot_images(images, *, ax: Axes | None = None, nrow: int = 8, title: str | None = None,
                vmin: float = 0.0, vmax: float = 1.0, cmap: str = "gray_r") -> Figure:
    """A batch of one-channel images in a grid (see :func:`image_grid`). Values are clipped
    to ``[vmin, vmax]``, the pixel range of the data, so samples and data look alike."""
    grid = image_grid(images, nrow)
    ax = _axes(ax, figsize=(0.6 * grid.shape[1] / 9 + 1, 0.6 * grid.shape[0] / 9 + 0.5))
    ax.imshow(np.clip(grid, vmin, vmax), cmap=cmap, vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


def plot_channel_mixing(z, x, weight, *, axes: dict | None = None,
                        limit: float = 2.5) -> Figure:
    """A 3-channel image ``z`` and its 1x1-convolved ``x = W z`` (every pixel's channels
    mixed by ``weight``), channel by channel, with the matrix ``W`` itself.

    Args:
        z, x: images ``(3, H, W)`` or a batch of one ``(1, 3, H, W)``.
        weight: the ``3 x 3`` matrix ``W``.
        axes: a dict with keys ``"z"``, ``"z1"``..``"z3"``, ``"x"``, ``"x1"``..``"x3"``,
            ``"W"`` (as ``Figure.subplot_mosaic`` returns it); a new figure by default.
        limit: the colour scale of the channels is ``[-limit, limit]``.
    """
    z, x, weight = (np.asarray(t.detach() if isinstance(t, torch.Tensor) else t, dtype=float)
                    for t in (z, x, weight))
    z, x = (t[0] if t.ndim == 4 else t for t in (z, x))
    if z.shape[0] != 3 or x.shape != z.shape or weight.shape != (3, 3):
        raise ValueError(f"plot_channel_mixing: expected z and x of shape (3, H, W) and a 3x3 "
                         f"weight, got {z.shape}, {x.shape} and {weight.shape}")
    if axes is None:
        figure = plt.figure(figsize=(10.5, 4.4), layout="constrained")
        axes = figure.subplot_mosaic([["z", "z1", "z2", "z3", "W"], ["x", "x1", "x2", "x3", "W"]])
    for name, image in (("z", z), ("x", x)):
        axes[name].imshow(np.clip(image.transpose(1, 2, 0), 0, 1), interpolation="nearest")
        axes[name].set_title(f"${name}$ as RGB (clipped)", fontsize="medium")
        for c in range(3):
            ax = axes[f"{name}{c + 1}"]
            shown = ax.imshow(image[c], cmap="PuOr_r", vmin=-limit, vmax=limit,
                              interpolation="nearest")
            ax.set_title(f"channel ${name}_{c + 1}$", fontsize="medium")
    for ax in (axes[k] for k in axes if k != "W"):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes["x3"].figure.colorbar(shown, ax=[axes["x3"], axes["z3"]], shrink=0.8,
                               label="channel value")
    reach = max(float(np.abs(weight).max()), 1e-12)
    axes["W"].imshow(weight, cmap="RdBu_r", vmin=-reach, vmax=reach)
    for (i, j), value in np.ndenumerate(weight):
        axes["W"].text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small",
                       color="white" if abs(value) > 0.6 * reach else "black")
    axes["W"].set_xticks(range(3), [f"$z_{j + 1}$" for j in range(3)])
    axes["W"].set_yticks(range(3), [f"$x_{i + 1}$" for i in range(3)])
    axes["W"].xaxis.tick_top()
    axes["W"].grid(False)
    axes["W"].set_title("$W$, the same at every pixel", fontsize="medium")
    return axes["W"].figure


def squeeze_positions(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of a ``height x width`` image goes under ``Squeeze`` (data to latent).

    Returns ``(start, end, channel)``, one row per pixel in row-major order: ``start`` is
    its ``(column, row)`` in the image; ``channel`` the channel ``k`` (0..3) it lands in;
    ``end`` its ``(column, row)`` in a picture that places channel ``k`` as panel
    ``(k // 2, k % 2)`` of a 2x2 arrangement to the right of the image, with a gap of 2.
    Computed with ``Squeeze`` itself, so the picture shows what the flow does.
    """
    if height % 2 or width % 2 or height < 2 or width < 2:
        raise ValueError(f"squeeze_positions: expected an even height and width, got "
                         f"{height}x{width}")
    index = torch.arange(height * width, dtype=torch.float64).reshape(1, 1, height, width)
    with torch.no_grad():
        squeezed = Squeeze(1).inverse(index)[0][0].round().long().numpy()
    start = np.zeros((height * width, 2))
    end = np.zeros((height * width, 2))
    channel = np.zeros(height * width, dtype=int)
    for pixel in range(height * width):
        row, col = divmod(pixel, width)
        start[pixel] = (col, row)
        k, i, j = (int(a[0]) for a in np.nonzero(squeezed == pixel))
        channel[pixel] = k
        left = width + 2 + (k % 2) * (width // 2 + 1)
        top = (k // 2) * (height // 2 + 1)
        end[pixel] = (left + j, top + i)
    return start, end, channel


def _squares(centres: np.ndarray, side: float = 0.86) -> list[np.ndarray]:
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * side / 2
    return [c + corners for c in centres]


def _squeeze_axes(ax: Axes, height: int, width: int) -> None:
    ax.set_xlim(-1, width + 2 + width + 1)
    ax.set_ylim(height + 1, -1.5)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.text((width - 1) / 2, -1.0, f"image (1, {height}, {width})", ha="center",
            fontsize="small")
    for k in range(4):
        left = width + 2 + (k % 2) * (width // 2 + 1)
        top = (k // 2) * (height // 2 + 1)
        ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), width // 2, height // 2, fill=False,
                                   edgecolor=BLOCK_COLOURS[k], linewidth=1.2, linestyle="--"))
        ax.text(left + width / 4 - 0.5, top - 0.7 if k < 2 else top + height / 2 - 0.1,
                f"channel {k + 1}", ha="center", va="bottom" if k < 2 else "top",
                color=BLOCK_COLOURS[k], fontsize="small")


def _pixel_collection(image: np.ndarray, centres: np.ndarray, channel: np.ndarray,
                      cmap: str = "gray_r") -> PolyCollection:
    faces = plt.get_cmap(cmap)(np.clip(image.ravel(), 0, 1))
    edges = [BLOCK_COLOURS[k] for k in channel]
    return PolyCollection(_squares(centres), facecolors=faces, edgecolors=edges, linewidths=1.5)


def _check_image(image, where: str) -> np.ndarray:
    image = np.asarray(image.detach() if isinstance(image, torch.Tensor) else image, dtype=float)
    while image.ndim > 2 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2 or image.shape[0] % 2 or image.shape[1] % 2:
        raise ValueError(f"{where}: expected one image (H, W) with even H and W (or a batch of "
                         f"one (1, 1, H, W)), got shape {image.shape}")
    return image


def plot_squeeze(image, *, ax: Axes | None = None) -> Figure:
    """The squeeze as a picture: an image ``(1, H, W)`` (values in ``[0, 1]``) and the four
    channels ``(4, H/2, W/2)`` its 2x2 blocks become. Each pixel is outlined in the colour of
    its place in its block, which is also the colour of the channel it moves to."""
    image = _check_image(image, "plot_squeeze")
    h, w = image.shape
    start, end, channel = squeeze_positions(h, w)
    ax = _axes(ax, figsize=(8.0, 3.6))
    _squeeze_axes(ax, h, w)
    for centres in (start, end):
        ax.add_collection(_pixel_collection(image, centres, channel))
    ax.annotate("", xy=(w + 1.4, h / 2 - 0.5), xytext=(w - 0.1, h / 2 - 0.5),
                arrowprops={"arrowstyle": "->", "linewidth": 1.5})
    ax.set_title(f"squeeze: (1, {h}, {w}) -> (4, {h // 2}, {w // 2}), each 2x2 block "
                 "becomes the 4 channels of one pixel", fontsize="medium")
    return ax.figure


def animate_squeeze(image, *, frames: int = 16, figsize=(6.0, 3.0), dpi: int = 70,
                    interval: int = 120) -> FuncAnimation:
    """The pixels of an image ``(1, H, W)`` moving, in ``frames`` steps along straight lines,
    to their places in the four channels of the squeezed image (then a short pause). The
    figure is closed once the animation is built."""
    image = _check_image(image, "animate_squeeze")
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f"animate_squeeze: frames must be an integer >= 2, got {frames!r}")
    h, w = image.shape
    start, end, channel = squeeze_positions(h, w)
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    _squeeze_axes(ax, h, w)
    pixels = ax.add_collection(_pixel_collection(image, start, channel))
    title = ax.set_title("")
    pause = frames // 4

    def draw(i: int):
        t = min(i / (frames - 1), 1.0)
        t = t * t * (3 - 2 * t)  # ease in and out
        pixels.set_verts(_squares((1 - t) * start + t * end))
        title.set_text("the image (1, H, W)" if t == 0 else
                       "after the squeeze: (4, H/2, W/2)" if t == 1 else
                       "squeezing: each 2x2 block -> 4 channels")
        return pixels, title

    animation = FuncAnimation(figure, draw, frames=frames + pause, interval=interval, blit=False)
    plt.close(figure)
    return animation


def multiscale_levels(image_shape: tuple[int, int, int], n_levels: int) -> torch.Tensor:
    """For the latent ``z`` of ``course_lib.models.glow(image_shape, n_levels)``: the level
    (0 = the first, finest one) at which each entry is factored out, shape ``(C, H, W)``.

    ``MultiScale`` squeezes, keeps the first half of the channels as latent and passes the
    second half on; the last level keeps all. The latent is unsqueezed back to ``(C, H, W)``,
    so the labels are built the same way, from the last level outwards.
    """
    c, h, w = image_shape
    if not isinstance(n_levels, int) or n_levels < 1 or h % 2 ** n_levels or w % 2 ** n_levels:
        raise ValueError(f"multiscale_levels: expected n_levels >= 1 that halves {h}x{w} that "
                         f"many times, got {n_levels!r}")
    channels = [c * 2 ** k for k in range(n_levels)]
    sizes = [(h // 2 ** k, w // 2 ** k) for k in range(n_levels)]
    inner = None
    for k in reversed(range(n_levels)):
        squeezed = torch.full((1, 4 * channels[k], sizes[k][0] // 2, sizes[k][1] // 2), float(k),
                              dtype=torch.float64)
        if inner is not None:
            squeezed[:, 2 * channels[k]:] = inner
        inner = Squeeze(channels[k]).forward(squeezed)[0]
    return inner[0].round().long()


def plot_change_maps(image: torch.Tensor, flows: Sequence[torch.nn.Module],
                     titles: Sequence[str], *, axes: Sequence[Axes] | None = None) -> Figure:
    """Where one pass of each flow changes an image: ``f(z) - z`` for the same ``z``
    ``(1, C, H, W)`` (channel 0 shown), each panel divided by its largest change, since the
    pattern, not the size, is the point."""
    if len(flows) != len(titles):
        raise ValueError(f"plot_change_maps: expected one title per flow, got {len(titles)} "
                         f"titles for {len(flows)} flows")
    with torch.no_grad():
        changes = [(flow(image)[0] - image)[0, 0].numpy().astype(float) for flow in flows]
    if axes is None:
        axes = plt.subplots(1, len(flows), figsize=(3.2 * len(flows) + 0.8, 3.3),
                            layout="constrained", squeeze=False)[1][0]
    for ax, change, title in zip(axes, changes, titles):
        shown = ax.imshow(change / max(float(np.abs(change).max()), 1e-300), cmap="RdBu_r",
                          vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[0].figure.colorbar(shown, ax=list(axes), shrink=0.85,
                            label="$(f(z) - z)\\,/\\,\\max|f(z) - z|$")
    return axes[0].figure


__all__ += ["three_channel_pattern", "image_grid", "plot_images", "plot_channel_mixing",
            "squeeze_positions", "plot_squeeze", "animate_squeeze", "multiscale_levels",
            "plot_change_maps"]


def resample_level(model: NormalizingFlow, x: torch.Tensor, levels: torch.Tensor, level: int,
                   temperature: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Images that share every latent variable of ``x`` but those of one level.

    ``z = f^{-1}(x)``; the entries of ``z`` where ``levels == level`` (see
    :func:`multiscale_levels`) are replaced by fresh draws of ``N(0, T^2)``, ``T`` the
    ``temperature``, and the result is mapped back, ``f(z')``. Without gradients.
    """
    with torch.no_grad():
        z, _ = model.flow.inverse(x)
        fresh = temperature * torch.randn(z.shape, generator=generator, dtype=z.dtype)
        return model.flow(torch.where(levels == level, fresh, z))[0]


def plot_level_resampling(model: NormalizingFlow, x: torch.Tensor, levels: torch.Tensor, *,
                          variations: int = 4, temperature: float = 0.7,
                          generator: torch.Generator | None = None,
                          axes: Sequence[Axes] | None = None) -> Figure:
    """Images ``x`` (left) and, for each level of a multi-scale flow, ``variations`` images
    in which only that level's latent variables were drawn again (:func:`resample_level`):
    one row per image of ``x``."""
    n_levels = int(levels.max()) + 1
    if axes is None:
        columns = 1 + n_levels * variations
        axes = plt.subplots(1, n_levels + 1, figsize=(0.9 * columns + 0.8 * n_levels + 0.4,
                                                      0.9 * len(x) + 0.6),
                            layout="constrained", width_ratios=[1] + [variations] * n_levels)[1]
    plot_images(x, ax=axes[0], nrow=1, title="$x$")
    for k in range(n_levels):
        images = torch.stack([resample_level(model, x, levels, k, temperature, generator)
                              for _ in range(variations)], dim=1)
        count = int((levels == k).sum())
        plot_images(images.flatten(0, 1), ax=axes[k + 1], nrow=variations,
                    title=f"level {k} drawn again ({count} latents)")
    return axes[0].figure


__all__ += ["resample_level", "plot_level_resampling"]


# -- Lecture 08: forward against reverse KL ---------------------------------------------------

from .sampling import effective_sample_size  # noqa: E402

class SampleSnapshots:
    """A ``fit`` callback that records where a model sends fixed latents while it trains.

    ``snapshots = SampleSnapshots(model, z, every=10)`` stores ``x = f(z)`` at once (step 0)
    and after every ``every``-th step of ``fit(model, ..., callback=snapshots)``;
    ``snapshots.steps`` lists the steps and ``snapshots.samples`` the points (NumPy arrays of
    shape ``(n, 2)``). The same ``z`` at every step, so one can follow each point.
    """

    def __init__(self, model: NormalizingFlow, z: torch.Tensor, every: int = 10):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.model, self.z, self.every = model, z, every
        self.steps: list[int] = []
        self.samples: list[np.ndarray] = []
        self.record(0)

    def record(self, step: int) -> None:
        with torch.no_grad():
            x = self.model.flow(self.z.to(model_dtype(self.model)))[0]
        self.steps.append(step)
        self.samples.append(x.numpy().astype(float))

    def __call__(self, step: int, loss: float) -> None:
        if step % self.every == 0:
            self.record(step)


def _density_on_grid(log_prob: Callable, xlim, ylim, resolution: int, dtype: torch.dtype):
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=dtype)
    with torch.no_grad():
        values = log_prob(points).to(torch.float64).reshape(gx.shape)
    return gx, gy, values.exp().numpy()


def plot_target_and_fits(log_target: Callable, fits: dict, xlim: tuple[float, float],
                         ylim: tuple[float, float], *, target_samples=None, model_samples: int = 0,
                         resolution: int = 120, axes: Sequence[Axes] | None = None,
                         target_title: str = "target $p$ (normalised on the window)",
                         seed: int = 0) -> Figure:
    """The target and the density ``q = exp(model.log_prob)`` of each fitted model in a row,
    on one window and **one colour scale**, so a spread-out fit looks paler than a sharp one.

    Args:
        log_target: ``log p~``, possibly unnormalised (normalised numerically on the window).
        fits: title -> model.
        target_samples: optional exact samples of the target, drawn on its panel.
        model_samples: draw this many samples of each model on its panel (seeded by ``seed``,
            without touching the global random state).
    """
    if axes is None:
        axes = plt.subplots(1, 1 + len(fits), figsize=(3.3 * (1 + len(fits)) + 0.8, 3.4),
                            layout="constrained")[1]
    dtypes = [model_dtype(model) for model in fits.values()]
    dtype = dtypes[0] if dtypes else torch.get_default_dtype()
    log_z = log_mass_on_window(log_target, xlim, ylim, resolution, dtype)
    panels = [(target_title, lambda x: log_target(x) - log_z, target_samples)]
    for title, model in fits.items():
        points = None
        if model_samples:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                points = model.sample(model_samples).numpy()
        panels.append((title, model.log_prob, points))
    grids = [_density_on_grid(log_prob, xlim, ylim, resolution, dtype) for _, log_prob, _ in panels]
    top = max(float(np.nanmax(density)) for *_, density in grids)
    for ax, (title, _, points), (gx, gy, density) in zip(axes, panels, grids):
        mesh = ax.pcolormesh(gx, gy, density, cmap="viridis", shading="auto", vmin=0, vmax=top)
        if points is not None:
            points = np.asarray(points, dtype=float)
            ax.scatter(points[:, 0], points[:, 1], s=1.5, color="white", alpha=0.45, linewidths=0)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.grid(False)
        ax.set_xlabel("$x_1$")
        ax.set_title(title, fontsize="medium")
    axes[0].set_ylabel("$x_2$")
    axes[0].figure.colorbar(mesh, ax=list(axes), label="density", shrink=0.9)
    return axes[0].figure


def animate_snapshots(snapshots: dict, log_target: Callable, xlim: tuple[float, float],
                      ylim: tuple[float, float], *, panel_size: float = 3.2, dpi: int = 60,
                      interval: int = 200) -> FuncAnimation:
    """Models learning side by side: the samples recorded by each :class:`SampleSnapshots`
    (title -> snapshots, all recorded at the same steps) move over the contour lines of the
    target, one frame per recorded step. Each point keeps the colour of its latent's angle.
    The figure is closed once the animation is built."""
    names = list(snapshots)
    steps = snapshots[names[0]].steps
    if any(snapshots[name].steps != steps for name in names):
        raise ValueError("animate_snapshots: expected snapshots recorded at the same steps, got "
                         + "; ".join(f"{name}: {snapshots[name].steps}" for name in names))
    gx, gy, density = _density_on_grid(log_target, xlim, ylim, 100, torch.float64)
    figure, axes = plt.subplots(1, len(names), figsize=(panel_size * len(names), panel_size),
                                dpi=dpi, layout="constrained", squeeze=False)
    dots, titles = [], []
    for ax, name in zip(axes[0], names):
        z = snapshots[name].z.numpy()
        ax.contour(gx, gy, density, levels=np.linspace(0, density.max(), 6)[1:], colors="0.6",
                   linewidths=0.8)
        first = snapshots[name].samples[0]
        dots.append(ax.scatter(first[:, 0], first[:, 1], c=np.arctan2(z[:, 1], z[:, 0]),
                               cmap="hsv", s=4, linewidths=0, alpha=0.8))
        titles.append(ax.set_title(""))
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
    axes[0][0].set_ylabel("$x_2$")

    def draw(i: int):
        for dot, title, name in zip(dots, titles, names):
            dot.set_offsets(snapshots[name].samples[i])
            title.set_text(f"{name}: step {steps[i]}")
        return (*dots, *titles)

    # lay the figure out once: redoing the layout for every frame triples the rendering time
    draw(0)
    figure.canvas.draw()
    figure.set_layout_engine("none")

    animation = FuncAnimation(figure, draw, frames=len(steps), interval=interval, blit=False)
    plt.close(figure)
    return animation


def plot_importance_weights(log_weights: dict, *, ax: Axes | None = None,
                            bins: int = 50) -> Figure:
    """Histograms of the normalised importance weights ``n w_i / sum_j w_j`` (log scale) of
    several samplers (label -> log-weights of shape ``(n,)``), each labelled with its
    ``ESS / n``. A perfect sampler has every weight equal to 1 (the dashed line). Weights
    below ``1e-8`` are counted in the leftmost bin."""
    ax = _axes(ax, figsize=(6.0, 3.4))
    scaled = {}
    for label, log_w in log_weights.items():
        log_w = torch.as_tensor(log_w, dtype=torch.float64)
        ess = float(effective_sample_size(log_w))
        rel = (log_w - torch.logsumexp(log_w, 0) + np.log(len(log_w))) / np.log(10)
        scaled[f"{label}: ESS/n = {ess / len(log_w):.2f}"] = rel[torch.isfinite(rel)].numpy()
    low = max(min(v.min() for v in scaled.values()), -8.0)
    high = max(v.max() for v in scaled.values())
    edges = np.linspace(low, high + 1e-9, bins + 1)
    for label, values in scaled.items():
        ax.hist(np.clip(values, low, None), bins=edges, alpha=0.55, label=label)
    ax.axvline(0.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(r"$\log_{10}(n\, w_i / \sum_j w_j)$")
    ax.set_ylabel("number of samples")
    ax.legend(fontsize="small")
    return ax.figure


def plot_gaussian_entropy(stds: Sequence[float] = (1.0, 0.242, 0.1), *, ax: Axes | None = None,
                          lim: float = 3.0) -> Figure:
    """Densities of ``N(0, sigma^2)`` for several ``sigma``, each labelled with its entropy
    ``H = log(2 pi e sigma^2) / 2``, the smallest expected NLL any model can reach on its
    samples. Where a density passes 1 (the dashed line) its log is positive, and once
    ``sigma < 1 / sqrt(2 pi e) = 0.242`` the entropy is negative."""
    ax = _axes(ax, figsize=(6.0, 3.4))
    grid = np.linspace(-lim, lim, 600)
    for std in stds:
        entropy = 0.5 * np.log(2 * np.pi * np.e * std ** 2)
        density = np.exp(-0.5 * (grid / std) ** 2) / (std * np.sqrt(2 * np.pi))
        ax.plot(grid, density, linewidth=2, label=f"$\\sigma$ = {std:g}: H = {entropy:.3f} nats")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="density 1 (log p = 0)")
    ax.set_title("a density can exceed 1; there log p > 0")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.legend(fontsize="small", loc="upper right")
    return ax.figure


__all__ += ["SampleSnapshots", "plot_target_and_fits", "animate_snapshots",
            "plot_importance_weights", "plot_gaussian_entropy"]


# -- Lecture 09: the continuity equation ------------------------------------------------------

from dataclasses import dataclass  # noqa: E402

from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from torch.distributions import Independent, MultivariateNormal, Normal  # noqa: E402
from torchdiffeq import odeint  # noqa: E402

from .continuity import (cell_centres, divergence_integral, evolve_density,  # noqa: E402
                         gaussian_density, gaussian_pushforward, outward_flux, total_mass)
from .continuous import CNF  # noqa: E402
from .jacobian import divergence_exact  # noqa: E402

#: step sizes offered for Euler's method: powers of 2, so every grid ``t_k = k h`` is exact
EULER_STEPS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125)


def euler_path(a: float, step: float, t_end: float = 2.0,
               z0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Euler's method for ``dz/dt = a z``, ``z(0) = z0``: ``z_{k+1} = z_k + h a z_k``.

    Returns the times ``t_k = k h`` from 0 to ``t_end`` and the ``z_k`` (torchdiffeq's fixed-step
    ``euler``, in float64). ``t_end`` must be a whole number of steps.
    """
    n = round(t_end / step) if step > 0 else 0
    if n < 1 or abs(n * step - t_end) > 1e-9 * max(t_end, 1.0):
        raise ValueError(f"euler_path: expected t_end to be a positive whole number of steps h, "
                         f"got t_end={t_end!r}, h={step!r}")
    times = torch.arange(n + 1, dtype=torch.float64) * step
    z = odeint(lambda t, z: a * z, torch.tensor([float(z0)], dtype=torch.float64), times,
               method="euler", options={"step_size": step})
    return times.numpy(), z[:, 0].numpy()


def plot_euler(a: float = 1.0, step: float = 0.25, *, t_end: float = 2.0, z0: float = 1.0,
               steps: Sequence[float] = EULER_STEPS,
               axes: Sequence[Axes] | None = None) -> Figure:
    """Euler's method on ``dz/dt = a z`` against the exact ``z_0 e^{at}``.

    Left: the exact solution and the Euler polygon with step ``h = step`` (``T / h`` steps, as
    many as a residual network ``z + h f(z)`` has layers). Right: the error at ``t_end`` for
    every step size in ``steps`` on log-log axes, with a line of slope 1: Euler's method is
    first order, halving ``h`` halves the error (once ``|1 + a h| < 1`` for a decaying ``a``).
    """
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(10.0, 3.6), layout="constrained")[1]
    path_ax, error_ax = axes
    exact_end = z0 * np.exp(a * t_end)
    fine = np.linspace(0.0, t_end, 400)
    path_ax.plot(fine, z0 * np.exp(a * fine), label=r"exact $z_0\,e^{at}$", **DENSITY_STYLE)
    t, z = euler_path(a, step, t_end, z0)
    path_ax.plot(t, z, "o-", color="tab:red", markersize=4, label=f"Euler, h = {step:g}")
    path_ax.set_xlabel("$t$")
    path_ax.set_ylabel("$z(t)$")
    # a decaying solution that Euler makes grow: each step multiplies z by 1 + a h
    verdict = "  (unstable: |1 + ah| > 1)" if a < 0 and abs(1 + a * step) > 1 else ""
    path_ax.set_title(f"dz/dt = {a:g} z: {len(t) - 1} Euler steps{verdict}", fontsize="medium")
    path_ax.legend(fontsize="small")
    errors = np.array([abs(euler_path(a, h, t_end, z0)[1][-1] - exact_end) for h in steps])
    if not np.all(errors > 0):
        error_ax.set_axis_off()
        error_ax.text(0.5, 0.5, "a = 0: z stays at $z_0$,\nand Euler follows it exactly",
                      ha="center", va="center", transform=error_ax.transAxes)
        return path_ax.figure
    h = np.asarray(steps, dtype=float)
    error_ax.loglog(h, errors, "o-", color="tab:red", label="Euler's error")
    error_ax.loglog(h, errors[-1] * h / h[-1], "--", color="gray", label="slope 1: error $\\propto h$")
    current = errors[int(np.argmin(np.abs(h - step)))]
    error_ax.loglog([step], [current], "o", markersize=11, markerfacecolor="none",
                    markeredgecolor="black", label=f"h = {step:g}: error {current:.4f}")
    error_ax.set_xlabel("step size $h$")
    error_ax.set_ylabel(f"|Euler - exact| at t = {t_end:g}")
    error_ax.set_title("first order: halve h, halve the error", fontsize="medium")
    error_ax.legend(fontsize="small")
    return path_ax.figure


def gaussian_flux(field: Callable[[torch.Tensor], torch.Tensor], mean=(0.0, 0.0),
                  cov=((1.0, 0.0), (0.0, 1.0))) -> Callable[[torch.Tensor], torch.Tensor]:
    """The probability flux ``J(z) = p(z) f(z)`` of ``p = N(mean, cov)`` moved by the velocity
    ``f`` (batches ``(n, 2) -> (n, 2)``), as a callable on batches ``(n, 2)``."""
    mean, cov = torch.tensor(mean, dtype=torch.float64), torch.tensor(cov, dtype=torch.float64)

    def flux(z: torch.Tensor) -> torch.Tensor:
        p = gaussian_density(z[:, 0], z[:, 1], mean.to(z.dtype), cov.to(z.dtype))
        return p[:, None] * field(z)

    return flux


def _quiver_scale(vectors: np.ndarray, spacing: float) -> float:
    """A ``quiver`` scale (data units per arrow length) drawing the longest arrow ``0.9 spacing``."""
    return max(float(np.linalg.norm(vectors, axis=-1).max()), 1e-300) / (0.9 * spacing)


def plot_flux_box(J: Callable[[torch.Tensor], torch.Tensor], box: Sequence[float], *,
                  lim: float = 3.0, ax: Axes | None = None, arrows_per_side: int = 6,
                  resolution: int = 100) -> Figure:
    """A flux ``J`` through the sides of the box ``V = [a_1, b_1] x [a_2, b_2]``.

    The colours are ``div J`` (red where more leaves a small patch than enters it), the grey
    arrows ``J`` itself. On the sides of the box the arrows are ``(J . n) n``, red where
    mass leaves ``V`` and blue where it enters. The title gives both sides of the divergence
    theorem: the net outflow ``oint J . n dS`` (:func:`~course_lib.continuity.outward_flux`) and
    ``int_V div J dz`` (:func:`~course_lib.continuity.divergence_integral`).
    """
    ax = _axes(ax, figsize=(5.6, 4.6))
    a1, b1, a2, b2 = (float(v) for v in box)
    ticks = np.linspace(-lim, lim, resolution)
    g1, g2 = np.meshgrid(ticks, ticks)
    points = torch.as_tensor(np.stack([g1.ravel(), g2.ravel()], axis=1), dtype=torch.float64)
    div = divergence_exact(J, points, create_graph=False).detach().numpy().reshape(g1.shape)
    top = max(float(np.abs(div).max()), 1e-12)
    mesh = ax.pcolormesh(g1, g2, div, cmap="RdBu_r", vmin=-top, vmax=top, shading="auto")
    ax.figure.colorbar(mesh, ax=ax, label=r"$\nabla \cdot J$")
    coarse = np.linspace(-lim, lim, 15)
    c1, c2 = np.meshgrid(coarse, coarse)
    with torch.no_grad():
        field = J(torch.as_tensor(np.stack([c1.ravel(), c2.ravel()], axis=1),
                                  dtype=torch.float64)).numpy()
    scale = _quiver_scale(field, coarse[1] - coarse[0])
    ax.quiver(c1.ravel(), c2.ravel(), field[:, 0], field[:, 1], color="0.3", angles="xy",
              scale_units="xy", scale=scale, width=0.004)
    ax.add_patch(Rectangle((a1, a2), b1 - a1, b2 - a2, fill=False, edgecolor="black",
                           linewidth=2))
    s = (np.arange(arrows_per_side) + 0.5) / arrows_per_side
    along1, along2 = a1 + s * (b1 - a1), a2 + s * (b2 - a2)
    sides = [(np.stack([np.full_like(along2, b1), along2], 1), (1.0, 0.0)),
             (np.stack([np.full_like(along2, a1), along2], 1), (-1.0, 0.0)),
             (np.stack([along1, np.full_like(along1, b2)], 1), (0.0, 1.0)),
             (np.stack([along1, np.full_like(along1, a2)], 1), (0.0, -1.0))]
    for where, normal in sides:
        with torch.no_grad():
            values = J(torch.as_tensor(where, dtype=torch.float64)).numpy()
        normal_part = values @ np.asarray(normal)
        arrows = normal_part[:, None] * np.asarray(normal)[None, :]
        ax.quiver(where[:, 0], where[:, 1], arrows[:, 0], arrows[:, 1],
                  color=np.where(normal_part > 0, "tab:red", "tab:blue"), angles="xy",
                  scale_units="xy", scale=scale, width=0.008)
    flux, volume = outward_flux(J, box), divergence_integral(J, box)
    ax.legend(handles=[Line2D([], [], color="tab:red", linewidth=3, label="leaves V: $J\\cdot n > 0$"),
                       Line2D([], [], color="tab:blue", linewidth=3, label="enters V: $J\\cdot n < 0$")],
              loc="lower left", fontsize="small")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(f"net outflow $\\oint_{{\\partial V}} \\; J \\cdot n\\,dS$ = {flux:.4f}\n"
                 f"$\\int_V \\; \\nabla \\cdot J\\,dz$ = {volume:.4f}", fontsize="medium")
    return ax.figure


#: ``f = A z`` with this ``A``: turns by 1.5 radians per unit time and spreads, ``div f = 0.8``
SPIRAL_MATRIX = ((0.4, -1.5), (1.5, 0.4))


def spiral_field(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``f(z) = A z`` with ``A`` = :data:`SPIRAL_MATRIX`: an outward spiral, ``div f = tr A = 0.8``."""
    return z @ torch.tensor(SPIRAL_MATRIX, dtype=z.dtype).T


def swirl_field(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``f(z) = w(r) (-z_2, z_1)`` with ``w(r) = 3 exp(-r^2 / 2)``: the inside turns faster than
    the outside. The flow is tangent to circles and ``w`` is constant on them, so ``div f = 0``."""
    turn = 3.0 * torch.exp(-0.5 * (z ** 2).sum(dim=1, keepdim=True))
    return turn * torch.stack([-z[:, 1], z[:, 0]], dim=1)


@dataclass(frozen=True)
class MovingDensity:
    """A Gaussian ``p_0 = N(mean, cov)`` carried by ``dz/dt = field(t, z)`` in the window
    ``[-L, L]^2``, ``L = half_width``, computed in two ways that must agree:

    * :meth:`on_grid`: the continuity equation solved on a fixed grid (finite volumes, the
      total mass is conserved exactly, at the price of some smearing);
    * :meth:`log_density`: change of variables 2.0, ``log p_t(z_t) = log p_0(z_0) -
      int_0^t div f dt``, integrated backward from ``z`` to the ``z_0`` that lands on it.

    ``matrix`` is ``A`` when the field is linear, ``f = A z``; then :meth:`exact_log_density`
    gives the closed form ``N(e^{At} m, e^{At} S e^{A^T t})``.
    """

    title: str
    field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    mean: tuple[float, float]
    cov: tuple[tuple[float, float], tuple[float, float]]
    matrix: tuple[tuple[float, float], tuple[float, float]] | None = None
    half_width: float = 3.5

    @property
    def base(self) -> MultivariateNormal:
        """``p_0`` as a torch distribution (float64)."""
        return MultivariateNormal(torch.tensor(self.mean, dtype=torch.float64),
                                  torch.tensor(self.cov, dtype=torch.float64))

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` samples of ``p_0``, the same for the same seed, leaving the global generator alone."""
        normal = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed),
                             dtype=torch.float64)
        return self.base.loc + normal @ self.base.scale_tril.T

    def on_grid(self, times: Sequence[float], cells: int = 100) -> torch.Tensor:
        """``p_t`` at the cell centres (:func:`~course_lib.continuity.cell_centres`) for each time,
        shape ``(len(times), cells, cells)``, by :func:`~course_lib.continuity.evolve_density`."""
        z1, z2, _ = cell_centres(self.half_width, cells)
        p0 = self.base.log_prob(torch.stack([z1, z2], dim=-1)).exp()
        return evolve_density(p0, self.field, self.half_width, times)

    def _flow(self, t_end: float) -> CNF:
        # a CNF runs from s = 0 to s = 1: the field slowed down to that clock, g(s, z) = T f(T s, z)
        return CNF(lambda s, z: t_end * self.field(t_end * s, z), base=self.base, rtol=1e-7,
                   atol=1e-7)

    def log_density(self, t: float, z: torch.Tensor) -> torch.Tensor:
        """``log p_t(z)`` for points ``z`` of shape ``(n, 2)``, by change of variables 2.0."""
        z = torch.as_tensor(z, dtype=torch.float64)
        if t == 0:
            return self.base.log_prob(z)
        with torch.no_grad():
            return self._flow(float(t)).log_prob(z)

    def exact_log_density(self, t: float, z: torch.Tensor) -> torch.Tensor:
        """``log p_t(z)`` from the closed form of a linear field (``matrix`` must be set)."""
        if self.matrix is None:
            raise ValueError(f"{self.title!r} has no closed form: its field is not linear")
        mean, cov = gaussian_pushforward(self.base.loc, self.base.covariance_matrix,
                                         torch.tensor(self.matrix, dtype=torch.float64), t)
        return MultivariateNormal(mean, cov).log_prob(torch.as_tensor(z, dtype=torch.float64))

    def paths(self, z0: torch.Tensor, times: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """Particles starting at ``z0`` ``(n, 2)`` followed through ``times`` (from 0, increasing):
        ``z_t`` of shape ``(len(times), n, 2)`` and ``log p_t(z_t)`` of shape ``(len(times), n)``."""
        times = [float(t) for t in times]
        if len(times) < 2 or times[0] != 0.0 or any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError(f"expected times starting at 0 and increasing, got {times}")
        end = times[-1]
        return self._flow(end).trajectory(torch.as_tensor(z0, dtype=torch.float64),
                                          [t / end for t in times])


SPIRAL = MovingDensity("outward spiral f = A z (div f = 0.8)", spiral_field, (1.2, 0.0),
                       ((0.2, 0.0), (0.0, 0.2)), matrix=SPIRAL_MATRIX)
SWIRL = MovingDensity("swirl (nonlinear, div f = 0)", swirl_field, (1.2, 0.0),
                      ((0.2, 0.0), (0.0, 0.2)))


def plot_density_on_grid(p, half_width: float, *, field: Callable | None = None, t: float = 0.0,
                         ax: Axes | None = None, vmax: float | None = None,
                         title: str | None = None, colorbar: bool = True) -> Figure:
    """Cell values ``p`` ``(n, n)`` on the grid of :func:`~course_lib.continuity.cell_centres`
    (``[-L, L]^2``, ``L = half_width``) as a colour map, with the streamlines of ``field`` at
    time ``t`` on top when given."""
    ax = _axes(ax, figsize=(4.6, 3.8))
    p = np.asarray(p, dtype=float)
    z1, z2, _ = cell_centres(half_width, p.shape[0])
    mesh = ax.pcolormesh(z1.numpy(), z2.numpy(), p, cmap="viridis", shading="nearest", vmin=0,
                         vmax=vmax)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="density")
    if field is not None:
        ticks = np.linspace(-half_width, half_width, 25)
        s1, s2 = np.meshgrid(ticks, ticks)
        points = torch.as_tensor(np.stack([s1.ravel(), s2.ravel()], axis=1), dtype=torch.float64)
        with torch.no_grad():
            v = field(torch.tensor(float(t), dtype=torch.float64), points).numpy()
        ax.streamplot(s1, s2, v[:, 0].reshape(s1.shape), v[:, 1].reshape(s1.shape),
                      color="white", linewidth=0.6, density=0.8, arrowsize=0.8)
    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title, fontsize="medium")
    return ax.figure


def animate_moving_density(example: MovingDensity, times: Sequence[float], *, cells: int = 80,
                           particles: int = 12, seed: int = 0, dpi: int = 60,
                           interval: int = 300) -> FuncAnimation:
    """The density of ``example`` flowing: the finite-volume solution of the continuity equation
    at each of ``times`` (one frame each), with the streamlines of the field (at ``t = 0``) and
    a few particles of ``p_0`` moving along it, their paths traced. Each frame's title gives the
    total mass on the grid. The figure is closed once the animation is built."""
    on_grid = example.on_grid(times, cells)
    masses = total_mass(on_grid, 2 * example.half_width / cells).tolist()
    densities = on_grid.numpy()
    z0 = example.sample(particles, seed)
    z_t = example.paths(z0, times)[0].numpy()
    figure, ax = plt.subplots(figsize=(4.6, 3.9), dpi=dpi, layout="constrained")
    plot_density_on_grid(densities[0], example.half_width, field=example.field, ax=ax,
                         vmax=float(densities.max()))
    mesh = ax.collections[0]
    dots = ax.scatter(z_t[0, :, 0], z_t[0, :, 1], s=14, color="tab:red", zorder=3)
    trails = [ax.plot([], [], color="tab:red", linewidth=1, zorder=3)[0] for _ in range(particles)]
    title = ax.set_title("")

    def draw(i: int):
        mesh.set_array(densities[i].ravel())
        dots.set_offsets(z_t[i])
        for k, trail in enumerate(trails):
            trail.set_data(z_t[:i + 1, k, 0], z_t[:i + 1, k, 1])
        title.set_text(f"t = {times[i]:.2f}: total mass {masses[i]:.6f}")
        return (mesh, dots, title, *trails)

    draw(0)
    figure.canvas.draw()
    figure.set_layout_engine("none")
    animation = FuncAnimation(figure, draw, frames=len(times), interval=interval, blit=False)
    plt.close(figure)
    return animation


def plot_linear_field_1d(a: float = 0.5, *, times: Sequence[float] = (0.0, 0.5, 1.0),
                         starts: Sequence[float] = (-2.0, -0.5, 1.0, 1.5),
                         axes: Sequence[Axes] | None = None) -> Figure:
    """``dz/dt = a z`` carrying ``p_0 = N(0, 1)``: the densities ``p_t = N(0, e^{2at})`` (left)
    and ``log p_t(z_t)`` along a few paths (right). Lines are the closed forms; dots come from
    integrating ``dz/dt = a z`` and ``d/dt log p = -a`` together (a ``CNF``), so each dot must
    sit on its line, and every line on the right falls with slope ``-a``."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(10.0, 3.6), layout="constrained")[1]
    density_ax, log_ax = axes
    base = Independent(Normal(torch.zeros(1, dtype=torch.float64),
                              torch.ones(1, dtype=torch.float64)), 1)
    flow = CNF(lambda t, z: a * z, base=base, rtol=1e-8, atol=1e-8)
    fine = np.linspace(0.0, 1.0, 21)
    z0 = torch.tensor(starts, dtype=torch.float64)[:, None]
    z_t, log_p = flow.trajectory(z0, fine.tolist())
    z_t, log_p = z_t[..., 0].numpy(), log_p.numpy()
    grid = np.linspace(-4.0, 4.0, 400)
    for t in times:
        std = np.exp(a * t)
        line, = density_ax.plot(grid, np.exp(-0.5 * (grid / std) ** 2) / (std * np.sqrt(2 * np.pi)),
                                label=f"t = {t:g}: std $e^{{at}}$ = {std:.3f}")
        i = int(np.argmin(np.abs(fine - t)))
        density_ax.plot(z_t[i], np.exp(log_p[i]), "o", color=line.get_color(), markersize=5)
    density_ax.set_xlim(grid[0], grid[-1])
    density_ax.set_ylim(0, 1.4 / np.sqrt(2 * np.pi) / min(np.exp(a * t) for t in times))
    density_ax.set_xlabel("$z$")
    density_ax.set_ylabel("$p_t(z)$")
    density_ax.set_title(f"a = {a:g}: $p_t = N(0, e^{{2at}})$ (lines), dots from the ODE",
                         fontsize="medium")
    density_ax.legend(fontsize="small", loc="upper right")
    for k, start in enumerate(starts):
        closed = -0.5 * start ** 2 - 0.5 * np.log(2 * np.pi) - a * fine
        line, = log_ax.plot(fine, closed, label=f"$z_0$ = {start:g}")
        log_ax.plot(fine[::2], log_p[::2, k], "o", color=line.get_color(), markersize=4)
    log_ax.set_xlabel("$t$")
    log_ax.set_ylabel(r"$\log p_t(z_t)$")
    log_ax.set_title(f"along each path: slope $-a$ = {-a:g}", fontsize="medium")
    log_ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return density_ax.figure


__all__ += ["EULER_STEPS", "euler_path", "plot_euler", "gaussian_flux", "plot_flux_box",
            "SPIRAL_MATRIX", "spiral_field", "swirl_field", "MovingDensity", "SPIRAL", "SWIRL",
            "plot_density_on_grid", "animate_moving_density", "plot_linear_field_1d"]


# -- Lecture 12: applications ---------------------------------------------------------------

from .anomaly import auroc as _auroc, confusion as _confusion, roc_curve as _roc_curve  # noqa: E402

NORMAL_STYLE = {"color": "tab:blue", "label": "normal"}
ANOMALY_STYLE = {"color": "tab:red", "label": "anomalous"}


def _numpy(values) -> np.ndarray:
    return np.asarray(values.detach() if isinstance(values, torch.Tensor) else values,
                      dtype=float).ravel()


def _score_labels(normal, anomalous) -> tuple[np.ndarray, np.ndarray]:
    normal, anomalous = _numpy(normal), _numpy(anomalous)
    return np.r_[np.zeros(normal.size), np.ones(anomalous.size)], np.r_[normal, anomalous]


def plot_score_histograms(normal, anomalous, *, threshold: float | None = None,
                          ax: Axes | None = None, bins: int = 40,
                          xlabel: str = "anomaly score", names=("normal", "anomalous")) -> Figure:
    """Histograms (counts) of the scores of normal and anomalous inputs on shared bins. With
    a ``threshold``, a vertical line marks it and the flagged side, ``score >= threshold``,
    is shaded; the legend then gives the counts on each side."""
    ax = _axes(ax, figsize=(6.0, 3.4))
    normal, anomalous = _numpy(normal), _numpy(anomalous)
    both = np.r_[normal, anomalous]
    lo, hi = np.quantile(both, [0.0, 0.99])
    edges = np.linspace(lo, hi + 0.02 * (hi - lo), bins + 1)
    for values, style, name in ((normal, NORMAL_STYLE, names[0]), (anomalous, ANOMALY_STYLE, names[1])):
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        label = name
        if threshold is not None:
            label += f": {int((values >= threshold).sum())} of {values.size} flagged"
        ax.stairs(counts, edges, fill=True, alpha=0.35, color=style["color"])
        ax.stairs(counts, edges, color=style["color"], linewidth=1.2, label=label)
    if threshold is not None:
        ax.axvspan(threshold, edges[-1], color="0.85", zorder=0, label="flagged: score ≥ τ")
        ax.axvline(threshold, color="black", linewidth=1.5)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel(xlabel + (" (the last bin holds everything above)" if both.max() > hi else ""))
    ax.set_ylabel("number of inputs")
    ax.legend(fontsize="small", loc="upper right")
    return ax.figure


def plot_roc(curves: dict, *, point: tuple[float, float] | None = None,
             ax: Axes | None = None) -> Figure:
    """ROC curves, ``TPR`` against ``FPR`` as the threshold falls, one per entry
    ``name: (normal_scores, anomalous_scores)``, each labelled with its AUROC; the diagonal
    is a detector that guesses. ``point = (FPR, TPR)`` marks one threshold."""
    ax = _axes(ax, figsize=(3.8, 3.6))
    ax.plot([0, 1], [0, 1], "--", color="0.6", linewidth=1, label="guessing (0.5)")
    for name, (normal, anomalous) in curves.items():
        labels, scores = _score_labels(normal, anomalous)
        fpr, tpr, _ = _roc_curve(labels, scores)
        ax.plot(fpr, tpr, linewidth=2, label=f"{name} (AUROC {_auroc(labels, scores):.3f})")
    if point is not None:
        ax.plot(*point, "o", color="black", markersize=7, zorder=5)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (normal flagged)")
    ax.set_ylabel("true positive rate (anomalies flagged)")
    ax.legend(fontsize="small", loc="lower right")
    return ax.figure


def threshold_summary(normal, anomalous, threshold: float) -> str:
    """One line with the confusion counts, precision and recall at ``threshold``."""
    labels, scores = _score_labels(normal, anomalous)
    c = _confusion(labels, scores, threshold)
    precision = "undefined" if c.true_pos + c.false_pos == 0 else f"{c.precision:.2f}"
    return (f"τ = {threshold:.2f}: TP {c.true_pos}, FP {c.false_pos}, TN {c.true_neg}, "
            f"FN {c.false_neg};  precision {precision}, recall {c.recall:.2f}, "
            f"false alarms {c.false_alarm_rate:.2f}")


def plot_threshold(normal, anomalous, threshold: float, *, axes: Sequence[Axes] | None = None,
                   xlabel: str = "anomaly score") -> Figure:
    """The scores with the threshold (left) and the ROC curve with the point that threshold
    picks (right), titled with the confusion counts."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(10.0, 3.8), width_ratios=[1.6, 1],
                            layout="constrained")[1]
    plot_score_histograms(normal, anomalous, threshold=threshold, ax=axes[0], xlabel=xlabel)
    labels, scores = _score_labels(normal, anomalous)
    c = _confusion(labels, scores, threshold)
    plot_roc({"detector": (normal, anomalous)}, point=(c.false_alarm_rate, c.recall), ax=axes[1])
    axes[0].figure.suptitle(threshold_summary(normal, anomalous, threshold), fontsize="medium")
    return axes[0].figure


def animate_threshold_sweep(normal, anomalous, *, frames: int = 16, figsize=(7.2, 3.0),
                            dpi: int = 70, interval: int = 250,
                            xlabel: str = "anomaly score") -> FuncAnimation:
    """The threshold sliding from the highest score to the lowest: as it passes the scores,
    more inputs are flagged and the point ``(FPR, TPR)`` walks along the ROC curve from
    ``(0, 0)`` to ``(1, 1)``. The histograms and the curve are drawn once; each frame moves
    the threshold, the shaded flagged side, the point and the counts in the title."""
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    labels, scores = _score_labels(normal, anomalous)
    lo, hi = np.quantile(scores, [0.0, 0.99])
    thresholds = np.linspace(hi, lo, frames)
    figure, (left, right) = plt.subplots(1, 2, figsize=figsize, dpi=dpi, width_ratios=[1.6, 1],
                                         layout="constrained")
    plot_score_histograms(normal, anomalous, ax=left, xlabel=xlabel)
    plot_roc({"detector": (normal, anomalous)}, ax=right)
    right.get_legend().remove()
    line = left.axvline(thresholds[0], color="black", linewidth=1.5)
    shade = [left.axvspan(thresholds[0], left.get_xlim()[1], color="0.85", zorder=0)]
    point, = right.plot([0], [0], "o", color="black", markersize=7, zorder=5)
    title = figure.suptitle("", fontsize="small")

    def draw(i: int):
        tau = float(thresholds[i])
        counts = _confusion(labels, scores, tau)
        line.set_xdata([tau, tau])
        shade[0].remove()
        shade[0] = left.axvspan(tau, left.get_xlim()[1], color="0.85", zorder=0)
        point.set_data([counts.false_alarm_rate], [counts.recall])
        title.set_text(threshold_summary(normal, anomalous, tau))
        return line, point, title

    draw(0)
    # lay the figure out once: redoing the constrained layout for every frame doubles the cost
    figure.canvas.draw()
    figure.set_layout_engine("none")
    animation = FuncAnimation(figure, draw, frames=frames, interval=interval, blit=False)
    plt.close(figure)
    return animation


def plot_ranked_images(images, scores, *, n: int = 8, axes: Sequence[Axes] | None = None,
                       vmax: float = 16.0, score_name: str = "score") -> Figure:
    """The ``n`` inputs with the lowest scores (top row, the most typical) and the ``n`` with
    the highest (bottom row, the most anomalous), each captioned with its score."""
    images = _numpy(images).reshape(len(_numpy(scores)), -1)
    scores = _numpy(scores)
    side = int(round(np.sqrt(images.shape[1])))
    if side * side != images.shape[1]:
        raise ValueError(f"plot_ranked_images: expected square images, got {images.shape[1]} pixels")
    n = min(n, len(scores))
    order = np.argsort(scores)
    if axes is None:
        axes = plt.subplots(2, n, figsize=(1.1 * n, 3.0), layout="constrained")[1]
    axes = np.asarray(axes).reshape(2, n)
    for row, (picked, name) in enumerate(((order[:n], "lowest"), (order[::-1][:n], "highest"))):
        for ax, k in zip(axes[row], picked):
            ax.imshow(images[k].reshape(side, side), cmap="gray_r", vmin=0, vmax=vmax,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            ax.set_title(f"{scores[k]:.2f}", fontsize="small")
        axes[row, 0].set_ylabel(f"{name}\n{score_name}", fontsize="small")
    return axes[0, 0].figure


def _log_densities_on_grid(log_densities: Sequence[Callable], xlim, ylim, resolution: int,
                           dtype: torch.dtype):
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=dtype)
    with torch.no_grad():
        return gx, gy, [f(points).reshape(gx.shape).numpy().astype(float) for f in log_densities]


def plot_posteriors(panels: dict, xlim: tuple[float, float], ylim: tuple[float, float], *,
                    resolution: int = 150, axes: Sequence[Axes] | None = None,
                    dtype: torch.dtype | None = None) -> Figure:
    """Densities of a two-dimensional latent side by side on one colour scale, one panel
    per entry ``title: log_density`` (points ``(n, 2)`` to ``(n,)``): typically the true
    posterior, normalised, beside approximations ``q(z|x)``."""
    if axes is None:
        aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
        axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels) + 0.8,
                                                     min(3.3 * aspect, 4.0) + 0.8),
                            layout="constrained")[1]
    axes = np.atleast_1d(axes)
    gx, gy, values = _log_densities_on_grid(list(panels.values()), xlim, ylim, resolution,
                                            dtype or torch.get_default_dtype())
    densities = [np.exp(v) for v in values]
    norm = colors.Normalize(0, max(d.max() for d in densities))
    for ax, title, density in zip(axes, panels, densities):
        mesh = ax.pcolormesh(gx, gy, density, cmap="viridis", norm=norm, shading="auto")
        ax.set_aspect("equal")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel("$z_1$")
        ax.set_title(title, fontsize="medium")
    axes[0].set_ylabel("$z_2$")
    axes[0].figure.colorbar(mesh, ax=list(axes), label="density", shrink=0.9)
    return axes[0].figure


def plot_completions(image, observed, completions, *, axes: Sequence[Axes] | None = None,
                     vmax: float = 16.0) -> Figure:
    """An inverse problem on an image: the whole image, the part that is observed (hidden
    pixels in pink) and candidate completions (observed pixels kept, the rest filled in)."""
    image, mask = _numpy(image), _numpy(observed).astype(bool)
    completions = _numpy(completions).reshape(-1, image.size)
    side = int(round(np.sqrt(image.size)))
    n = len(completions)
    if axes is None:
        axes = plt.subplots(1, n + 2, figsize=(1.15 * (n + 2), 1.7), layout="constrained")[1]
    hidden = plt.get_cmap("gray_r").with_extremes(bad="pink")
    shown = [(image, "digit"), (np.where(mask, image, np.nan), "observed")]
    shown += [(c, f"fill {k + 1}") for k, c in enumerate(completions)]
    for ax, (values, title) in zip(axes, shown):
        ax.imshow(np.ma.masked_invalid(values.reshape(side, side)), cmap=hidden, vmin=0,
                  vmax=vmax, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize="small")
    return axes[0].figure


__all__ += ["plot_score_histograms", "plot_roc", "threshold_summary", "plot_threshold",
            "animate_threshold_sweep", "plot_ranked_images", "plot_posteriors",
            "plot_completions"]


# -- Lecture 11: flow matching ----------------------------------------------------------------

import copy  # noqa: E402
import time  # noqa: E402

from torchdiffeq import odeint as _odeint  # noqa: E402


class TimedLoss:
    """A training loss that keeps a clock, to compare training methods by the time they take.

    ``timed = TimedLoss(flow_matching_loss)`` goes into ``fit(model, data, loss_fn=timed)``;
    ``TimedLoss()`` wraps ``model.forward_kl`` (maximum likelihood). Each call returns
    ``loss_fn(model, batch)`` and records the loss and the CPU time since the first call
    (``timed.losses``, ``timed.seconds``). At the first call, and after every ``every``
    seconds of CPU time, it also keeps a copy of the parameters (``timed.checkpoints``, a list
    of ``(seconds, state_dict)``), so that :meth:`evaluate` can measure the model at those
    times afterwards without the measuring counting as training time.
    """

    def __init__(self, loss_fn: Callable | None = None, every: float = 1.0):
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0:
            raise ValueError(f"every must be a positive number of seconds, got {every!r}")
        self.loss_fn, self.every = loss_fn, float(every)
        self.seconds: list[float] = []
        self.losses: list[float] = []
        self.checkpoints: list[tuple[float, dict]] = []
        self._start: float | None = None

    def elapsed(self) -> float:
        """CPU seconds since the first call (0 before it)."""
        return 0.0 if self._start is None else time.process_time() - self._start

    def __call__(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        if self._start is None:
            self._start, now = time.process_time(), 0.0
        else:
            now = self.elapsed()
        if not self.checkpoints or now >= self.checkpoints[-1][0] + self.every:
            self.keep(model, now)
        loss = model.forward_kl(batch) if self.loss_fn is None else self.loss_fn(model, batch)
        self.seconds.append(now)
        self.losses.append(float(loss.detach()))
        return loss

    def keep(self, model: torch.nn.Module, seconds: float | None = None) -> None:
        """Keep a copy of ``model``'s parameters, stamped ``seconds`` (default: now)."""
        stamp = self.elapsed() if seconds is None else float(seconds)
        self.checkpoints.append((stamp, copy.deepcopy(model.state_dict())))

    def evaluate(self, model: torch.nn.Module,
                 measure: Callable[[torch.nn.Module], float]) -> tuple[np.ndarray, np.ndarray]:
        """``measure(m)`` for a copy ``m`` of ``model`` loaded with each checkpoint in turn
        (``model`` itself is left alone); returns the checkpoints' times and the values."""
        probe = copy.deepcopy(model)
        values = []
        for _, state in self.checkpoints:
            probe.load_state_dict(state)
            values.append(float(measure(probe)))
        return np.array([s for s, _ in self.checkpoints]), np.array(values)


def _running_mean(values: np.ndarray, width: int) -> np.ndarray:
    width = max(1, min(width, len(values)))
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    return (cumulative[width:] - cumulative[:-width]) / width


def plot_training_comparison(runs: dict, gaps: dict, *, loss_labels: dict | None = None,
                             loss_lines: dict | None = None, smooth: int = 50,
                             quality_label: str = "test NLL $-$ entropy (nats)",
                             axes: Sequence[Axes] | None = None) -> Figure:
    """Training methods against CPU time: each run's training loss in a panel of its own (a
    light line per step, a running mean of ``smooth`` steps on top, or of a tenth of the run
    if that is shorter; different methods have losses in different units), then the quality
    of every run in one last panel.

    Args:
        runs: label -> :class:`TimedLoss` that recorded the run.
        gaps: label -> ``(seconds, gap)`` at checkpoints (from :meth:`TimedLoss.evaluate`):
            the test NLL minus the entropy, or another estimate of ``KL(data || model)``;
            0 is the best any model can do.
        loss_labels: label -> the name of that run's loss (the y label of its panel).
        loss_lines: label -> ``(value, text)``, a dashed reference line in its loss panel.
        quality_label: the y label of the quality panel.
    """
    names = list(runs)
    if axes is None:
        axes = plt.subplots(1, len(names) + 1, figsize=(4.0 * (len(names) + 1), 3.4),
                            layout="constrained")[1]
    loss_labels, loss_lines = loss_labels or {}, loss_lines or {}
    colours = {name: f"C{k}" for k, name in enumerate(names)}
    for ax, name in zip(axes, names):
        seconds, losses = np.asarray(runs[name].seconds), np.asarray(runs[name].losses)
        ax.plot(seconds, losses, color=colours[name], alpha=0.25, linewidth=0.6)
        width = max(1, min(smooth, len(losses) // 10))
        ax.plot(seconds[width - 1:], _running_mean(losses, width), color=colours[name],
                linewidth=1.8, label=f"running mean of {width} steps")
        if name in loss_lines:
            value, text = loss_lines[name]
            ax.axhline(value, color="black", linestyle="--", linewidth=1, label=text)
        low, high = np.quantile(losses, [0.0, 0.98])
        if name in loss_lines:
            low = min(low, loss_lines[name][0])
        pad = 0.05 * (high - low)
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel("CPU seconds of training")
        ax.set_ylabel(loss_labels.get(name, "training loss"))
        ax.set_title(f"{name}: {len(losses)} steps", fontsize="medium")
        ax.legend(fontsize="small")
    quality = axes[len(names)]
    lowest = 0.0
    for name in names:
        seconds, values = gaps[name]
        quality.plot(seconds, values, "o-", color=colours[name], label=name, markersize=4)
        lowest = min(lowest, float(np.min(values)))
    quality.axhline(0.0, color="black", linestyle="--", linewidth=1, label="0: a perfect model")
    quality.set_yscale("symlog", linthresh=0.1)
    quality.set_ylim(bottom=1.2 * lowest)
    quality.set_xlabel("CPU seconds of training")
    quality.set_ylabel(quality_label)
    quality.set_title("quality at the checkpoints", fontsize="medium")
    quality.legend(fontsize="small")
    return axes[0].figure


def solve_field(field: Callable, z0: torch.Tensor, n_steps: int | None = None, *,
                rtol: float = 1e-5, atol: float = 1e-5) -> tuple[torch.Tensor, int]:
    """``x = z(1)`` for ``dz/dt = field(t, z)``, ``z(0) = z0``, without gradients: Euler's
    method with ``n_steps`` equal steps, or dopri5 with the given tolerances when ``n_steps``
    is ``None``. Returns ``x`` and the number of times ``field`` was evaluated."""
    if n_steps is not None and (isinstance(n_steps, bool) or not isinstance(n_steps, int)
                                or n_steps < 1):
        raise ValueError(f"n_steps must be a positive integer or None, got {n_steps!r}")
    calls = 0

    def counted(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return field(t, z)

    with torch.no_grad():
        if n_steps is None:
            span = torch.tensor([0.0, 1.0], dtype=z0.dtype)
            x = _odeint(counted, z0, span, rtol=rtol, atol=atol, method="dopri5")[-1]
        else:  # the grid itself is the list of Euler steps
            grid = torch.linspace(0.0, 1.0, n_steps + 1, dtype=z0.dtype)
            x = _odeint(counted, z0, grid, method="euler")[-1]
    return x, calls


def plot_solver_steps(fields: dict, z0: torch.Tensor, steps: Sequence[int] = (1, 2, 4, 8), *,
                      background=None, xlim: tuple[float, float] = (-4.5, 4.5),
                      ylim: tuple[float, float] = (-4.5, 4.5),
                      axes=None) -> Figure:
    """Where the same base points ``z0`` land with a few Euler steps, against an accurate
    dopri5 solve (last column), one row per field (title -> ``f(t, z)``).

    Each Euler panel gives the mean distance of its points to dopri5's; the dopri5 panel the
    number of evaluations of ``f`` it took (``rtol = atol = 1e-5``).
    """
    if axes is None:
        axes = plt.subplots(len(fields), len(steps) + 1, figsize=(2.0 * (len(steps) + 1),
                                                                 2.15 * len(fields) + 0.2),
                            layout="constrained", squeeze=False)[1]
    axes = np.asarray(axes).reshape(len(fields), len(steps) + 1)
    angle = np.arctan2(z0[:, 1].numpy(), z0[:, 0].numpy())
    for row, (name, field) in zip(axes, fields.items()):
        reference, calls = solve_field(field, z0)
        panels = [(f"{k} Euler step{'s' if k > 1 else ''}", *solve_field(field, z0, k))
                  for k in steps]
        for ax, (label, x, _) in zip(row, panels):
            error = (x - reference).norm(dim=1).mean().item()
            ax.set_title(f"{label}\nmean distance {error:.2f}", fontsize="small")
        row[-1].set_title(f"dopri5\n{calls} evaluations of f", fontsize="small")
        for ax, x in zip(row, [x for _, x, _ in panels] + [reference]):
            if background is not None:
                bg = np.asarray(background, dtype=float)
                ax.scatter(bg[:, 0], bg[:, 1], s=2, color="0.8", linewidths=0)
            x = x.numpy()
            ax.scatter(x[:, 0], x[:, 1], c=angle, cmap="hsv", s=3, linewidths=0, alpha=0.85)
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name)
    return axes[0][0].figure


def plot_field_over_time(field: Callable, log_density: Callable, times: Sequence[float], *,
                         xlim: tuple[float, float] = (-4.5, 4.5),
                         ylim: tuple[float, float] = (-4.5, 4.5), resolution: int = 90,
                         axes: Sequence[Axes] | None = None) -> Figure:
    """A time-dependent field and the density it carries, one panel per time: the density
    ``p_t = exp(log_density(t, x))`` as a colour map (each panel on its own scale) under the
    streamlines of ``field(t, x)``. Both take points of shape ``(n, 2)`` in float64."""
    if axes is None:
        axes = plt.subplots(1, len(times), figsize=(2.5 * len(times), 2.8),
                            layout="constrained", squeeze=False)[1][0]
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float64)
    for ax, t in zip(axes, times):
        with torch.no_grad():
            density = log_density(float(t), points).exp().reshape(gx.shape).numpy()
            v = field(torch.tensor(float(t), dtype=torch.float64), points).numpy()
        ax.pcolormesh(gx, gy, density, cmap="viridis", shading="auto")
        ax.streamplot(xs, ys, v[:, 0].reshape(gx.shape), v[:, 1].reshape(gx.shape),
                      color="white", linewidth=0.6, density=0.5, arrowsize=0.7)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_title(f"t = {t:g}", fontsize="medium")
    axes[0].set_ylabel("$x_2$")
    return axes[0].figure



__all__ += ["TimedLoss", "plot_training_comparison", "solve_field", "plot_solver_steps",
            "plot_field_over_time"]


# -- Lecture 10: continuous normalizing flows ---------------------------------------------------

import weakref  # noqa: E402

HUTCHINSON_COLOURS = {"gaussian": "tab:blue", "rademacher": "tab:orange"}
#: the points whose paths are followed, the same colour in every panel
TRACKED_COLOURS = ["tab:red", "tab:orange", "tab:pink", "tab:brown", "tab:purple", "tab:cyan",
                   "black", "tab:olive"]


def hutchinson_variance_theory(J: torch.Tensor, noise: str) -> torch.Tensor:
    """Variance of one probe's ``eps^T J eps`` for a square ``J`` (or a batch ``(..., d, d)``):
    ``2 |S|_F^2`` for Gaussian ``eps`` and ``2 (|S|_F^2 - sum_i S_ii^2)`` for Rademacher ``eps``,
    where ``S = (J + J^T) / 2`` (only the symmetric part of ``J`` enters ``eps^T J eps``).
    With ``k`` probes averaged, divide by ``k``."""
    S = 0.5 * (J + J.transpose(-1, -2))
    frobenius = S.pow(2).sum(dim=(-2, -1))
    if noise == "gaussian":
        return 2 * frobenius
    if noise == "rademacher":
        return 2 * (frobenius - S.diagonal(dim1=-2, dim2=-1).pow(2).sum(-1))
    raise ValueError(f"noise must be 'gaussian' or 'rademacher', got {noise!r}")


class _SavedTensor:
    """What autograd stores in place of a saved tensor while it is being measured."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


def saved_tensor_bytes(compute: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors that autograd holds for the backward pass of ``compute()``.

    Every tensor saved for backward while ``compute`` runs is wrapped; once it returns,
    the wrappers still alive are the ones the graph of its result keeps (those of graphs
    already freed, e.g. an inner derivative, are gone). Each storage counts once, however
    many saved views of it there are; parameters count too.
    """
    alive: weakref.WeakSet = weakref.WeakSet()

    def pack(tensor: torch.Tensor) -> _SavedTensor:
        saved = _SavedTensor(tensor)
        alive.add(saved)
        return saved

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda saved: saved.tensor):
        result = compute()
    storages = {}
    for saved in list(alive):
        storage = saved.tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    del result
    return int(sum(storages.values()))


def backprop_memory(cnf: CNF, x: torch.Tensor, step_counts: Sequence[int]) -> dict[str, list[int]]:
    """Memory held for the backward pass of ``cnf.forward_kl(x)``, with rk4 in ``n`` equal steps
    for each ``n`` of ``step_counts``: ``{"direct": [...], "adjoint": [...]}`` in bytes.

    Direct backpropagation keeps every intermediate value of every solver step; the adjoint
    method keeps the states at the requested times only. The CNF's solver settings are
    restored afterwards.
    """
    settings = (cnf.method, cnf.options, cnf.adjoint)
    memory: dict[str, list[int]] = {"direct": [], "adjoint": []}
    try:
        for name in memory:
            cnf.adjoint = name == "adjoint"
            for n in step_counts:
                cnf.method, cnf.options = "rk4", {"step_size": 1.0 / n}
                memory[name].append(saved_tensor_bytes(lambda: cnf.forward_kl(x)))
    finally:
        cnf.method, cnf.options, cnf.adjoint = settings
    return memory


def plot_backprop_memory(step_counts: Sequence[int], memory: dict[str, Sequence[int]], *,
                         ax: Axes | None = None) -> Figure:
    """Memory held for the backward pass against the number of solver steps (from
    :func:`backprop_memory`), on log-log axes: a line of slope 1 for direct backpropagation
    through the solver, a flat line for the adjoint method."""
    ax = _axes(ax, figsize=(5.6, 3.6))
    styles = {"direct": ("tab:red", "o", "backprop through the solver"),
              "adjoint": ("tab:green", "s", "adjoint method")}
    for name, values in memory.items():
        colour, marker, label = styles.get(name, ("black", "^", name))
        ax.plot(step_counts, np.asarray(values) / 1e6, marker=marker, color=colour, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(step_counts), [str(n) for n in step_counts])
    ax.set_xlabel("solver steps (rk4) from $t = 1$ to $t = 0$")
    ax.set_ylabel("held for backward (MB)")
    ax.set_title("memory of one gradient of the NLL")
    ax.legend(fontsize="small")
    return ax.figure


def plot_hutchinson_variance(rows: Sequence[Sequence], *, ax: Axes | None = None,
                             highlight: tuple[str, int] | None = None) -> Figure:
    """Variance of Hutchinson's estimate against the number of probes ``k``, log-log: measured
    (markers) and the theory ``2 |S|_F^2 / k`` (Gaussian) or ``2 (|S|_F^2 - sum_i S_ii^2) / k``
    (Rademacher) as lines of slope -1.

    Args:
        rows: ``[noise, k, |mean - exact|, variance, theory]`` per row, as returned by
            ``course_lib.bench.continuous.hutchinson_variance``.
        highlight: ``(noise, k)`` to mark with a ring on its theory line.
    """
    ax = _axes(ax, figsize=(5.2, 3.6))
    k_all = np.array([row[1] for row in rows], dtype=float)
    k_line = np.geomspace(k_all.min(), k_all.max(), 50)
    for noise in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == noise]
        k = np.array([row[1] for row in mine], dtype=float)
        measured = np.array([row[3] for row in mine], dtype=float)
        per_probe = float(np.mean([row[4] * row[1] for row in mine]))  # theory times k
        colour = HUTCHINSON_COLOURS.get(noise, "black")
        ax.plot(k_line, per_probe / k_line, color=colour, linewidth=1.5, alpha=0.7,
                label=f"{noise}: theory")
        ax.plot(k, measured, "o", color=colour, label=f"{noise}: measured")
        if highlight is not None and highlight[0] == noise:
            ax.plot([highlight[1]], [per_probe / highlight[1]], "o", markersize=13,
                    markerfacecolor="none", markeredgecolor="black", markeredgewidth=1.5)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sorted(set(int(v) for v in k_all))
    ax.set_xticks(ticks, [str(v) for v in ticks])
    ax.set_xlabel("probes $k$ (vector-Jacobian products)")
    ax.set_ylabel("variance of the estimate")
    ax.set_title(r"Hutchinson: variance $\propto 1/k$")
    ax.legend(fontsize="small")
    return ax.figure


def _trajectory_arrays(paths, log_p) -> tuple[np.ndarray, np.ndarray]:
    paths = np.asarray(paths, dtype=float)
    log_p = np.asarray(log_p, dtype=float)
    if paths.ndim != 3 or paths.shape[2] != 2 or log_p.shape != paths.shape[:2]:
        raise ValueError(f"expected paths of shape (times, n, 2) and log_p of shape (times, n), "
                         f"got {paths.shape} and {log_p.shape}")
    return paths, log_p


def _log_p_norm(log_p: np.ndarray) -> colors.Normalize:
    return colors.Normalize(*np.quantile(log_p, [0.01, 0.99]))


def plot_trajectories(paths, log_p, times: Sequence[float], index: int, *,
                      ax: Axes | None = None, tracked: int = 8, data=None,
                      colorbar: bool = True) -> Figure:
    """The points ``z_t`` of a CNF at ``t = times[index]``, coloured by ``log p_t(z_t)``, with
    the paths of the first ``tracked`` points from ``t = 0`` up to ``t``.

    Args:
        paths, log_p: ``z_t`` of shape ``(len(times), n, 2)`` and ``log p_t(z_t)`` of shape
            ``(len(times), n)``, as returned by ``CNF.trajectory``.
        data: optional data samples, drawn in light grey underneath: where the points
            should arrive at ``t = 1``.

    The window and the colour scale are the same for every ``index``, so that moving along
    the times changes the points only.
    """
    paths, log_p = _trajectory_arrays(paths, log_p)
    ax = _axes(ax, figsize=(4.8, 4.0))
    if data is not None:
        data = np.asarray(data, dtype=float)
        ax.scatter(data[:, 0], data[:, 1], s=2, color="0.85", linewidths=0, zorder=0)
    dots = ax.scatter(paths[index, :, 0], paths[index, :, 1], c=log_p[index], s=6,
                      cmap="viridis", norm=_log_p_norm(log_p), linewidths=0)
    for k, path in enumerate(paths[:index + 1, :tracked].transpose(1, 0, 2)):
        colour = TRACKED_COLOURS[k % len(TRACKED_COLOURS)]
        ax.plot(path[:, 0], path[:, 1], color=colour, linewidth=1.2)
        ax.plot(path[-1:, 0], path[-1:, 1], "o", color=colour, markersize=5,
                markeredgecolor="black", markeredgewidth=0.6)
    if colorbar:
        ax.figure.colorbar(dots, ax=ax, label=r"$\log p_t(z_t)$")
    xlim, ylim = _window(paths)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("first coordinate of $z_t$")
    ax.set_ylabel("second coordinate of $z_t$")
    ax.set_title(f"$t$ = {times[index]:.2f}")
    return ax.figure


def plot_log_density_paths(log_p, times: Sequence[float], index: int | None = None, *,
                           ax: Axes | None = None, tracked: int = 8) -> Figure:
    """``log p_t(z_t)`` against ``t`` along the paths of the first ``tracked`` points (thin), and
    its mean over all points (thick), a Monte Carlo estimate of ``-H(p_t)``, minus the entropy
    of the density at time ``t``. A vertical line marks ``times[index]``."""
    log_p = np.asarray(log_p, dtype=float)
    ax = _axes(ax, figsize=(5.0, 3.6))
    times = np.asarray(times, dtype=float)
    for k in range(min(tracked, log_p.shape[1])):
        ax.plot(times, log_p[:, k], color=TRACKED_COLOURS[k % len(TRACKED_COLOURS)],
                linewidth=1.2)
    ax.plot(times, log_p.mean(axis=1), color="black", linewidth=2.5,
            label=r"mean over all points $\approx -H(p_t)$")
    if index is not None:
        ax.axvline(times[index], color="tab:red", linewidth=1.2)
    ax.set_xlim(times[0], times[-1])
    ax.set_xlabel("$t$")
    ax.set_ylabel(r"$\log p_t(z_t)$")
    ax.set_title("log-density along the paths")
    ax.legend(fontsize="small", loc="lower right")
    return ax.figure


def animate_trajectories(paths, log_p, times: Sequence[float], *, data=None,
                         figsize=(4.0, 3.6), dpi: int = 55, interval: int = 150,
                         hold: int = 4) -> FuncAnimation:
    """Points of a CNF flowing from the base (``t = 0``) to the data (``t = 1``), coloured by
    ``log p_t(z_t)`` on one colour scale, over optional data in light grey; the last frame
    is held a little. The figure is closed once the animation is built."""
    paths, log_p = _trajectory_arrays(paths, log_p)
    figure, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    plot_trajectories(paths, log_p, times, 0, ax=ax, tracked=0, data=data)
    dots = ax.collections[-1]
    title = ax.title

    def draw(i: int):
        k = min(i, len(times) - 1)
        dots.set_offsets(paths[k])
        dots.set_array(log_p[k])
        title.set_text(f"$t$ = {times[k]:.2f}")
        return dots, title

    # lay the figure out once: redoing the layout for every frame is slow
    figure.canvas.draw()
    figure.set_layout_engine("none")
    animation = FuncAnimation(figure, draw, frames=len(times) + hold, interval=interval,
                              blit=False)
    plt.close(figure)
    return animation


__all__ += ["hutchinson_variance_theory", "saved_tensor_bytes", "backprop_memory",
            "plot_backprop_memory", "plot_hutchinson_variance", "plot_trajectories",
            "plot_log_density_paths", "animate_trajectories"]


# -- Lecture 07: spline and residual flows ---------------------------------------------------

from .flows import rq_spline  # noqa: E402

__all__ += ["spline_knots", "plot_spline", "sine_branch_1d", "sine_branch_2d",
            "fixed_point_iterates", "plot_residual_fold", "animate_cobweb",
            "plot_series_convergence", "plot_architecture_costs"]


def _spline_tensors(widths, heights, derivatives) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(np.asarray(v, dtype=float)) for v in (widths, heights, derivatives))


def spline_knots(widths, heights, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``K + 1`` knots ``(x^k, y^k)`` of a spline: ``x^k = -B + w_1 + ... + w_k`` and
    likewise ``y^k`` from the heights, so ``x^0 = y^0 = -B`` and ``x^K = y^K = B``."""
    w, h = (np.asarray(v, dtype=float) for v in (widths, heights))
    return (np.concatenate([[-bound], -bound + np.cumsum(w)]),
            np.concatenate([[-bound], -bound + np.cumsum(h)]))


def plot_spline(widths, heights, derivatives, bound: float, *, samples: int = 20_000,
                seed: int = 0, axes: Sequence[Axes] | None = None) -> Figure:
    """A rational-quadratic spline ``y = g(x)`` in three panels.

    Left: ``g`` (blue) with its knots, the tangent of slope ``delta_k`` at every knot, the
    inverse ``g^{-1}`` (orange, dashed) and the identity tails outside ``[-B, B]`` (grey
    band). Middle: the derivative ``g'(x) > 0`` with the knot slopes marked. Right: ``x ~
    N(0, 1)`` pushed through ``g``: the density ``p_Y(y) = N(g^{-1}(y)) |dg^{-1}/dy|``
    beside a histogram of pushed samples, and the mean log-determinant ``E[log g'(x)]``.

    Args:
        widths, heights: the ``K`` bin sizes, each summing to ``2 * bound``.
        derivatives: the ``K - 1`` interior slopes.
    """
    if axes is None:
        axes = plt.subplots(1, 3, figsize=(12.0, 3.6), layout="constrained")[1]
    w, h, d = _spline_tensors(widths, heights, derivatives)
    knots_x, knots_y = spline_knots(w, h, bound)
    slopes = np.concatenate([[1.0], d.numpy(), [1.0]])
    lim = bound + 1.5
    grid = torch.linspace(-lim, lim, 801, dtype=torch.float64)
    with torch.no_grad():
        y, log_deriv = rq_spline(grid, w, h, d, bound)
        x_back, log_deriv_inverse = rq_spline(grid, w, h, d, bound, inverse=True)
    ax = axes[0]
    for side in (-1, 1):
        ax.axvspan(side * bound, side * lim, color="0.9", zorder=0)
    ax.plot(grid, grid, color="0.6", linewidth=0.8, linestyle=":")
    ax.plot(grid, y, color="tab:blue", linewidth=2, label="$y = g(x)$")
    ax.plot(grid, x_back, color="tab:orange", linewidth=1.5, linestyle="--",
            label="$g^{-1}$")
    reach = 0.35 * np.min(np.diff(knots_x))
    for kx, ky, slope in zip(knots_x, knots_y, slopes):
        ax.plot([kx - reach, kx + reach], [ky - slope * reach, ky + slope * reach],
                color="black", linewidth=1.2)
    ax.scatter(knots_x, knots_y, color="black", zorder=3, s=22, label="knots $(x^k, y^k)$")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x$", ylabel="$y$",
           title=f"K = {len(w)} bins on [-{bound:g}, {bound:g}]; grey: identity")
    ax.legend(fontsize="small", loc="upper left")
    ax = axes[1]
    ax.plot(grid, log_deriv.exp(), color="tab:blue", linewidth=2, label="$g'(x)$")
    ax.scatter(knots_x, slopes, color="black", zorder=3, s=22, label=r"$\delta_k$ at the knots")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set(xlim=(-lim, lim), xlabel="$x$", ylabel="slope",
           title=f"$g'(x) > 0$ everywhere; smallest {log_deriv.exp().min().item():.3f}")
    ax.legend(fontsize="small", loc="upper left")
    ax = axes[2]
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(samples, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        pushed, log_det = rq_spline(base, w, h, d, bound)
    normal = torch.distributions.Normal(0.0, 1.0)
    density = (normal.log_prob(x_back) + log_deriv_inverse).exp()
    ax.hist(pushed.numpy(), bins=np.linspace(-lim, lim, 81), density=True, **SAMPLE_STYLE,
            label=f"{samples} samples of $y$")
    ax.plot(grid, normal.log_prob(grid).exp(), color="0.5", linestyle="--", label="$N(0, 1)$")
    ax.plot(grid, density, **DENSITY_STYLE, label="$p_Y(y)$ (formula)")
    ax.set(xlim=(-lim, lim), xlabel="$y$", ylabel="density",
           title=f"$x \\sim N(0,1)$ pushed: E[log g'(x)] = {log_det.mean().item():+.3f}")
    ax.legend(fontsize="small", loc="upper left")
    return axes[0].figure


def sine_branch_1d(c: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``g(z) = c sin(z)``: its Lipschitz constant is exactly ``c`` (the slope ``c cos z``
    reaches ``+-c``), so ``z + g(z)`` is invertible for ``c < 1`` and folds for ``c > 1``."""
    return lambda z: c * torch.sin(z)


def sine_branch_2d(c: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``g(z) = c (sin z_2, sin z_1)`` on batches ``(n, 2)``. Its Jacobian has the entries
    ``c cos z_2`` and ``c cos z_1`` off the diagonal, spectral norm at most ``c``, so
    ``det(I + J_g) = 1 - c^2 cos z_1 cos z_2`` stays positive exactly when ``c < 1``."""
    return lambda z: c * torch.sin(z.flip(-1))


def fixed_point_iterates(g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                         n_steps: int) -> torch.Tensor:
    """``z_0 = x`` and ``z_{n+1} = x - g(z_n)``, the iteration that inverts ``x = z + g(z)``;
    returns all ``n_steps + 1`` iterates stacked along a new first dimension."""
    z, iterates = x, [x]
    with torch.no_grad():
        for _ in range(n_steps):
            z = x - g(z)
            iterates.append(z)
    return torch.stack(iterates)


def _roots_1d(g: Callable, x: float, lim: float) -> np.ndarray:
    """Every solution of ``z + g(z) = x`` in ``[-lim, lim]``, by sign changes on a fine grid."""
    zs = torch.linspace(-lim, lim, 20_001, dtype=torch.float64)
    residual = (zs + g(zs) - x).numpy()
    change = np.nonzero(np.sign(residual[:-1]) != np.sign(residual[1:]))[0]
    return zs.numpy()[change]


def plot_residual_fold(c: float, x: float, *, lim: float = 2 * np.pi, n_steps: int = 30,
                       axes: Sequence[Axes] | None = None) -> Figure:
    """The residual map ``z + g(z)`` with ``g = c sin`` (``Lip(g) = c``) in three panels.

    Left: the curve ``x = z + c sin z``, red where its slope ``1 + c cos z`` is negative
    (it folds back), with the level ``x`` and its solutions. Middle: the fixed-point
    iteration ``z <- x - c sin z`` from ``z = x``, which converges for ``c < 1`` and may
    cycle or wander for ``c > 1``. Right: the 2D map ``z + c (sin z_2, sin z_1)`` on a
    grid, as in :func:`plot_grid_deformation` (dark grey cells: ``det <= 0``).
    """
    if axes is None:
        axes = plt.subplots(1, 3, figsize=(13.0, 3.8), layout="constrained")[1]
    g = sine_branch_1d(c)
    zs = torch.linspace(-lim, lim, 1201, dtype=torch.float64)
    xs = (zs + g(zs)).numpy()
    slope = 1 + c * np.cos(zs.numpy())
    ax = axes[0]
    ax.plot(zs, xs, color="tab:blue", linewidth=2, label="slope > 0")
    ax.plot(zs, np.where(slope < 0, xs, np.nan), color="tab:red", linewidth=2.5,
            label="slope < 0: folds back")
    roots = _roots_1d(g, x, lim)
    ax.axhline(x, color="black", linewidth=0.8, linestyle="--")
    ax.scatter(roots, np.full_like(roots, x), color="black", zorder=3, s=25,
               label=f"{len(roots)} solution{'s' if len(roots) != 1 else ''} of $z + g(z) = x$")
    ax.set(xlim=(-lim, lim), xlabel="$z$", ylabel="$x = z + c \\sin z$")
    verdict = "monotone, invertible" if c < 1 else "Lip(g) >= 1: not guaranteed"
    if slope.min() < 0:
        verdict = "folds: not invertible"
    ax.set_title(f"1D, c = {c:.2f}\n{verdict}", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    ax = axes[1]
    iterates = fixed_point_iterates(g, torch.tensor(float(x), dtype=torch.float64), n_steps)
    ax.plot(np.arange(n_steps + 1), iterates.numpy(), "o-", color="tab:purple", markersize=3,
            label="$z_{n+1} = x - c \\sin z_n$")
    for k, root in enumerate(roots):
        ax.axhline(root, color="black", linewidth=0.8, linestyle="--",
                   label="solutions" if k == 0 else None)
    error = abs(float(iterates[-1] + g(iterates[-1])) - x)
    ax.set_xlabel("step $n$")
    ax.set_ylabel("$z_n$")
    ax.set_title(f"iterating at x = {x:.2f}\nafter {n_steps} steps: "
                 f"$|z_n + g(z_n) - x|$ = {error:.1e}", fontsize="medium")
    ax.legend(fontsize="small", loc="best")
    g2 = sine_branch_2d(c)
    plot_grid_deformation(lambda z: z + g2(z), lim=np.pi, cells=24, ax=axes[2])
    smallest = 1 - c ** 2  # det(I + J_g) = 1 - c^2 cos z_1 cos z_2, least at cos = +-1
    axes[2].set_title(f"2D: $z + c\\,(\\sin z_2, \\sin z_1)$\nsmallest det = {smallest:.2f}"
                      + ("" if smallest > 0 else ": grey cells fold"), fontsize="medium")
    return axes[0].figure


def animate_cobweb(x: float = 1.0, lipschitz: Sequence[float] = (0.6, 1.6), *,
                   n_steps: int = 12, lim: float = 3.5, figsize=(8.4, 3.8), dpi: int = 64,
                   interval: int = 500) -> FuncAnimation:
    """The fixed-point iteration ``z <- x - c sin z`` as a cobweb, one step per frame, side
    by side for each ``c`` in ``lipschitz``: from ``(z_n, z_n)`` on the diagonal go to the
    curve ``phi(z) = x - c sin z`` and back to the diagonal. A contraction (``c < 1``)
    spirals into the solution; for ``c > 1`` the web can lock into a cycle around it.
    The figure is closed once the animation is built.
    """
    figure, axes = plt.subplots(1, len(lipschitz), figsize=figsize, dpi=dpi,
                                layout="constrained", squeeze=False)
    zs = torch.linspace(-lim, lim, 400, dtype=torch.float64)
    webs, paths = [], []
    for ax, c in zip(axes[0], lipschitz):
        g = sine_branch_1d(c)
        ax.plot(zs, zs, color="0.5", linewidth=1, label="$z$")
        ax.plot(zs, x - g(zs), color="tab:blue", linewidth=2, label=f"$x - {c:g}\\sin z$")
        iterates = fixed_point_iterates(g, torch.tensor(float(x), dtype=torch.float64),
                                        n_steps).numpy()
        # the cobweb: (z_0, z_0) -> (z_0, z_1) -> (z_1, z_1) -> (z_1, z_2) -> ...
        path = np.empty((2 * n_steps + 1, 2))
        path[0::2] = np.stack([iterates, iterates], 1)
        path[1::2] = np.stack([iterates[:-1], iterates[1:]], 1)
        paths.append(path)
        webs.append(ax.plot(path[:1, 0], path[:1, 1], "-", color="tab:red", linewidth=1.3)[0])
        for root in _roots_1d(g, x, lim):
            ax.scatter([root], [root], color="black", zorder=3, s=25)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$z_n$",
               ylabel="$z_{n+1}$", title=f"c = {c:g}")
        ax.legend(fontsize="small", loc="upper right")

    def draw(i: int):
        for web, path in zip(webs, paths):
            web.set_data(path[:2 * i + 1, 0], path[:2 * i + 1, 1])
        figure.suptitle(f"solving z + c sin z = {x:g} by iterating z <- {x:g} - c sin z: step {i}",
                        fontsize="medium")
        return webs

    # lay the figure out once, with the longest title: redoing the layout per frame is slow
    draw(n_steps)
    figure.canvas.draw()
    figure.set_layout_engine("none")
    animation = FuncAnimation(figure, draw, frames=n_steps + 1, interval=interval)
    plt.close(figure)
    return animation


def plot_series_convergence(errors: dict, *, bound: tuple | None = None,
                            ax: Axes | None = None) -> Figure:
    """Error of the truncated power series of ``log det(I + J_g)`` against its number of
    terms, on a log scale.

    Args:
        errors: label -> ``(n_terms, errors)``, e.g. exact probes and Hutchinson probes.
        bound: optional ``(n_terms, values)`` of an upper bound, drawn dashed.
    """
    ax = _axes(ax, figsize=(6.0, 3.6))
    markers = iter("os^vD")
    for label, (terms, values) in errors.items():
        ax.plot(terms, values, marker=next(markers, "o"), markersize=4, label=label)
    if bound is not None:
        ax.plot(*bound, color="black", linestyle="--", linewidth=1, label="truncation bound")
    ax.set_yscale("log")
    ax.set(xlabel="terms $n$ of the series", ylabel="|series - exact log-det|",
           title="power series of $\\log\\det(I + J_g)$")
    ax.legend(fontsize="small")
    return ax.figure


def plot_architecture_costs(rows, *, axes: Sequence[Axes] | None = None) -> Figure:
    """Measured time of a density evaluation and of sampling for one layer of each
    architecture, as horizontal bars on a log scale, one bar per dimension ``d``.

    Args:
        rows: ``[architecture, log-det, d, density ms, sampling ms]`` as
            ``course_lib.bench.autoregressive.architecture_rows`` returns them.
    """
    names = list(dict.fromkeys(r[0] for r in rows))
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(11.0, 0.4 * len(names) + 1.2), layout="constrained",
                            sharey=True)[1]
    dims = sorted({r[2] for r in rows})
    height = 0.8 / len(dims)
    for ax, column, title in ((axes[0], 3, "density $\\log p(x)$"), (axes[1], 4, "sampling")):
        for j, d in enumerate(dims):
            values = {r[0]: r[column] for r in rows if r[2] == d}
            positions = [i + (j - (len(dims) - 1) / 2) * height for i in range(len(names))]
            ax.barh(positions, [values.get(n, np.nan) for n in names], height=height,
                    label=f"d = {d}")
        ax.set_xscale("log")
        ax.set_xlabel("milliseconds per batch (one layer)")
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    axes[1].legend(fontsize="small", loc="lower right")
    return axes[0].figure


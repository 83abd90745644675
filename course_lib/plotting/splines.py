"""Lecture 07: spline and residual flows."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..flows import rq_spline
from .common import DENSITY_STYLE, SAMPLE_STYLE, _axes
from .geometry import plot_grid_deformation
from .kl import MIN_ANIMATION_WIDTH

__all__ = ["animate_cobweb", "fixed_point_iterates", "plot_architecture_costs",
           "plot_residual_fold", "plot_series_convergence", "plot_spline", "sine_branch_1d",
           "sine_branch_2d", "spline_knots"]


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
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.35 * (high - low))  # room for the legend above the iterates
    ax.legend(fontsize="small", loc="upper right")
    g2 = sine_branch_2d(c)
    plot_grid_deformation(lambda z: z + g2(z), lim=np.pi, cells=16, ax=axes[2])
    smallest = 1 - c ** 2  # det(I + J_g) = 1 - c^2 cos z_1 cos z_2, least at cos = +-1
    axes[2].set_title(f"2D: $z + c\\,(\\sin z_2, \\sin z_1)$\nsmallest det = {smallest:.2f}"
                      + ("" if smallest > 0 else ": grey cells fold"), fontsize="medium")
    return axes[0].figure


def animate_cobweb(x: float = 1.0, lipschitz: Sequence[float] = (0.6, 1.6), *,
                   n_steps: int = 12, lim: float = 3.5, figsize=(8.4, 3.8), dpi: int = 90,
                   interval: int = 500) -> FuncAnimation:
    """The fixed-point iteration ``z <- x - c sin z`` as a cobweb, one step per frame, side
    by side for each ``c`` in ``lipschitz``: from ``(z_n, z_n)`` on the diagonal go to the
    curve ``phi(z) = x - c sin z`` and back to the diagonal. A contraction (``c < 1``)
    spirals into the solution; for ``c > 1`` the web can lock into a cycle around it.
    The frames are at least ``MIN_ANIMATION_WIDTH`` pixels wide (``dpi`` is raised when
    ``figsize`` would be narrower). The figure is closed once the animation is built.
    """
    dpi = max(dpi, math.ceil(MIN_ANIMATION_WIDTH / figsize[0]))
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

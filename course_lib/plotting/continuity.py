"""Lecture 09: the continuity equation."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from torch.distributions import Independent, Normal

from ..continuity import (cell_centres, divergence_integral, gaussian_flux, outward_flux,
                          total_mass)
from ..continuous import CNF, density_paths
from ..model import NormalizingFlow
from ..euler import euler_path
from ..jacobian import divergence_exact
from ..moving_density import SPIRAL, SPIRAL_MATRIX, SWIRL, MovingDensity, spiral_field, swirl_field
from .common import DENSITY_STYLE, _axes

__all__ = ["EULER_STEPS", "animate_moving_density", "plot_density_on_grid", "plot_euler",
           "plot_flux_box", "plot_linear_field_1d",
           # computed elsewhere, offered here too because lecture 09 imports them from plotting
           "MovingDensity", "SPIRAL", "SPIRAL_MATRIX", "SWIRL", "euler_path", "gaussian_flux",
           "spiral_field", "swirl_field"]


#: step sizes offered for Euler's method: powers of 2, so every grid ``t_k = k h`` is exact
EULER_STEPS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125)


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


def _quiver_scale(vectors: np.ndarray, spacing: float) -> float:
    """A ``quiver`` scale (data units per arrow length) drawing the longest arrow ``0.9 spacing``."""
    return max(float(np.linalg.norm(vectors, axis=-1).max()), 1e-300) / (0.9 * spacing)


def plot_flux_box(J: Callable[[torch.Tensor], torch.Tensor], box: Sequence[float], *,
                  lim: float = 3.0, ax: Axes | None = None, arrows_per_side: int = 6,
                  resolution: int = 100) -> Figure:
    """A flux ``J`` (the lecture's ``j = p f``) through the sides of the box
    ``V = [a_1, b_1] x [a_2, b_2]``.

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
    ax.figure.colorbar(mesh, ax=ax, label=r"$\nabla \cdot j$")
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
    ax.legend(handles=[Line2D([], [], color="tab:red", linewidth=3, label="leaves V: $j\\cdot n > 0$"),
                       Line2D([], [], color="tab:blue", linewidth=3, label="enters V: $j\\cdot n < 0$")],
              loc="lower left", fontsize="small")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.grid(False)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(f"net outflow $\\oint_{{\\partial V}} \\; j \\cdot n\\,dS$ = {flux:.4f}\n"
                 f"$\\int_V \\; \\nabla \\cdot j\\,dz$ = {volume:.4f}", fontsize="medium")
    return ax.figure


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
                           particles: int = 12, seed: int = 0, dpi: int = 100,
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
    # 6.4 inches at the default 100 dpi: 640 pixels wide, labels readable when stored
    figure, ax = plt.subplots(figsize=(6.4, 5.4), dpi=dpi, layout="constrained")
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
    flow = NormalizingFlow(base, [CNF(lambda t, z: a * z, dim=1, rtol=1e-8, atol=1e-8)])
    fine = np.linspace(0.0, 1.0, 21)
    z0 = torch.tensor(starts, dtype=torch.float64)[:, None]
    z_t, log_p = density_paths(flow, z0, fine.tolist())
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

"""Lecture 09: the continuity equation."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from ..continuity import cell_centres, gaussian_flux, total_mass
from ..moving_density import SPIRAL, SWIRL
from ..plotting.continuity import EULER_STEPS, plot_density_on_grid, plot_euler, plot_flux_box
from .common import FigureExplorer, _slider

__all__ = ["FLUX_FIELDS", "MOVING_DENSITIES", "continuity_explorer", "euler_explorer",
           "flux_box_explorer"]


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
    """The flux ``j = p f`` of ``p = N(0, I)`` through a box ``V``: a menu for the velocity ``f``
    (:data:`FLUX_FIELDS`), sliders for the centre and the sides of the box. The figure
    (:func:`~course_lib.plotting.plot_flux_box`) shows ``div j``, the arrows of ``j``, the normal
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


#: densities offered by :func:`continuity_explorer` (``course_lib.moving_density.MovingDensity``)
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

"""The posterior of a two-dimensional latent by quadrature: the ground truth for approximations.

When the latent ``z`` has two dimensions, ``p(z | x) = p(x, z) / p(x)`` can be tabulated on a
fine grid and normalised by the midpoint rule, ``p(x) = int p(x, z) dz``. That is exact up to
the grid's resolution and window, so an approximate posterior (a VAE's encoder, a flow fitted
by the reverse KL) can be compared with it. It does not scale beyond a few dimensions: it is an
oracle, not a method.

Example:
    >>> from torch.distributions import MultivariateNormal
    >>> target = MultivariateNormal(torch.zeros(2, dtype=torch.float64),
    ...                             torch.eye(2, dtype=torch.float64))
    >>> grid = posterior_on_grid(target.log_prob, lim=8.0, resolution=200, dtype=torch.float64)
    >>> abs(grid.log_evidence) < 1e-8        # a normalised density: log 1 = 0
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .validation import (CourseValueError, is_validating, nonnegative_int, positive_float,
                         positive_int)

__all__ = ["GridPosterior", "posterior_on_grid"]


@dataclass
class GridPosterior:
    """A density on a two-dimensional latent, tabulated on a square grid of cells.

    ``log_evidence`` is ``log int exp(log_joint(z)) dz`` by the midpoint rule: ``log p(x)``
    when ``log_joint`` is ``log p(x, z)``. ``log_density`` is the normalised posterior at
    ``points``.
    """

    points: Tensor
    log_density: Tensor
    log_evidence: float
    cell: float

    @property
    def mean(self) -> Tensor:
        return (self.log_density.exp()[:, None] * self.points).sum(0) * self.cell

    @property
    def covariance(self) -> Tensor:
        centred = self.points - self.mean
        return (centred.T * self.log_density.exp()) @ centred * self.cell

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws: a cell with probability ``p(z) dz``, then uniformly inside it."""
        n = nonnegative_int(n, "n", "GridPosterior.sample")
        if n == 0:
            return self.points[:0]
        weights = (self.log_density + math.log(self.cell)).exp()
        # drawn where the generator lives (the CPU unless it is another device's), then moved
        device = generator.device if generator is not None else self.points.device
        index = torch.multinomial(weights.to(device), n, replacement=True, generator=generator)
        jitter = torch.rand(n, 2, generator=generator, dtype=self.points.dtype, device=device)
        return self.points[index.to(self.points.device)] + math.sqrt(self.cell) * (
            jitter.to(self.points.device) - 0.5)


def posterior_on_grid(log_joint: Callable[[Tensor], Tensor], lim: float = 6.0,
                      resolution: int = 300, dtype: torch.dtype | None = None,
                      device: torch.device | str | None = None) -> GridPosterior:
    """Tabulate ``exp(log_joint)`` on ``resolution^2`` cells covering ``[-lim, lim]^2`` and
    normalise it. Only possible because the latent has two dimensions: this is the ground
    truth an approximate posterior is compared with, not a method that scales.

    The grid is built with ``dtype`` (torch's default if not given) on ``device`` (the CPU if
    not given): those of the model ``log_joint`` evaluates.
    """
    lim = positive_float(lim, "lim", "posterior_on_grid")
    resolution = positive_int(resolution, "resolution", "posterior_on_grid", minimum=2)
    dtype = dtype or torch.get_default_dtype()
    width = 2 * lim / resolution
    centres = -lim + width * (torch.arange(resolution, dtype=dtype, device=device) + 0.5)
    points = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        values = log_joint(points)
    if not isinstance(values, Tensor) or values.shape != (points.shape[0],):
        got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise CourseValueError(f"posterior_on_grid: log_joint must map (n, 2) points to (n,) "
                               f"values, got shape {got}")
    if is_validating() and bool(torch.isnan(values).any()):
        raise CourseValueError("posterior_on_grid: log_joint returned NaN on the grid; it must "
                               "be a number or -inf (zero density) at every point")
    cell = width * width
    log_evidence = torch.logsumexp(values, 0) + math.log(cell)
    return GridPosterior(points, values - log_evidence, float(log_evidence), cell)

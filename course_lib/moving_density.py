"""A Gaussian carried by a velocity field in the plane, computed two ways that must agree.

* On a grid: the continuity equation ``dp/dt + div(p f) = 0`` solved by finite volumes
  (:func:`~course_lib.continuity.evolve_density`), which conserves the total mass exactly.
* Along paths: change of variables 2.0, ``log p_t(z_t) = log p_0(z_0) - int_0^t div f dt``,
  integrated by a :class:`~course_lib.continuous.CNF` inside a ``NormalizingFlow`` on ``p_0``.

For a linear field ``f = A z`` both have a closed form to compare with,
``N(e^{At} m, e^{At} S e^{A^T t})``. :data:`SPIRAL` (linear, ``div f = 0.8``) and :data:`SWIRL`
(nonlinear, ``div f = 0``) are the examples of lecture 09.

Example:
    >>> z = torch.zeros(1, 2, dtype=torch.float64)
    >>> round(float(SPIRAL.log_density(0.5, z) - SPIRAL.exact_log_density(0.5, z)), 6)
    0.0
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.distributions import MultivariateNormal

from .continuity import cell_centres, evolve_density, gaussian_pushforward
from .continuous import CNF, density_paths
from .model import NormalizingFlow
from .validation import CourseValueError, positive_int

__all__ = ["MovingDensity", "SPIRAL", "SPIRAL_MATRIX", "SWIRL", "spiral_field", "swirl_field"]


#: ``f = A z`` with this ``A``: turns by 1.5 radians per unit time and spreads, ``div f = 0.8``
SPIRAL_MATRIX = ((0.4, -1.5), (1.5, 0.4))


def spiral_field(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``f(z) = A z`` with ``A`` = :data:`SPIRAL_MATRIX`: an outward spiral, ``div f = tr A = 0.8``."""
    return z @ torch.tensor(SPIRAL_MATRIX, dtype=z.dtype, device=z.device).T


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
        n = positive_int(n, "n", "MovingDensity.sample", minimum=0)
        normal = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed),
                             dtype=torch.float64)
        return self.base.loc + normal @ self.base.scale_tril.T

    def on_grid(self, times: Sequence[float], cells: int = 100) -> torch.Tensor:
        """``p_t`` at the cell centres (:func:`~course_lib.continuity.cell_centres`) for each time,
        shape ``(len(times), cells, cells)``, by :func:`~course_lib.continuity.evolve_density`."""
        cells = positive_int(cells, "cells", "MovingDensity.on_grid", minimum=2)
        z1, z2, _ = cell_centres(self.half_width, cells)
        p0 = self.base.log_prob(torch.stack([z1, z2], dim=-1)).exp()
        return evolve_density(p0, self.field, self.half_width, times)

    def _flow(self, t_end: float) -> NormalizingFlow:
        # a CNF runs from s = 0 to s = 1: the field slowed down to that clock, g(s, z) = T f(T s, z)
        cnf = CNF(lambda s, z: t_end * self.field(t_end * s, z), dim=2, rtol=1e-7, atol=1e-7)
        return NormalizingFlow(self.base, [cnf])

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
            raise CourseValueError(f"MovingDensity.exact_log_density: {self.title!r} has no "
                                   "closed form: its field is not linear")
        mean, cov = gaussian_pushforward(self.base.loc, self.base.covariance_matrix,
                                         torch.tensor(self.matrix, dtype=torch.float64), t)
        return MultivariateNormal(mean, cov).log_prob(torch.as_tensor(z, dtype=torch.float64))

    def paths(self, z0: torch.Tensor, times: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """Particles starting at ``z0`` ``(n, 2)`` followed through ``times`` (from 0, increasing):
        ``z_t`` of shape ``(len(times), n, 2)`` and ``log p_t(z_t)`` of shape ``(len(times), n)``."""
        times = [float(t) for t in times]
        if len(times) < 2 or times[0] != 0.0 or any(b <= a for a, b in zip(times, times[1:])):
            raise CourseValueError(f"MovingDensity.paths: expected times starting at 0 and "
                                   f"increasing, got {times}")
        end = times[-1]
        return density_paths(self._flow(end), torch.as_tensor(z0, dtype=torch.float64),
                             [t / end for t in times])


SPIRAL = MovingDensity("outward spiral f = A z (div f = 0.8)", spiral_field, (1.2, 0.0),
                       ((0.2, 0.0), (0.0, 0.2)), matrix=SPIRAL_MATRIX)
SWIRL = MovingDensity("swirl (nonlinear, div f = 0)", swirl_field, (1.2, 0.0),
                      ((0.2, 0.0), (0.0, 0.2)))



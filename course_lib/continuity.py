"""Numerical companions of the continuity equation ``dp/dt + div(p f) = 0`` in 2D.

* The divergence theorem on a box ``V = [a_1, b_1] x [a_2, b_2]``: the net outflow
  ``oint_{dV} J . n dS`` equals ``int_V div J dz`` (:func:`outward_flux`,
  :func:`divergence_integral`, both by Gauss-Legendre quadrature, the divergence by autograd).
* Conservation of mass: :func:`evolve_density` moves a density on a grid with a
  finite-volume scheme. Each cell changes only by what crosses its faces, and what leaves
  one cell enters its neighbour, so the total mass ``sum p h^2`` is the same at every step.
* A closed form to compare with: under a linear field ``f(z) = A z`` a Gaussian stays
  Gaussian, ``m_t = e^{At} m_0`` and ``S_t = e^{At} S_0 e^{A^T t}`` (:func:`gaussian_pushforward`).

Fields are torch callables: a flux ``J(z)`` and a velocity ``f(t, z)`` map ``(batch, 2)``
to ``(batch, 2)``, like the vector field of a CNF.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .jacobian import divergence_exact
from .validation import CourseValueError, check_finite, finite_float, positive_float, positive_int

__all__ = ["outward_flux", "divergence_integral", "cell_centres", "evolve_density",
           "total_mass", "gaussian_pushforward", "gaussian_density", "gaussian_flux"]

Box = Sequence[float]  # (a_1, b_1, a_2, b_2)


def _nodes(a: float, b: float, n: int) -> tuple[Tensor, Tensor]:
    """Gauss-Legendre nodes and weights on ``[a, b]`` (exact for polynomials of degree < 2n)."""
    n = positive_int(n, "the number of quadrature nodes n", "continuity")
    x, w = np.polynomial.legendre.leggauss(n)
    x = 0.5 * (b - a) * x + 0.5 * (b + a)
    return torch.as_tensor(x), torch.as_tensor(0.5 * (b - a) * w)


def _check_box(box: Box, where: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(finite_float(v, "every corner of the box", where) for v in box)
    except TypeError:
        values = ()
    if len(values) != 4 or not (values[0] < values[1] and values[2] < values[3]):
        raise CourseValueError(f"{where}: expected a box (a_1, b_1, a_2, b_2) with a_1 < b_1 and "
                               f"a_2 < b_2, got {box!r}")
    return values


def outward_flux(J: Callable[[Tensor], Tensor], box: Box, n: int = 64) -> float:
    """Net outflow ``oint J . n dS`` through the four sides of the box, outward normals."""
    a1, b1, a2, b2 = _check_box(box, "outward_flux")
    s1, w1 = _nodes(a1, b1, n)
    s2, w2 = _nodes(a2, b2, n)

    def along(z1, z2, component):
        z = torch.stack(torch.broadcast_tensors(z1, z2), dim=1)
        out = J(z)
        check_finite(out, "the flux J(z)", "outward_flux")
        return out[:, component]

    def side(value: float) -> Tensor:
        return torch.tensor(value, dtype=torch.float64)

    right = along(side(b1), s2, 0) - along(side(a1), s2, 0)
    top = along(s1, side(b2), 1) - along(s1, side(a2), 1)
    return float((right * w2).sum() + (top * w1).sum())


def divergence_integral(J: Callable[[Tensor], Tensor], box: Box, n: int = 64) -> float:
    """``int_V div J dz`` over the box, with ``div J = tr(dJ/dz)`` from autograd."""
    a1, b1, a2, b2 = _check_box(box, "divergence_integral")
    s1, w1 = _nodes(a1, b1, n)
    s2, w2 = _nodes(a2, b2, n)
    z1, z2 = torch.meshgrid(s1, s2, indexing="ij")
    div = divergence_exact(J, torch.stack([z1.flatten(), z2.flatten()], dim=1), create_graph=False)
    return float((div.reshape(n, n) * w1[:, None] * w2[None, :]).sum())


def cell_centres(half_width: float, n: int, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> tuple[Tensor, Tensor, float]:
    """Centres ``(Z1, Z2)`` of an ``n x n`` grid of cells on ``[-L, L]^2``, and the side ``h``."""
    half_width = positive_float(half_width, "half_width", "cell_centres")
    n = positive_int(n, "the number of cells n", "cell_centres")
    h = 2 * half_width / n
    c = -half_width + h * (torch.arange(n, dtype=dtype, device=device) + 0.5)
    z1, z2 = torch.meshgrid(c, c, indexing="ij")
    return z1, z2, h


def total_mass(p: Tensor, h: float) -> Tensor:
    """``sum_cells p h^2`` (over the last two dimensions)."""
    return p.sum(dim=(-2, -1)) * h * h


def _face_velocity(field, t: float, z1: Tensor, z2: Tensor, component: int) -> Tensor:
    z = torch.stack([z1.flatten(), z2.flatten()], dim=1)
    with torch.no_grad():
        v = field(torch.tensor(t, dtype=z.dtype, device=z.device), z)
    if not isinstance(v, Tensor) or v.shape != z.shape:
        got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
        raise CourseValueError(f"evolve_density: expected the field to map points (n, 2) to "
                               f"velocities (n, 2), got {got}")
    check_finite(v, "the field's output f(t, z)", "evolve_density")
    return v[:, component].reshape(z1.shape)


def evolve_density(p0: Tensor, field: Callable[[Tensor, Tensor], Tensor], half_width: float,
                   times: Sequence[float], cfl: float = 0.4) -> Tensor:
    """Move the density ``p0`` (values at :func:`cell_centres`) along ``dz/dt = f(t, z)``.

    First-order upwind finite volumes in a closed box: the flux ``p f`` through each
    interior face is taken from the cell the flow comes from, and nothing crosses the
    outer boundary, so the total mass is conserved exactly (up to round-off). Time steps
    satisfy ``dt max|f| <= cfl h / 2``; with ``cfl <= 0.5`` no cell loses more than it
    holds, so ``p`` stays non-negative.

    Returns the density at each of ``times`` (increasing, starting at or after 0),
    shape ``(len(times), n, n)``.
    """
    if not isinstance(p0, Tensor) or p0.dim() != 2 or p0.shape[0] != p0.shape[1]:
        got = tuple(p0.shape) if isinstance(p0, Tensor) else type(p0).__name__
        raise CourseValueError(f"evolve_density: expected p0 of shape (n, n) on the grid of "
                               f"cell_centres, got {got}")
    times = [finite_float(t, "every time", "evolve_density") for t in times]
    if not times or times[0] < 0 or any(b < a for a, b in zip(times, times[1:])):
        raise CourseValueError(f"evolve_density: expected non-negative increasing times, "
                               f"got {times}")
    cfl = positive_float(cfl, "cfl", "evolve_density")
    check_finite(p0, "p0", "evolve_density")
    n = p0.shape[0]
    z1, z2, h = cell_centres(half_width, n, device=p0.device)
    p, t, out = p0.to(torch.float64).clone(), 0.0, []
    for t_end in times:
        while t < t_end - 1e-12:
            # velocities on the interior faces between neighbouring cells
            u = _face_velocity(field, t, 0.5 * (z1[1:] + z1[:-1]), z2[1:], 0)
            v = _face_velocity(field, t, z1[:, 1:], 0.5 * (z2[:, 1:] + z2[:, :-1]), 1)
            speed = max(u.abs().max().item(), v.abs().max().item(), 1e-12)
            dt = min(cfl * h / (2 * speed), t_end - t)
            flux1 = u.clamp(min=0) * p[:-1] + u.clamp(max=0) * p[1:]
            flux2 = v.clamp(min=0) * p[:, :-1] + v.clamp(max=0) * p[:, 1:]
            change = torch.zeros_like(p)
            change[:-1] -= flux1
            change[1:] += flux1
            change[:, :-1] -= flux2
            change[:, 1:] += flux2
            p = p + dt / h * change
            t += dt
        out.append(p.clone())
    return torch.stack(out)


def gaussian_pushforward(mean: Tensor, cov: Tensor, A: Tensor, t: float) -> tuple[Tensor, Tensor]:
    """Mean and covariance at time ``t`` of ``N(mean, cov)`` carried by ``dz/dt = A z``."""
    M = torch.linalg.matrix_exp(A * t)
    return M @ mean, M @ cov @ M.T


def gaussian_density(z1: Tensor, z2: Tensor, mean: Tensor, cov: Tensor) -> Tensor:
    """``N(z; mean, cov)`` evaluated on a grid."""
    r = torch.stack([z1, z2], dim=-1) - mean
    quad = (r @ torch.linalg.inv(cov) * r).sum(-1)
    return torch.exp(-0.5 * quad) / (2 * math.pi * torch.linalg.det(cov).sqrt())


def gaussian_flux(field: Callable[[Tensor], Tensor], mean=(0.0, 0.0),
                  cov=((1.0, 0.0), (0.0, 1.0))) -> Callable[[Tensor], Tensor]:
    """The probability flux ``J(z) = p(z) f(z)`` of ``p = N(mean, cov)`` moved by the velocity
    ``f`` (batches ``(n, 2) -> (n, 2)``), as a callable on batches ``(n, 2)``."""
    mean, cov = torch.tensor(mean, dtype=torch.float64), torch.tensor(cov, dtype=torch.float64)
    if mean.shape != (2,) or cov.shape != (2, 2):
        raise CourseValueError(f"gaussian_flux: expected a mean of shape (2,) and a covariance of "
                               f"shape (2, 2), got {tuple(mean.shape)} and {tuple(cov.shape)}")

    def flux(z: Tensor) -> Tensor:
        p = gaussian_density(z[:, 0], z[:, 1], mean.to(z), cov.to(z))
        return p[:, None] * field(z)

    return flux

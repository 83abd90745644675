"""Radial flow (Rezende and Mohamed, 2015): ``x = z + beta h(alpha, r) (z - z0)``.

With ``r = |z - z0|`` and ``h(alpha, r) = 1 / (alpha + r)`` it pulls points towards the
centre ``z0`` (``beta < 0``) or pushes them away (``beta > 0``), most strongly near ``z0``.
The Jacobian is ``(1 + beta h) I`` plus a rank-one term along ``z - z0``, so in ``d``
dimensions

    ``log|det J| = (d - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r)``
    ``           = (d - 1) log(1 + beta h) + log(1 + alpha beta / (alpha + r)^2)``.

The map is invertible when ``alpha > 0`` and ``beta > -alpha`` (at ``beta = -alpha`` the
centre is a singular point). ``Radial`` enforces it with ``alpha = softplus(a)`` and
``alpha + beta = softplus(b)``, floored at the smallest normal number of the dtype so that
an underflowing softplus cannot reach the boundary.

Numerically, ``g = alpha + beta`` is carried on its own: ``1 + beta h = (g + r) / (alpha + r)``
and ``1 + alpha beta / (alpha + r)^2 = (r^2 + 2 alpha r + alpha g) / (alpha + r)^2`` have no
cancellation near the boundary, and for large ``r`` the ``log1p`` forms are used, so nothing
is squared that could overflow (the map is stable for ``|z|`` up to the largest float).

Inverse: the direction of ``x - z0`` is that of ``z - z0``; only the radius is unknown.
Its length ``rho = |x - z0| = r (1 + beta / (alpha + r))`` gives the one-dimensional
equation ``r^2 + (alpha + beta - rho) r - alpha rho = 0``, a quadratic with exactly one
non-negative root (the product of its roots is ``-alpha rho <= 0``). The root is computed
in closed form, in the variant without cancellation, so it is exact to rounding; then
``z = z0 + (r / rho) (x - z0)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_finite, is_validating, positive_int
from .base import Flow, FlowInputError, check_input

__all__ = ["Radial", "radial"]


def _norm(v: Tensor) -> Tensor:
    """``|v|`` per row, scaled by the largest entry first so that squares cannot overflow."""
    big = v.abs().amax(dim=1, keepdim=True)
    safe = torch.where(big > 0, big, torch.ones_like(big))
    return (torch.linalg.vector_norm(v / safe, dim=1, keepdim=True) * big).squeeze(1)


def radius_from_image(rho: Tensor, alpha: Tensor, beta: Tensor,
                      alpha_plus_beta: Tensor | None = None) -> Tensor:
    """The ``r >= 0`` with ``r (1 + beta / (alpha + r)) = rho``: the non-negative root of
    ``r^2 + B r - C = 0`` with ``B = alpha + beta - rho`` and ``C = alpha rho >= 0``.

    ``alpha_plus_beta`` may be passed when it is known more accurately than the rounded sum.
    """
    g = alpha + beta if alpha_plus_beta is None else alpha_plus_beta
    big_b = g - rho
    c = alpha * rho
    # sqrt(B^2 + 4C), written as |B| sqrt(1 + 4 (C / B) / B) when |B| > 1 so that no square
    # overflows for large rho (C / B is about alpha there)
    large = big_b.abs() > 1
    b_large = torch.where(large, big_b, torch.ones_like(big_b))
    b_small = torch.where(large, torch.zeros_like(big_b), big_b)
    c_small = torch.where(large, torch.zeros_like(c), c)
    root = torch.where(large, b_large.abs() * torch.sqrt(1 + 4 * (c / b_large) / b_large),
                       torch.sqrt(b_small * b_small + 4 * c_small))
    # the textbook formula (-B + root) / 2 subtracts nearly equal numbers when B > 0;
    # there the equivalent 2C / (B + root) = 2 alpha rho / (B + root) is used instead
    positive = big_b > 0
    safe = torch.where(positive, big_b + root, torch.ones_like(root))
    return torch.where(positive, 2 * alpha * (rho / safe), (root - big_b) / 2)


def _log_abs_det(r: Tensor, alpha: Tensor, g: Tensor, dim: int) -> Tensor:
    """``(d-1) log(1 + beta h) + log(1 + alpha beta h^2)``, ``g = alpha + beta``, ``h = 1/(alpha+r)``.

    Near the centre (``r <= alpha``) the exact quotient forms, far out the ``log1p`` forms
    (there ``|beta h| < 1/2`` and ``|alpha beta h^2| < 1/4``); each branch sees inputs at
    which it is finite, so gradients through ``where`` stay finite too.
    """
    near = r <= alpha
    r_near = torch.where(near, r, torch.zeros_like(r))
    r_far = torch.where(near, alpha.expand_as(r), r)
    beta = g - alpha
    h_far = 1 / (alpha + r_far)
    first = torch.where(near, torch.log(g + r_near) - torch.log(alpha + r_near),
                        torch.log1p(beta * h_far))
    second = torch.where(near,
                         torch.log(r_near * (r_near + 2 * alpha) + alpha * g)
                         - 2 * torch.log(alpha + r_near),
                         torch.log1p((alpha * h_far) * (beta * h_far)))
    return (dim - 1) * first + second


def _radial_map(z: Tensor, z0: Tensor, alpha: Tensor, g: Tensor,
                inverse: bool = False) -> tuple[Tensor, Tensor]:
    """``radial`` once its arguments are checked; ``g = alpha + beta > 0``."""
    dim = z.shape[1]
    offset = z - z0
    length = _norm(offset)
    if inverse:
        r = radius_from_image(length, alpha, g - alpha, g)
        # rho = 0 only at x = z0, whose preimage is z0 itself (r = 0)
        positive = length > 0
        ratio = torch.where(positive, r / torch.where(positive, length, torch.ones_like(length)),
                            torch.zeros_like(length))
        return z0 + ratio[:, None] * offset, -_log_abs_det(r, alpha, g, dim)
    # 1 + beta / (alpha + r) = (g + r) / (alpha + r)
    factor = (g + length) / (alpha + length)
    return z0 + factor[:, None] * offset, _log_abs_det(length, alpha, g, dim)


def radial(z: Tensor, z0: Tensor, alpha, beta, inverse: bool = False) -> tuple[Tensor, Tensor]:
    """The radial map ``x = z + beta / (alpha + r) (z - z0)``, ``r = |z - z0|``, and its log-det.

    ``alpha > 0`` and ``beta > -alpha`` are required (strictly: at ``beta = -alpha`` the
    Jacobian is singular at the centre). With ``inverse=True`` the first argument is ``x``;
    it returns ``z`` and ``log|det J^{-1}(x)|``.

    Example:
        >>> x, logdet = radial(torch.randn(4, 2), torch.zeros(2), 1.0, 0.5)
    """
    check_input(z, (None,), "z", where="radial")
    dim = z.shape[1]
    z0 = torch.as_tensor(z0, dtype=z.dtype, device=z.device)
    alpha = torch.as_tensor(alpha, dtype=z.dtype, device=z.device)
    beta = torch.as_tensor(beta, dtype=z.dtype, device=z.device)
    if z0.shape != (dim,) or alpha.dim() != 0 or beta.dim() != 0:
        raise FlowInputError(f"radial: expected z0 of shape ({dim},) and scalars alpha, beta, got "
                             f"z0 {tuple(z0.shape)}, alpha {tuple(alpha.shape)}, "
                             f"beta {tuple(beta.shape)}")
    for name, value in (("z0", z0), ("alpha", alpha), ("beta", beta)):
        check_finite(value, name, "radial")
    if is_validating() and (not bool(alpha > 0) or not bool(beta > -alpha)):
        raise FlowInputError(f"radial: expected alpha > 0 and beta > -alpha (otherwise the map "
                             f"is not invertible), got alpha = {alpha.item():.4g}, "
                             f"beta = {beta.item():.4g}")
    return _radial_map(z, z0, alpha, alpha + beta, inverse)


class Radial(Flow):
    """A learnable radial flow, invertible for all parameters.

    ``alpha = softplus(a) > 0`` and ``alpha + beta = softplus(b) > 0`` (floored at the smallest
    normal number of the dtype). It starts as the identity (``beta = 0``) with its centre
    ``z0`` at the origin.

    Args:
        dim: number of coordinates.

    Example:
        >>> flow = Radial(2)
        >>> x, logdet = flow(torch.randn(5, 2))
    """

    def __init__(self, dim: int):
        dim = positive_int(dim, "dim", "Radial")
        super().__init__((dim,))
        self.z0 = nn.Parameter(torch.zeros(dim))
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))  # softplus(b) = softplus(a): beta = 0

    @property
    def alpha(self) -> Tensor:
        return F.softplus(self.a)

    @property
    def alpha_plus_beta(self) -> Tensor:
        """``softplus(b)``, floored so that it stays positive in the dtype."""
        return F.softplus(self.b).clamp_min(torch.finfo(self.b.dtype).tiny)

    @property
    def beta(self) -> Tensor:
        return self.alpha_plus_beta - self.alpha

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return _radial_map(z, self.z0, self.alpha, self.alpha_plus_beta)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _radial_map(x, self.z0, self.alpha, self.alpha_plus_beta, inverse=True)

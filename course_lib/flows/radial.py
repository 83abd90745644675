"""Radial flow (Rezende and Mohamed, 2015): ``x = z + beta h(alpha, r) (z - z0)``.

With ``r = |z - z0|`` and ``h(alpha, r) = 1 / (alpha + r)`` it pulls points towards the
centre ``z0`` (``beta < 0``) or pushes them away (``beta > 0``), most strongly near ``z0``.
The Jacobian is ``(1 + beta h) I`` plus a rank-one term along ``z - z0``, so in ``d``
dimensions

    ``log|det J| = (d - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r)``
    ``           = (d - 1) log(1 + beta h) + log(1 + alpha beta / (alpha + r)^2)``.

The map is invertible when ``alpha > 0`` and ``beta >= -alpha``. ``Radial`` enforces it
with ``alpha = softplus(a)`` and ``beta = -alpha + softplus(b)``.

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

from .base import Flow, FlowInputError, check_input

__all__ = ["Radial", "radial"]


def radius_from_image(rho: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """The ``r >= 0`` with ``r (1 + beta / (alpha + r)) = rho``: the non-negative root of
    ``r^2 + B r - C = 0`` with ``B = alpha + beta - rho`` and ``C = alpha rho >= 0``."""
    big_b, c = alpha + beta - rho, alpha * rho
    root = torch.sqrt(big_b * big_b + 4 * c)
    # the textbook formula (-B + root) / 2 subtracts nearly equal numbers when B > 0;
    # there the equivalent 2C / (B + root) is used instead
    safe = torch.where(big_b > 0, big_b + root, torch.ones_like(root))
    return torch.where(big_b > 0, 2 * c / safe, (root - big_b) / 2)


def _log_abs_det(r: Tensor, alpha: Tensor, beta: Tensor, dim: int) -> Tensor:
    return ((dim - 1) * torch.log1p(beta / (alpha + r))
            + torch.log1p(alpha * beta / (alpha + r) ** 2))


def radial(z: Tensor, z0: Tensor, alpha, beta, inverse: bool = False) -> tuple[Tensor, Tensor]:
    """The radial map ``x = z + beta / (alpha + r) (z - z0)``, ``r = |z - z0|``, and its log-det.

    ``alpha > 0`` and ``beta >= -alpha`` are required. With ``inverse=True`` the first
    argument is ``x``; it returns ``z`` and ``log|det J^{-1}(x)|``.

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
    if not bool(alpha > 0) or not bool(beta >= -alpha):
        raise FlowInputError(f"radial: expected alpha > 0 and beta >= -alpha (otherwise the map "
                             f"is not invertible), got alpha = {alpha.item():.4g}, "
                             f"beta = {beta.item():.4g}")
    offset = z - z0
    length = torch.linalg.vector_norm(offset, dim=1)
    if inverse:
        r = radius_from_image(length, alpha, beta)
        # rho = 0 only at x = z0, whose preimage is z0 itself (r = 0)
        ratio = torch.where(length > 0, r / torch.where(length > 0, length, 1.0), 0.0)
        return z0 + ratio[:, None] * offset, -_log_abs_det(r, alpha, beta, dim)
    x = z + (beta / (alpha + length))[:, None] * offset
    return x, _log_abs_det(length, alpha, beta, dim)


class Radial(Flow):
    """A learnable radial flow, invertible for all parameters.

    ``alpha = softplus(a) > 0`` and ``beta = -alpha + softplus(b) > -alpha``. It starts
    as the identity (``beta = 0``) with its centre ``z0`` at the origin.

    Args:
        dim: number of coordinates.

    Example:
        >>> flow = Radial(2)
        >>> x, logdet = flow(torch.randn(5, 2))
    """

    def __init__(self, dim: int):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise FlowInputError(f"Radial: expected a positive integer dim, got {dim!r}")
        super().__init__((dim,))
        self.z0 = nn.Parameter(torch.zeros(dim))
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))  # softplus(b) = softplus(a): beta = 0

    @property
    def alpha(self) -> Tensor:
        return F.softplus(self.a)

    @property
    def beta(self) -> Tensor:
        return F.softplus(self.b) - self.alpha

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return radial(z, self.z0, self.alpha, self.beta)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return radial(x, self.z0, self.alpha, self.beta, inverse=True)

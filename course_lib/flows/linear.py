"""Linear flows ``x = W z``: fixed permutations and a learnable matrix in LU form.

For a linear map the Jacobian is ``W`` itself, so ``log|det J| = log|det W|`` is the
same for every sample. A permutation only reorders coordinates (``|det W| = 1``,
log-det 0); stacked between coupling layers it lets every coordinate be transformed.

``LULinear`` writes ``W = P L U`` with ``P`` a fixed permutation, ``L`` lower triangular
with ones on its diagonal and ``U`` upper triangular with diagonal
``U_ii = sign_i * exp(log_u_i)``. Then

* ``log|det W| = sum_i log|U_ii| = sum_i log_u_i``, O(d) instead of O(d^3);
* ``W`` is invertible for every value of the parameters (no ``U_ii`` can be 0), as long as
  ``exp(log_u)`` is neither 0 nor inf in the dtype: with validation on, a ``log_u`` outside
  about ``(-103, 88.7)`` in float32 is refused, naming the parameter;
* ``z = U^{-1} L^{-1} P^T x`` costs two triangular solves.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..validation import CourseValueError, nonnegative_int, positive_int
from .base import Flow, FlowInputError, check_exp_parameter

__all__ = ["Permutation", "Reverse", "LULinear", "LUMatrix"]


class Permutation(Flow):
    """Reorder coordinates, ``x_i = z_{pi(i)}``, with a fixed random permutation ``pi``.

    ``log|det J| = 0``. The permutation is drawn once from ``seed`` (drawn again while
    it is the identity, which for ``dim = 2`` happens half the time) and stored as a
    buffer, so a saved model keeps it.

    Example:
        >>> x, logdet = Permutation(5, seed=1)(torch.randn(3, 5))
    """

    def __init__(self, dim: int, seed: int = 0):
        dim = positive_int(dim, "dim", type(self).__name__)
        seed = nonnegative_int(seed, "seed", type(self).__name__)
        super().__init__((dim,))
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(dim, generator=generator)
        while dim > 1 and bool((order == torch.arange(dim)).all()):
            order = torch.randperm(dim, generator=generator)
        self.register_buffer("order", order)
        self.register_buffer("inverse_order", torch.argsort(order))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[:, self.order], z.new_zeros(z.shape[0])

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.inverse_order], x.new_zeros(x.shape[0])


class Reverse(Permutation):
    """Reverse the order of the coordinates, ``x_i = z_{d-1-i}``; ``log|det J| = 0``."""

    def __init__(self, dim: int):
        super().__init__(dim)
        self.order.copy_(torch.arange(dim - 1, -1, -1))
        self.inverse_order.copy_(torch.arange(dim - 1, -1, -1))


class LUMatrix(nn.Module):
    """An always-invertible ``d x d`` matrix ``W = P L U`` (the parametrisation, not a flow).

    Shared by ``LULinear`` (vectors) and ``InvConv1x1`` (the channels of every pixel).

    Args:
        dim: size of the matrix.
        weight: the initial ``W`` (any invertible matrix, decomposed with partial
            pivoting); the identity by default. ``P`` and the signs of ``U_ii`` stay fixed.
        where: the name error messages start with.
    """

    def __init__(self, dim: int, weight: Tensor | None = None, where: str = "LUMatrix"):
        super().__init__()
        dim = positive_int(dim, "dim", where)
        if weight is None:
            weight = torch.eye(dim)
        try:
            weight = torch.as_tensor(weight)
        except (TypeError, ValueError, RuntimeError):
            raise CourseValueError(f"{where}: expected the initial weight as a ({dim}, {dim}) "
                                   f"tensor, got {type(weight).__name__}") from None
        if weight.shape != (dim, dim) or weight.is_complex():
            raise CourseValueError(f"{where}: expected an initial real weight of shape ({dim}, "
                                   f"{dim}), got {tuple(weight.shape)} {weight.dtype}")
        if not bool(torch.isfinite(weight).all()):
            raise FlowInputError(f"{where}: the initial weight contains non-finite values")
        # decompose in float64 so the stored factors reproduce W to ~1e-16
        weight = weight.to(torch.float64)
        p, lower, upper = torch.linalg.lu(weight)
        diag = torch.diagonal(upper)
        # a relative pivot test: with partial pivoting a pivot below dim * eps * max|W_ij|
        # is zero to float64 precision; 1e-20 * I (condition number 1) passes
        threshold = dim * torch.finfo(torch.float64).eps * weight.abs().max()
        if bool((diag.abs() <= threshold).any()):
            smallest = diag.abs().min().item()
            raise FlowInputError(
                f"{where}: the initial weight is singular to float64 precision (smallest LU pivot "
                f"{smallest:.3g} against a largest entry of {weight.abs().max().item():.3g}); a "
                "flow needs an invertible matrix")
        dtype = torch.get_default_dtype()
        log_u = diag.abs().log()
        info, pivots = torch.finfo(dtype), diag.abs()
        if bool((pivots.to(dtype) == 0).any() | torch.isinf(pivots.to(dtype)).any()):
            raise FlowInputError(f"{where}: the initial weight's LU pivots (from "
                                 f"{pivots.min().item():.3g} to {pivots.max().item():.3g}) are not "
                                 f"representable in {dtype} (range {info.tiny:.3g} .. "
                                 f"{info.max:.3g}); rescale the weight or use float64")
        self.where = where
        self.register_buffer("permutation", p.to(dtype))
        self.register_buffer("sign", diag.sign().to(dtype))
        self.lower = nn.Parameter(torch.tril(lower, -1).to(dtype))
        self.upper = nn.Parameter(torch.triu(upper, 1).to(dtype))
        self.log_u = nn.Parameter(log_u.to(dtype))
        self.dim = dim

    def factors(self) -> tuple[Tensor, Tensor]:
        """``(L, U)``: unit lower and upper triangular, built from the parameters."""
        check_exp_parameter(self.log_u, "log_u", self.where)
        eye = torch.eye(self.dim, dtype=self.lower.dtype, device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * torch.exp(self.log_u))
        return lower, upper

    def matrix(self) -> Tensor:
        """``W = P L U``."""
        lower, upper = self.factors()
        return self.permutation @ lower @ upper

    def log_abs_det(self) -> Tensor:
        """``log|det W| = sum_i log|U_ii|`` (``|det P| = det L = 1``)."""
        return self.log_u.sum()

    def solve(self, x: Tensor) -> Tensor:
        """``W^{-1} x = U^{-1} L^{-1} P^T x`` for ``x`` of shape ``(d, n)`` (triangular solves)."""
        lower, upper = self.factors()
        y = torch.linalg.solve_triangular(lower, self.permutation.T @ x, upper=False,
                                          unitriangular=True)
        return torch.linalg.solve_triangular(upper, y, upper=True)


class LULinear(Flow):
    """A learnable invertible linear map ``x = W z`` with ``W = P L U``.

    ``log|det J| = sum_i log|U_ii|``, the same for every sample.

    Args:
        dim: number of coordinates.
        weight: the initial ``W`` (invertible); the identity by default, so the flow
            starts as the identity map.

    Example:
        >>> x, logdet = LULinear(3)(torch.randn(4, 3))
    """

    def __init__(self, dim: int, weight: Tensor | None = None):
        dim = positive_int(dim, "dim", "LULinear")
        super().__init__((dim,))
        self.lu = LUMatrix(dim, weight, "LULinear")

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = z @ self.lu.matrix().T
        return x, self.lu.log_abs_det().expand(z.shape[0])

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.lu.solve(x.T).T
        return z, -self.lu.log_abs_det().expand(x.shape[0])

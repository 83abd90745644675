"""Planar flow (Rezende and Mohamed, 2015): ``x = z + u * tanh(w^T z + b)``.

It moves every point along one direction ``u`` by an amount that depends on where the
point lies across the hyperplane ``w^T z + b = 0``. The Jacobian is a rank-one update of
the identity, ``J = I + h'(w^T z + b) u w^T`` with ``h = tanh``, so the matrix
determinant lemma ``det(I + u v^T) = 1 + v^T u`` gives it in O(d):

    ``log|det J| = log|1 + h'(w^T z + b) w^T u|``.

Since ``0 < h' <= 1``, the map is invertible when ``w^T u > -1`` (at ``w^T u = -1`` the
Jacobian is singular where ``w^T z + b = 0``). ``Planar`` enforces this by using
``u_hat = u + (m(w^T u) - w^T u) w / |w|^2`` with ``m(a) = -1 + softplus(a)``, so
``w^T u_hat = m(w^T u) > -1`` for any raw ``u``. In floating point ``softplus(a)`` underflows
to 0 for very negative ``a`` (about ``-103`` in float32), which would put the map exactly on
the boundary; ``1 + w^T u_hat = softplus(w^T u)`` is therefore kept above ``sqrt(eps)`` of the
dtype (a floor far above the rounding of ``u_hat``, so the map and its log-determinant stay
consistent). The log-determinant is computed as ``log(t^2 + (1 - t^2)(1 + w^T u))`` with
``t = tanh(w^T z + b)``, which has no cancellation near the boundary.

There is no closed-form inverse, but only one number is unknown: ``s = w^T z + b``.
Taking ``w^T`` of both sides of the map gives the scalar equation

    ``s + (w^T u) tanh(s) = w^T x + b``,

whose left side increases with ``s``; once it is solved, ``z = x - u tanh(s)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_finite, is_validating, positive_float, positive_int
from .base import Flow, FlowInputError, check_input

__all__ = ["Planar", "planar", "u_hat"]

MAX_ITER = 100


def _one_plus_m(u: Tensor, w: Tensor) -> Tensor:
    """``1 + w^T u_hat = softplus(w^T u)``, floored at ``sqrt(eps)`` of the dtype."""
    floor = torch.finfo(u.dtype).eps ** 0.5
    return F.softplus(torch.dot(w, u)).clamp_min(floor)


def u_hat(u: Tensor, w: Tensor) -> Tensor:
    """``u + (m(w^T u) - w^T u) w / |w|^2`` with ``m(a) = -1 + softplus(a)``: ``w^T u_hat > -1``.

    For ``w = 0`` the map is a translation by ``u tanh(b)``, invertible for any ``u``, and
    ``u`` is returned unchanged (without a Python branch on the values).
    """
    wu, ww = torch.dot(w, u), torch.dot(w, w)
    positive = ww > 0
    coef = (_one_plus_m(u, w) - 1 - wu) / torch.where(positive, ww, torch.ones_like(ww))
    return u + torch.where(positive, coef, torch.zeros_like(coef)) * w


def _derivative(t: Tensor, one_plus_m: Tensor) -> Tensor:
    """``1 + m (1 - t^2) = t^2 + (1 - t^2)(1 + m)``, without cancellation when ``m ~ -1``."""
    t2 = t * t
    return t2 + (1 - t2) * one_plus_m


def solve_increasing(c: Tensor, m: Tensor, tol: float | None = None,
                     max_iter: int = MAX_ITER, one_plus_m: Tensor | None = None) -> Tensor:
    """Solve ``s + m tanh(s) = c`` for ``s``, elementwise, given ``m >= -1``.

    Newton's method kept inside the bracket ``[c - |m|, c + |m|]`` (the root lies there
    because ``|tanh| < 1``); a step that would leave it, or that shrinks by less than
    half, is replaced by bisection, so it converges even where the derivative
    ``1 + m (1 - tanh^2 s)`` is close to 0. Stops when every step is at most
    ``tol * (1 + |s|)``; ``tol`` is 64 machine epsilons of ``c``'s dtype by default
    (``1.4e-14`` in float64). ``one_plus_m`` is ``1 + m`` when it is known more accurately
    than ``1 + m`` rounds to (``Planar`` passes ``softplus(w^T u)``).

    Raises:
        FlowInputError: when it has not converged after ``max_iter`` iterations.
    """
    if tol is None:
        tol = 64 * torch.finfo(c.dtype).eps
    m = m.expand_as(c)
    if one_plus_m is None:
        one_plus_m = 1 + m
    lo, hi = c - m.abs(), c + m.abs()
    s = c.clone()
    previous = torch.full_like(c, math.inf)
    for _ in range(max_iter):
        t = torch.tanh(s)
        g = s + m * t - c
        lo = torch.where(g < 0, s, lo)
        hi = torch.where(g > 0, s, hi)
        step = g / _derivative(t, one_plus_m)
        newton = s - step
        bisect = ((newton < lo) | (newton > hi) | ~torch.isfinite(newton)
                  | (step.abs() > 0.5 * previous.abs()))
        new = torch.where(bisect, (lo + hi) / 2, newton)
        change = new - s
        s, previous = new, change
        if bool((change.abs() <= tol * (1 + s.abs())).all()):
            return s
    worst = (change.abs() / (1 + s.abs())).max().item()
    raise FlowInputError(
        f"planar inverse: the root solve for s = w^T z + b did not converge in {max_iter} "
        f"iterations (largest relative step {worst:.3g}, tolerance {tol:.3g}); "
        "increase max_iter")


def planar(z: Tensor, u: Tensor, w: Tensor, b, inverse: bool = False, tol: float | None = None,
           max_iter: int = MAX_ITER) -> tuple[Tensor, Tensor]:
    """The planar map ``x = z + u tanh(w^T z + b)`` and its ``log|det J|``.

    ``log|det J| = log|1 + tanh'(w^T z + b) w^T u|`` by the matrix determinant lemma.

    ``u`` is used as given (no ``u_hat``), so ``w^T u > -1`` is required (strictly: at
    ``-1`` the Jacobian is singular on the hyperplane ``w^T z + b = 0``). With
    ``inverse=True`` the first argument is ``x``; it returns ``z`` and
    ``log|det J^{-1}(x)|`` (the root solve of ``solve_increasing``).

    Example (the worked example of the lecture):
        >>> u, w = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0])
        >>> planar(torch.tensor([[0.5, -0.5]]), u, w, 0.0)[1]
        tensor([0.5802])
    """
    check_input(z, (None,), "z", where="planar")
    dim = z.shape[1]
    u = torch.as_tensor(u, dtype=z.dtype, device=z.device)
    w = torch.as_tensor(w, dtype=z.dtype, device=z.device)
    b = torch.as_tensor(b, dtype=z.dtype, device=z.device)
    if u.shape != (dim,) or w.shape != (dim,) or b.dim() != 0:
        raise FlowInputError(f"planar: expected u and w of shape ({dim},) and a scalar b, got "
                             f"u {tuple(u.shape)}, w {tuple(w.shape)}, b {tuple(b.shape)}")
    for name, value in (("u", u), ("w", w), ("b", b)):
        check_finite(value, name, "planar")
    wu = torch.dot(w, u)
    if is_validating() and not bool(wu > -1):
        relation = ("puts the map on the boundary (its Jacobian is singular where "
                    "w^T z + b = 0)") if bool(wu == -1) else "< -1 makes the map fold over"
        raise FlowInputError(f"planar: w^T u = {wu.item():.4g} {relation}; it needs w^T u > -1 "
                             "(Planar enforces it with u_hat)")
    return _planar_map(z, u, w, b, 1 + wu, inverse, tol, max_iter)


def _planar_map(z: Tensor, u: Tensor, w: Tensor, b: Tensor, one_plus_wu: Tensor,
                inverse: bool = False, tol: float | None = None,
                max_iter: int = MAX_ITER) -> tuple[Tensor, Tensor]:
    """``planar`` once its arguments are checked; ``one_plus_wu`` is ``1 + w^T u > 0``."""
    if inverse:
        s = solve_increasing(z @ w + b, one_plus_wu - 1, tol, max_iter, one_plus_wu)
        t = torch.tanh(s)
        return z - u * t[:, None], -torch.log(_derivative(t, one_plus_wu))
    t = torch.tanh(z @ w + b)
    return z + u * t[:, None], torch.log(_derivative(t, one_plus_wu))


class Planar(Flow):
    """A learnable planar flow ``x = z + u_hat tanh(w^T z + b)``, invertible for all parameters.

    Args:
        dim: number of coordinates.
        tol, max_iter: tolerance and iteration cap of the inverse's root solve
            (see ``solve_increasing``).

    ``w`` starts random and ``u`` at the value that makes ``u_hat = 0`` (``u`` along ``w``
    with ``w^T u = log(e - 1)``, where ``m(w^T u) = 0``), so the flow starts as the identity.

    Example:
        >>> flow = Planar(2)
        >>> x, logdet = flow(torch.randn(5, 2))
        >>> z, inv_logdet = flow.inverse(x)
    """

    def __init__(self, dim: int, tol: float | None = None, max_iter: int = MAX_ITER):
        dim = positive_int(dim, "dim", "Planar")
        max_iter = positive_int(max_iter, "max_iter", "Planar")
        if tol is not None:
            tol = positive_float(tol, "tol", "Planar")
        super().__init__((dim,))
        w = torch.randn(dim) / math.sqrt(dim)
        self.w = nn.Parameter(w)
        self.u = nn.Parameter(math.log(math.e - 1) * w / torch.dot(w, w))
        self.b = nn.Parameter(torch.zeros(()))
        self.tol, self.max_iter = tol, max_iter

    @property
    def u_hat(self) -> Tensor:
        """The constrained ``u``, with ``w^T u_hat > -1``."""
        return u_hat(self.u, self.w)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return _planar_map(z, self.u_hat, self.w, self.b, _one_plus_m(self.u, self.w))

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _planar_map(x, self.u_hat, self.w, self.b, _one_plus_m(self.u, self.w),
                           inverse=True, tol=self.tol, max_iter=self.max_iter)

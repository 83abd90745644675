"""Neural spline flows (Durkan et al., 2019): monotonic rational-quadratic splines.

On ``[-B, B]`` the map is a spline with ``K`` bins: knots ``(x^k, y^k)``, ``k = 0..K``,
from ``(-B, -B)`` to ``(B, B)``, bin widths ``w_k = x^{k+1} - x^k``, heights
``h_k = y^{k+1} - y^k`` and positive slopes ``delta_k`` at the knots, ``delta_0 = delta_K = 1``.
In bin ``k``, with ``xi = (x - x^k) / w_k``, ``s_k = h_k / w_k`` and
``D = s_k + (delta_{k+1} + delta_k - 2 s_k) xi (1 - xi)``,

``y = y^k + h_k [s_k xi^2 + delta_k xi (1 - xi)] / D``,

``dy/dx = s_k^2 [delta_{k+1} xi^2 + 2 s_k xi (1 - xi) + delta_k (1 - xi)^2] / D^2``.

Positive widths, heights and slopes make every bin strictly increasing, so the spline is
invertible: given ``y``, ``xi`` is the root in ``[0, 1]`` of ``a xi^2 + b xi + c = 0`` with
``a = h_k (s_k - delta_k) + (y - y^k) c_2``, ``b = h_k delta_k - (y - y^k) c_2``,
``c = -s_k (y - y^k)`` and ``c_2 = delta_{k+1} + delta_k - 2 s_k``. Outside ``[-B, B]`` the
map is the identity; the boundary slopes 1 make it continuously differentiable there.
``RQSpline`` learns one spline per coordinate; ``RQSCoupling`` and ``RQSAutoregressive``
take the spline parameters from a conditioner network.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .autoregressive import MADE
from .base import Flow, FlowInputError
from .nets import MLP, first_linear, spread_hinges

__all__ = ["rq_spline", "spline_parameters", "RQSpline", "RQSCoupling",
           "RQSAutoregressive", "MIN_BIN_SIZE", "MIN_DERIVATIVE"]

# Floors keep every bin at least 0.1% of the interval and every slope at least 1e-3, so
# that the log-determinant stays bounded and the inverse quadratic stays well conditioned.
MIN_BIN_SIZE = 1e-3
MIN_DERIVATIVE = 1e-3
# Offset so that an unconstrained value of 0 gives slope exactly 1: a zero-initialised
# conditioner then yields equal bins with unit slopes, which is the identity map.
_UNIT_SLOPE = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def rq_spline(x: Tensor, widths: Tensor, heights: Tensor, derivatives: Tensor,
              bound: float, inverse: bool = False) -> tuple[Tensor, Tensor]:
    """The rational-quadratic spline applied elementwise, and ``log|dy/dx|`` per element.

    Args:
        x: points, any shape ``S``.
        widths, heights: positive bin sizes of shape ``(..., K)``, each summing to
            ``2 * bound`` (up to a relative ``sqrt(eps)`` of the dtype); ``...`` must
            broadcast to ``S``.
        derivatives: positive slopes at the ``K - 1`` interior knots, shape ``(..., K - 1)``.
        bound: the spline acts on ``[-bound, bound]``; the identity outside.
        inverse: apply the inverse spline ``g^{-1}`` instead.

    Returns:
        ``(y, logabsdet)``, both of shape ``S``: ``y = g(x)`` and ``log g'(x)``, or with
        ``inverse=True`` ``y = g^{-1}(x)`` and ``log (g^{-1})'(x) = -log g'(y)``.

    Example:
        >>> w = torch.full((8,), 0.75)
        >>> y, ld = rq_spline(torch.tensor([0.5, 4.0]), w, w, torch.ones(7), bound=3.0)
    """
    _check_spline(x, widths, heights, derivatives, bound)
    # rescale so the sizes sum to 2B up to rounding: the spline then meets the identity
    # exactly at +-B, which keeps the whole map continuous and invertible
    widths = widths * (2 * bound / widths.sum(-1, keepdim=True))
    heights = heights * (2 * bound / heights.sum(-1, keepdim=True))
    return _spline(x, torch.stack([widths, heights], -2), derivatives, bound, inverse)


def _check_spline(x, widths, heights, derivatives, bound) -> None:
    named = (("x", x), ("widths", widths), ("heights", heights), ("derivatives", derivatives))
    for name, t in named:
        if not isinstance(t, Tensor) or not t.is_floating_point():
            got = t.dtype if isinstance(t, Tensor) else type(t).__name__
            raise FlowInputError(f"rq_spline: expected {name} to be a float tensor, got {got}")
        if t.dtype != x.dtype:
            raise FlowInputError(f"rq_spline: expected {name} of the dtype of x, {x.dtype}, "
                                 f"got {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise FlowInputError(f"rq_spline: {name} contains non-finite values (NaN or inf)")
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0 \
            or not math.isfinite(bound):
        raise FlowInputError(f"rq_spline: expected bound to be a positive finite number, "
                             f"got {bound!r}")
    if widths.dim() == 0 or widths.shape != heights.shape:
        raise FlowInputError(f"rq_spline: expected widths and heights of the same shape "
                             f"(..., K), got {tuple(widths.shape)} and {tuple(heights.shape)}")
    lead, bins = tuple(widths.shape[:-1]), widths.shape[-1]
    if derivatives.shape != (*lead, bins - 1):
        raise FlowInputError(f"rq_spline: expected derivatives of shape {(*lead, bins - 1)} "
                             f"(the K - 1 interior knots of K = {bins} bins), "
                             f"got {tuple(derivatives.shape)}")
    try:
        fits = torch.broadcast_shapes(lead, x.shape) == x.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise FlowInputError(f"rq_spline: the parameters' leading shape {lead} does not "
                             f"broadcast to the shape of x, {tuple(x.shape)}")
    for name, t in named[1:]:
        if bool((t <= 0).any()):
            raise FlowInputError(f"rq_spline: {name} must be positive (a zero or negative value "
                                 f"makes the spline non-invertible), got {t.min().item():.4g}")
    tol = 2 * bound * torch.finfo(widths.dtype).eps ** 0.5
    for name, t in named[1:3]:
        error = (t.sum(-1) - 2 * bound).abs()
        if bool((error > tol).any()):
            worst = t.sum(-1).flatten()[error.argmax()].item()
            raise FlowInputError(f"rq_spline: {name} must sum to 2 * bound = {2 * bound:.6g} "
                                 f"along the last dimension, got a sum of {worst:.6g}")


def _spline(x: Tensor, sizes: Tensor, derivatives: Tensor, bound: float,
            inverse: bool = False) -> tuple[Tensor, Tensor]:
    """``rq_spline`` without checks; ``sizes`` stacks widths and heights, ``(..., 2, K)``."""
    shape, bins = x.shape, sizes.shape[-1]
    knots = F.pad(torch.cumsum(sizes, -1), (1, 0)) - bound      # x^0..x^K and y^0..y^K
    slopes = F.pad(derivatives, (1, 1), value=1.0)              # delta_0..delta_K
    t = x.clamp(-bound, bound)
    inside = t == x
    # the bin is the number of interior knots at or below t: no loop over bins
    k = (t.unsqueeze(-1) >= knots[..., int(inverse), 1:-1]).sum(-1, keepdim=True)
    k2 = k.unsqueeze(-2).expand(*shape, 2, 1)
    x_k, y_k = torch.gather(knots.expand(*shape, 2, bins + 1), -1, k2).squeeze(-1).unbind(-1)
    w, h = torch.gather(sizes.expand(*shape, 2, bins), -1, k2).squeeze(-1).unbind(-1)
    d0, d1 = torch.gather(slopes.expand(*shape, bins + 1), -1,
                          torch.cat([k, k + 1], -1)).unbind(-1)
    s = h / w
    c2 = torch.add(d0 + d1, s, alpha=-2)                         # delta_k + delta_{k+1} - 2 s_k
    if inverse:
        # the root in [0, 1] written as 2c / (-b - sqrt(b^2 - 4ac)) with c = -s dy: no
        # cancellation when a -> 0, where the textbook (-b + sqrt(.)) / 2a loses every digit
        dy = t - y_k
        q = dy * c2
        a = torch.addcmul(q, h, s - d0)
        b = h * d0 - q
        sd = s * dy
        xi = 2 * sd / (b + torch.sqrt(torch.addcmul(b * b, a, sd, value=4).clamp(min=0)))
    else:
        xi = (t - x_k) / w
    one_minus = 1 - xi
    xi_1m = xi * one_minus
    xi2 = xi * xi
    denom = torch.addcmul(s, c2, xi_1m)
    numer = torch.addcmul(torch.addcmul(d1 * xi2, s, xi_1m, value=2), d0, one_minus * one_minus)
    if inverse:
        y, log_deriv = torch.addcmul(x_k, xi, w), torch.log((denom / s) ** 2 / numer)
    else:
        y = torch.addcdiv(y_k, h * torch.addcmul(s * xi2, d0, xi_1m), denom)
        log_deriv = torch.log(numer * (s / denom) ** 2)
    return torch.where(inside, y, x), torch.where(inside, log_deriv, 0.0)


def _spline_sizes(raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    bins = (raw.shape[-1] + 1) // 3
    u, v = raw.split([2 * bins, bins - 1], -1)
    # softmax over a leading dimension: torch's CPU kernel is several times slower along
    # a short last dimension than across a long one
    sizes = torch.softmax(u.unflatten(-1, (2, bins)).movedim(-1, 0), 0).movedim(0, -1)
    sizes = sizes * (2 * bound * (1 - bins * MIN_BIN_SIZE)) + 2 * bound * MIN_BIN_SIZE
    return sizes, F.softplus(v + _UNIT_SLOPE) + MIN_DERIVATIVE


def spline_parameters(raw: Tensor, bound: float) -> tuple[Tensor, Tensor, Tensor]:
    """Map unconstrained ``raw`` of shape ``(..., 3K - 1)`` to ``(widths, heights, derivatives)``.

    ``w = 2B (m + (1 - K m) softmax(u))`` (likewise ``h``) with ``m = MIN_BIN_SIZE``, and
    ``delta = MIN_DERIVATIVE + softplus(v + c)`` with ``c`` chosen so that ``raw = 0`` is
    the identity (equal bins, unit slopes).
    """
    sizes, derivatives = _spline_sizes(raw, bound)
    return (*sizes.unbind(-2), derivatives)


def _check_spline_args(where: str, dim: int, bins: int, bound: float) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise FlowInputError(f"{where}: dim must be a positive integer, got {dim!r}")
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins < 1 / MIN_BIN_SIZE:
        raise FlowInputError(f"{where}: bins must be an integer from 2 to "
                             f"{int(1 / MIN_BIN_SIZE) - 1}, got {bins!r}")
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0 \
            or not math.isfinite(bound):
        raise FlowInputError(f"{where}: bound must be a positive number, got {bound!r}")


class RQSpline(Flow):
    """A learnable rational-quadratic spline on each coordinate, ``x_i = g_i(z_i)``.

    ``log|det J| = sum_i log g_i'(z_i)``. Each coordinate has its own ``3K - 1``
    unconstrained parameters (mapped by ``spline_parameters``); all zero at first, which
    is the identity.

    Args:
        dim: number of coordinates.
        bins: number of bins ``K``.
        bound: the splines act on ``[-bound, bound]``, the identity outside.

    Example:
        >>> x, logdet = RQSpline(2)(torch.randn(5, 2))
    """

    def __init__(self, dim: int, bins: int = 8, bound: float = 3.0):
        _check_spline_args("RQSpline", dim, bins, bound)
        super().__init__((dim,))
        self.bins, self.bound = bins, float(bound)
        self.raw = nn.Parameter(torch.zeros(dim, 3 * bins - 1))

    def _apply_spline(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        y, log_deriv = _spline(x, *_spline_sizes(self.raw, self.bound), self.bound, inverse)
        return y, log_deriv.sum(-1)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._apply_spline(z, inverse=False)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._apply_spline(x, inverse=True)

    def extra_repr(self) -> str:
        return f"dim={self.event_shape[0]}, bins={self.bins}, bound={self.bound}"





class RQSCoupling(Flow):
    """Spline coupling: half of the coordinates pass through and set the splines of the rest.

    The coordinates split into ``a`` (the first ``dim // 2``) and ``b`` (the rest);
    ``parity=1`` swaps the roles. ``x_a = z_a`` and ``x_b = g(z_b; theta(z_a))``, with an
    MLP ``theta`` giving ``3K - 1`` spline parameters per coordinate of ``b``. The Jacobian
    is block triangular, so ``log|det J| = sum_{i in b} log g'(z_i)``, and the inverse
    ``z_b = g^{-1}(x_b; theta(x_a))`` is one pass as well.

    Args:
        dim: number of coordinates (at least 2).
        bins: number of bins ``K``.
        bound: the splines act on ``[-bound, bound]``, the identity outside.
        hidden: width of the MLP's hidden layers.
        n_hidden: number of hidden layers.
        parity: 0 or 1; alternate it between layers so that every coordinate is transformed.
        activation: a module class for the MLP's hidden layers.
        init_gain: the ``gain`` of ``spread_hinges`` for the MLP's first layer.

    Example:
        >>> x, logdet = RQSCoupling(2, parity=1)(torch.randn(5, 2))
    """

    def __init__(self, dim: int, bins: int = 8, bound: float = 3.0, hidden: int = 64,
                 n_hidden: int = 2, parity: int = 0,
                 activation: Callable[[], nn.Module] = nn.ReLU, init_gain: float = 1.0):
        _check_spline_args("RQSCoupling", dim, bins, bound)
        if dim < 2:
            raise FlowInputError(f"RQSCoupling: dim must be at least 2 (one part conditions the "
                                 f"other), got {dim}")
        if parity not in (0, 1):
            raise FlowInputError(f"RQSCoupling: parity must be 0 or 1, got {parity!r}")
        super().__init__((dim,))
        self.bins, self.bound, self.parity = bins, float(bound), parity
        half = dim // 2
        # (start, stop) of the copied part a and the transformed part b
        self.kept = (0, half) if parity == 0 else (half, dim)
        self.changed = (half, dim) if parity == 0 else (0, half)
        self.conditioner = MLP(self.kept[1] - self.kept[0],
                               (self.changed[1] - self.changed[0]) * (3 * bins - 1), hidden,
                               n_hidden, activation)
        spread_hinges(first_linear(self.conditioner), gain=init_gain)

    def _couple(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        x_a, x_b = x[:, slice(*self.kept)], x[:, slice(*self.changed)]
        raw = self.conditioner(x_a).view(*x_b.shape, -1)
        y_b, log_deriv = _spline(x_b, *_spline_sizes(raw, self.bound), self.bound, inverse)
        y = torch.cat([x_a, y_b] if self.parity == 0 else [y_b, x_a], dim=1)
        return y, log_deriv.sum(-1)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(z, inverse=False)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, inverse=True)

    def extra_repr(self) -> str:
        return (f"dim={self.event_shape[0]}, bins={self.bins}, bound={self.bound}, "
                f"parity={self.parity}")


class RQSAutoregressive(Flow):
    """Autoregressive spline flow: coordinate ``i`` goes through a spline set by ``x_<i``.

    ``x_i = g(z_i; theta_i(x_<i))``, all ``theta_i`` from one MADE pass over the data ``x``
    (as in MAF). The Jacobian is triangular in the MADE's order, so
    ``log|det J| = sum_i log g'(z_i)``. Density is the fast direction:
    ``z_i = g^{-1}(x_i; theta_i(x_<i))`` is one pass. Sampling builds ``x`` one coordinate
    at a time: ``d`` sequential passes.

    Args:
        dim: number of coordinates ``d``.
        bins: number of bins ``K``.
        bound: the splines act on ``[-bound, bound]``, the identity outside.
        hidden: widths of the MADE's hidden layers.
        order: ``"sequential"``, ``"random"`` or a permutation (see ``MADE``).
        seed: seed of the random order.
        activation: a module class for the MADE's hidden layers.
        init_gain: the ``gain`` of ``spread_hinges`` for the MADE's first layer.

    Example:
        >>> z, logdet = RQSAutoregressive(3).inverse(torch.randn(5, 3))
    """

    def __init__(self, dim: int, bins: int = 8, bound: float = 3.0,
                 hidden: int | Sequence[int] = (64, 64), order="sequential", seed: int = 0,
                 activation: Callable[[], nn.Module] = nn.ReLU, init_gain: float = 1.0):
        _check_spline_args("RQSAutoregressive", dim, bins, bound)
        super().__init__((dim,))
        self.bins, self.bound = bins, float(bound)
        self.made = MADE(dim, hidden, 3 * bins - 1, order, seed, activation)
        spread_hinges(first_linear(self.made), gain=init_gain)

    @property
    def order(self) -> Tensor:
        return self.made.order

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        # after pass k the first k coordinates in the order are exact, as coordinate i
        # needs only those before it; d passes make all of them exact
        x = z
        for _ in range(self.event_shape[0]):
            x, log_deriv = _spline(z, *_spline_sizes(self.made(x), self.bound), self.bound)
        return x, log_deriv.sum(-1)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, log_deriv = _spline(x, *_spline_sizes(self.made(x), self.bound), self.bound,
                               inverse=True)
        return z, log_deriv.sum(-1)

    def extra_repr(self) -> str:
        return f"dim={self.event_shape[0]}, bins={self.bins}, bound={self.bound}"

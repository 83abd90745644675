"""The monotonic rational-quadratic spline (Durkan et al., 2019), as a plain function.

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

``spline_parameters`` maps unconstrained numbers (a network's outputs) to valid
parameters: bin sizes and slopes have a floor and a ceiling, so that no output of a
conditioner, however extreme, can make the spline ill-conditioned.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..validation import (CourseValueError, check_finite, is_validating, positive_float,
                          positive_int)
from .base import FlowInputError

__all__ = ["rq_spline", "spline_parameters", "MIN_BIN_SIZE", "MIN_DERIVATIVE", "MAX_DERIVATIVE"]

# Floors keep every bin at least 0.1% of the interval and every slope at least 1e-3, so
# that the log-determinant stays bounded and the inverse quadratic stays well conditioned.
MIN_BIN_SIZE = 1e-3
MIN_DERIVATIVE = 1e-3
# The matching ceiling: no knot slope above 1e3. Without it an extreme conditioner output
# (an outlier in a conditioning coordinate) gives a slope of 1e30 and the inverse loses
# every digit; with it every slope of the spline, at the knots and the bins' mean slopes
# h_k / w_k alike, lies within [1e-3, 1e3].
MAX_DERIVATIVE = 1 / MIN_DERIVATIVE
# Slopes up to the knee are left exactly as they are; above it they bend smoothly (value,
# first and second derivative continuous) towards the ceiling.
_KNEE = MAX_DERIVATIVE / 2
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
        >>> y
        tensor([0.5000, 4.0000])
    """
    bound = _check_spline(x, widths, heights, derivatives, bound)
    # rescale so the sizes sum to 2B up to rounding: the spline then meets the identity
    # exactly at +-B, which keeps the whole map continuous and invertible
    widths = widths * (2 * bound / widths.sum(-1, keepdim=True))
    heights = heights * (2 * bound / heights.sum(-1, keepdim=True))
    return spline(x, torch.stack([widths, heights], -2), derivatives, bound, inverse)


def _check_spline(x, widths, heights, derivatives, bound) -> float:
    """Types, dtypes and shapes always; values (finite, positive, sums) while validating."""
    named = (("x", x), ("widths", widths), ("heights", heights), ("derivatives", derivatives))
    for name, t in named:
        if not isinstance(t, Tensor) or not t.is_floating_point():
            got = t.dtype if isinstance(t, Tensor) else type(t).__name__
            raise FlowInputError(f"rq_spline: expected {name} to be a float tensor, got {got}")
        if t.dtype != x.dtype:
            raise FlowInputError(f"rq_spline: expected {name} of the dtype of x, {x.dtype}, "
                                 f"got {t.dtype}")
    bound = positive_float(bound, "bound", "rq_spline")
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
    if not is_validating():
        return bound
    for name, t in named:
        try:
            check_finite(t, name, "rq_spline")
        except CourseValueError as exc:
            raise FlowInputError(str(exc)) from None
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
    return bound


def spline(x: Tensor, sizes: Tensor, derivatives: Tensor, bound: float,
           inverse: bool = False) -> tuple[Tensor, Tensor]:
    """``rq_spline`` without checks; ``sizes`` stacks widths and heights, ``(..., 2, K)``.

    No value is read into Python, so it runs under ``torch.func`` transforms.
    """
    shape, bins = x.shape, sizes.shape[-1]
    knots = F.pad(torch.cumsum(sizes, -1), (1, 0)) - bound      # x^0..x^K and y^0..y^K
    slopes = F.pad(derivatives, (1, 1), value=1.0)              # delta_0..delta_K
    t = x.clamp(-bound, bound)
    inside = t == x
    # the bin is the number of interior knots at or below t: no loop over bins
    k = (t.unsqueeze(-1) >= knots[..., int(inverse), 1:-1]).sum(-1, keepdim=True)
    ends = torch.cat([k, k + 1], -1)                            # the bin's two knots
    lo, hi = torch.gather(knots.expand(*shape, 2, bins + 1), -1,
                          ends.unsqueeze(-2).expand(*shape, 2, 2)).unbind(-1)
    (x_k, y_k), (x_k1, y_k1) = lo.unbind(-1), hi.unbind(-1)
    w, h = torch.gather(sizes.expand(*shape, 2, bins), -1,
                        k.unsqueeze(-2).expand(*shape, 2, 1)).squeeze(-1).unbind(-1)
    d0, d1 = torch.gather(slopes.expand(*shape, bins + 1), -1, ends).unbind(-1)
    s = h / w
    c2 = torch.add(d0 + d1, s, alpha=-2)                         # delta_k + delta_{k+1} - 2 s_k
    if inverse:
        # Solve from the nearer knot. Measured down from the upper knot, with
        # u = 1 - xi, the bin has the same form with the knot slopes swapped:
        # y^{k+1} - y = h [s u^2 + delta_{k+1} u (1 - u)] / D. From the lower knot near
        # the upper one, a = h (s - delta_k) + (y - y^k) c_2 and b subtract two nearly equal
        # numbers (in float32 a root 1.009 for a point whose root is 0.8705); from the
        # nearer knot the distance r <= h / 2 is a difference of close numbers, exact, and
        # the coefficients carry no cancellation. The root is then kept in [0, 1]: the point returned lies in
        # the bin that was searched, where the forward map agrees with this one.
        dy, dy_top = t - y_k, y_k1 - t
        upper = dy > dy_top
        r = torch.where(upper, dy_top, dy)
        near = torch.where(upper, d1, d0)
        # the root in [0, 1] of a v^2 + b v - s r = 0, in the form without cancellation:
        # for b >= 0, 2 s r / (b + sqrt(disc)) (the textbook (-b + sqrt(disc)) / 2a loses
        # every digit as a -> 0); for b < 0, where a > 0, (sqrt(disc) - b) / 2a (the other
        # form would subtract two nearly equal numbers when 4 a s r << b^2)
        q = r * c2
        a = torch.addcmul(q, h, s - near)
        b = h * near - q
        sr = s * r
        root = torch.sqrt(torch.addcmul(b * b, a, sr, value=4).clamp(min=0))
        negative = b < 0
        v = torch.where(negative, root - b, 2 * sr) / torch.where(negative, 2 * a, b + root)
        v = v.clamp(0.0, 1.0)
        xi = torch.where(upper, 1 - v, v)
        one_minus = torch.where(upper, v, 1 - v)
        y = torch.where(upper, torch.addcmul(x_k1, v, w, value=-1), torch.addcmul(x_k, v, w))
    else:
        # each of xi and 1 - xi from its own knot: exact differences near either knot
        xi, one_minus = (t - x_k) / w, (x_k1 - t) / w
    xi_1m = xi * one_minus
    xi2 = xi * xi
    denom = torch.addcmul(s, c2, xi_1m)
    numer = torch.addcmul(torch.addcmul(d1 * xi2, s, xi_1m, value=2), d0, one_minus * one_minus)
    if inverse:
        log_deriv = torch.log((denom / s) ** 2 / numer)
    else:
        y = torch.addcdiv(y_k, h * torch.addcmul(s * xi2, d0, xi_1m), denom)
        log_deriv = torch.log(numer * (s / denom) ** 2)
    return torch.where(inside, y, x), torch.where(inside, log_deriv, 0.0)


def capped_slopes(delta: Tensor) -> Tensor:
    """Slopes ``delta >= MIN_DERIVATIVE`` bent smoothly under ``MAX_DERIVATIVE``.

    The identity up to the knee ``T = MAX_DERIVATIVE / 2``; above it
    ``T + (M - T) tanh((delta - T) / (M - T))`` with ``M = MAX_DERIVATIVE``, which has
    slope 1 and curvature 0 at the knee and tends to ``M`` (an infinite ``delta`` gives ``M``).
    """
    room = MAX_DERIVATIVE - _KNEE
    bent = _KNEE + room * torch.tanh((delta - _KNEE) / room)
    return torch.where(delta > _KNEE, bent, delta)


def spline_sizes(raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """``raw`` of shape ``(..., 3K - 1)`` to the stacked sizes ``(..., 2, K)`` and slopes."""
    bins = (raw.shape[-1] + 1) // 3
    u, v = raw.split([2 * bins, bins - 1], -1)
    # softmax over a leading dimension: torch's CPU kernel is several times slower along
    # a short last dimension than across a long one
    sizes = torch.softmax(u.unflatten(-1, (2, bins)).movedim(-1, 0), 0).movedim(0, -1)
    sizes = sizes * (2 * bound * (1 - bins * MIN_BIN_SIZE)) + 2 * bound * MIN_BIN_SIZE
    return sizes, capped_slopes(F.softplus(v + _UNIT_SLOPE) + MIN_DERIVATIVE)


def spline_parameters(raw: Tensor, bound: float) -> tuple[Tensor, Tensor, Tensor]:
    """Map unconstrained ``raw`` of shape ``(..., 3K - 1)`` to ``(widths, heights, derivatives)``.

    ``w = 2B (m + (1 - K m) softmax(u))`` (likewise ``h``) with ``m = MIN_BIN_SIZE``, and
    ``delta = MIN_DERIVATIVE + softplus(v + c)`` with ``c`` chosen so that ``raw = 0`` is
    the identity (equal bins, unit slopes), bent smoothly under ``MAX_DERIVATIVE``
    (``capped_slopes``).

    Example:
        >>> widths, heights, derivatives = spline_parameters(torch.zeros(3 * 4 - 1), 2.0)
        >>> widths
        tensor([1., 1., 1., 1.])
    """
    sizes, derivatives = spline_sizes(raw, bound)
    return (*sizes.unbind(-2), derivatives)


def spline_arguments(where: str, bins, bound) -> tuple[int, float]:
    """Check a spline flow's ``bins`` and ``bound``; return them as ``int`` and ``float``."""
    bins = positive_int(bins, "bins", where, minimum=2)
    if bins * MIN_BIN_SIZE >= 1:
        raise CourseValueError(f"{where}: expected bins to be an integer from 2 to "
                               f"{int(1 / MIN_BIN_SIZE) - 1} (every bin keeps at least "
                               f"MIN_BIN_SIZE = {MIN_BIN_SIZE} of the interval), got {bins}")
    return bins, positive_float(bound, "bound", where)

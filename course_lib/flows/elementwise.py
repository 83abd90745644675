"""Elementwise flows: each coordinate is mapped on its own, so the Jacobian is diagonal
and ``log|det J| = sum_i log|f'(z_i)|``. Also the soft bound on log-scales that every
affine flow with a learned scale uses."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import CourseValueError, is_validating, positive_float, positive_int
from .base import Flow, FlowInputError

__all__ = ["Affine", "Exp", "Sigmoid", "bounded_log_scale"]


def bounded_log_scale(s_raw: Tensor, bound: float) -> Tensor:
    """``B tanh(s_raw / B)``: a log-scale squashed smoothly into ``(-B, B)``.

    ``exp`` of an unbounded network output can overflow within a few training steps; near
    0 the bound changes nothing (slope 1), far out it saturates. ``bound = inf`` means no
    bound (``s_raw`` itself), never ``inf * tanh(0) = NaN``.
    """
    bound = positive_float(bound, "bound", "bounded_log_scale", allow_inf=True)
    if math.isinf(bound):
        return s_raw
    return bound * torch.tanh(s_raw / bound)


def _as_vector(value, dim: int, name: str) -> Tensor:
    try:
        if isinstance(value, bool):
            raise TypeError
        t = torch.as_tensor(value, dtype=torch.get_default_dtype())
    except (TypeError, ValueError, RuntimeError):
        raise CourseValueError(f"Affine: expected {name} to be a number or a tensor of shape "
                               f"({dim},), got {value!r} ({type(value).__name__})") from None
    if t.dim() == 0:
        t = t.expand(dim)
    if t.shape != (dim,):
        raise CourseValueError(f"Affine: expected {name} to be a number or a tensor of shape "
                               f"({dim},), got shape {tuple(t.shape)}")
    if is_validating() and t.device.type != "meta" and not bool(torch.isfinite(t).all()):
        raise CourseValueError(f"Affine: expected a finite {name}, got {value!r}")
    return t.clone()


def _saturation_error(where: str, z: Tensor, bad: Tensor, target: str) -> FlowInputError:
    value = z[bad].flatten()[0].item()
    side = "1" if value > 0 else "0"
    return FlowInputError(
        f"{where}: {target} rounds to exactly {side} in {z.dtype} at z = {value:.4g}, where the "
        f"map is no longer invertible (its inverse would return {'inf' if value > 0 else '-inf'}); "
        "keep |z| smaller (about 16 in float32, 36 in float64 for values near 1) or use float64")


class Affine(Flow):
    """Per-dimension scale and shift, ``x = a * z + b``.

    ``log|det J| = sum_i log|a_i|``. A negative ``a_i`` flips that axis (the map is
    then decreasing, which is why the absolute value matters); ``a_i = 0`` collapses
    it and is rejected.

    Args:
        dim: number of coordinates.
        scale: initial ``a`` (a number or a tensor of shape ``(dim,)``, finite); 1 by default.
            A zero entry is accepted here (a lecture shows the collapse it causes), and
            refused when the flow is used.
        shift: initial ``b`` (finite); 0 by default.
        learnable: whether ``a`` and ``b`` are trainable parameters.

    Example:
        >>> x, logdet = Affine(1, scale=2.0, shift=3.0)(torch.zeros(4, 1))
    """

    def __init__(self, dim: int, scale=1.0, shift=0.0, learnable: bool = True):
        dim = positive_int(dim, "dim", "Affine")
        super().__init__((dim,))
        scale, shift = _as_vector(scale, dim, "scale"), _as_vector(shift, dim, "shift")
        if learnable:
            self.scale, self.shift = nn.Parameter(scale), nn.Parameter(shift)
        else:
            self.register_buffer("scale", scale)
            self.register_buffer("shift", shift)

    def _checked_scale(self) -> Tensor:
        if is_validating():
            if not bool(torch.isfinite(self.scale).all() & torch.isfinite(self.shift).all()):
                raise CourseValueError("Affine: scale or shift contains non-finite values (NaN or "
                                       "inf); re-initialise them")
            if bool((self.scale == 0).any()):
                zero = (self.scale == 0).nonzero().flatten().tolist()
                raise FlowInputError(f"Affine: scale is 0 in dimension(s) {zero}; a zero scale "
                                     "collapses that axis and the map is not invertible")
        return self.scale

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        a = self._checked_scale()
        logdet = torch.log(a.abs()).sum().expand(z.shape[0])
        return z * a + self.shift, logdet

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a = self._checked_scale()
        logdet = -torch.log(a.abs()).sum().expand(x.shape[0])
        return (x - self.shift) / a, logdet


class Exp(Flow):
    """``x = exp(z)``: maps the real line onto ``(0, inf)``; ``log|det J| = sum_i z_i``.

    A standard normal pushed through it is the log-normal. The inverse is the
    logarithm, defined for ``x > 0`` only. Where ``exp(z)`` overflows the dtype
    (``z > 88.7`` in float32, ``z > 709.8`` in float64) or rounds to 0 (``z < -103`` in
    float32), the map is not invertible in that precision and forward raises (with
    validation on) instead of returning inf or 0.
    """

    def __init__(self, dim: int):
        super().__init__((positive_int(dim, "dim", "Exp"),))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.exp(z)
        if is_validating():
            bad = ~(torch.isfinite(x) & (x > 0))
            if bool(bad.any()):
                value = z[bad].flatten()[0].item()
                info = torch.finfo(z.dtype)
                raise FlowInputError(
                    f"Exp.forward: exp(z) {'overflows' if value > 0 else 'underflows to 0'} in "
                    f"{z.dtype} at z = {value:.4g}; expected z in "
                    f"({math.log(info.tiny * info.eps):.4g}, {math.log(info.max):.4g}) for this "
                    "dtype; use float64 or smaller inputs")
        return x, z.sum(dim=1)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if is_validating() and bool((x <= 0).any()):
            raise FlowInputError("Exp.inverse: the logarithm is defined on (0, inf), "
                                 f"got a value {x.min().item():.4g} <= 0")
        z = torch.log(x)
        return z, -z.sum(dim=1)


class Sigmoid(Flow):
    """``x = 1 / (1 + exp(-z))``: maps the real line onto ``(0, 1)``.

    ``log|det J| = sum_i log sigma(z_i) + log sigma(-z_i)``, computed with
    ``logsigmoid`` so it stays finite for large ``|z|``. ``Inverse(Sigmoid(d))`` is
    the logit, defined on ``(0, 1)`` only. Where ``sigma(z)`` rounds to exactly 0 or 1
    (``z >= 16.7`` in float32) the value can no longer be mapped back, and forward raises
    (with validation on).
    """

    def __init__(self, dim: int):
        super().__init__((positive_int(dim, "dim", "Sigmoid"),))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.sigmoid(z)
        if is_validating():
            bad = (x <= 0) | (x >= 1)
            if bool(bad.any()):
                raise _saturation_error("Sigmoid.forward", z, bad, "sigmoid(z)")
        logdet = (F.logsigmoid(z) + F.logsigmoid(-z)).sum(dim=1)
        return x, logdet

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if is_validating() and bool(((x <= 0) | (x >= 1)).any()):
            bad = x[(x <= 0) | (x >= 1)][0].item()
            raise FlowInputError("Sigmoid.inverse (the logit): defined on the open interval "
                                 f"(0, 1), got {bad:.4g}")
        log_x, log_1mx = torch.log(x), torch.log1p(-x)
        return log_x - log_1mx, -(log_x + log_1mx).sum(dim=1)

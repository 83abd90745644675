"""Elementwise flows: each coordinate is mapped on its own, so the Jacobian is diagonal
and ``log|det J| = sum_i log|f'(z_i)|``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Flow, FlowInputError

__all__ = ["Affine", "Exp", "Sigmoid"]


def _as_vector(value, dim: int, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.get_default_dtype())
    if t.dim() == 0:
        t = t.expand(dim)
    if t.shape != (dim,):
        raise ValueError(f"expected {name} to be a number or a tensor of shape ({dim},), "
                         f"got shape {tuple(t.shape)}")
    return t.clone()


class Affine(Flow):
    """Per-dimension scale and shift, ``x = a * z + b``.

    ``log|det J| = sum_i log|a_i|``. A negative ``a_i`` flips that axis (the map is
    then decreasing, which is why the absolute value matters); ``a_i = 0`` collapses
    it and is rejected.

    Args:
        dim: number of coordinates.
        scale: initial ``a`` (a number or a tensor of shape ``(dim,)``); 1 by default.
        shift: initial ``b``; 0 by default.
        learnable: whether ``a`` and ``b`` are trainable parameters.

    Example:
        >>> x, logdet = Affine(1, scale=2.0, shift=3.0)(torch.zeros(4, 1))
    """

    def __init__(self, dim: int, scale=1.0, shift=0.0, learnable: bool = True):
        super().__init__((dim,))
        scale, shift = _as_vector(scale, dim, "scale"), _as_vector(shift, dim, "shift")
        if learnable:
            self.scale, self.shift = nn.Parameter(scale), nn.Parameter(shift)
        else:
            self.register_buffer("scale", scale)
            self.register_buffer("shift", shift)

    def _checked_scale(self) -> Tensor:
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
    logarithm, defined for ``x > 0`` only.
    """

    def __init__(self, dim: int):
        super().__init__((dim,))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return torch.exp(z), z.sum(dim=1)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if bool((x <= 0).any()):
            raise FlowInputError("Exp.inverse: the logarithm is defined on (0, inf), "
                                 f"got a value {x.min().item():.4g} <= 0")
        z = torch.log(x)
        return z, -z.sum(dim=1)


class Sigmoid(Flow):
    """``x = 1 / (1 + exp(-z))``: maps the real line onto ``(0, 1)``.

    ``log|det J| = sum_i log sigma(z_i) + log sigma(-z_i)``, computed with
    ``logsigmoid`` so it stays finite for large ``|z|``. ``Inverse(Sigmoid(d))`` is
    the logit, defined on ``(0, 1)`` only.
    """

    def __init__(self, dim: int):
        super().__init__((dim,))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        logdet = (F.logsigmoid(z) + F.logsigmoid(-z)).sum(dim=1)
        return torch.sigmoid(z), logdet

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if bool(((x <= 0) | (x >= 1)).any()):
            bad = x[(x <= 0) | (x >= 1)][0].item()
            raise FlowInputError("Sigmoid.inverse (the logit): defined on the open interval "
                                 f"(0, 1), got {bad:.4g}")
        z = torch.log(x) - torch.log1p(-x)
        logdet = -(torch.log(x) + torch.log1p(-x)).sum(dim=1)
        return z, logdet

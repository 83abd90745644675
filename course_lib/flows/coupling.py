"""Coupling layers: NICE (additive) and RealNVP (affine).

A mask splits ``z`` into a part ``z_a`` that is copied and a part ``z_b`` that is
transformed, with parameters computed from ``z_a`` by any network (the conditioner):

* NICE:    ``x_a = z_a``,  ``x_b = z_b + t(z_a)``,                 ``log|det J| = 0``
* RealNVP: ``x_a = z_a``,  ``x_b = z_b * exp(s(z_a)) + t(z_a)``,   ``log|det J| = sum s(z_a)``

The Jacobian is block triangular: ``dx_a/dz = [I, 0]`` and ``dx_b/dz_b = diag(exp(s))``,
so its determinant is the product of the diagonal, whatever the conditioner is. The
inverse needs no inverse of the conditioner either, because ``z_a = x_a`` is known:
``z_b = (x_b - t(x_a)) * exp(-s(x_a))``. Stacking layers with alternating masks lets
every coordinate be transformed.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .base import Flow, FlowInputError
from .nets import MLP, ConvNet

__all__ = ["affine_coupling_step", "AdditiveCoupling", "AffineCoupling"]

IMAGE_MASKS = ("checkerboard", "channel")


def affine_coupling_step(z: Tensor, s, t, mask: Tensor | None = None,
                         inverse: bool = False) -> tuple[Tensor, Tensor]:
    """One affine coupling step with given log-scale ``s`` and shift ``t``.

    ``x = z * exp(s) + t`` where ``mask`` is True (the part ``z_b``), ``x = z`` elsewhere
    (the part ``z_a``); ``log|det J| = sum of s over the masked entries``. With
    ``inverse=True`` it computes ``z = (x - t) * exp(-s)`` and ``log|det J^-1| = -sum s``.

    Args:
        z: a batch ``(batch, ...)``.
        s, t: numbers or tensors broadcastable to ``z``.
        mask: a bool tensor broadcastable to one sample, True where ``z`` is
            transformed; ``None`` transforms every entry.

    Example (the 2D worked example: ``s = 0.5``, so the scale is ``exp(0.5) = 1.649``):
        >>> affine_coupling_step(torch.tensor([[1.0, 3.0]]), 0.5, 2.0, torch.tensor([False, True]))
        (tensor([[1.0000, 6.9462]]), tensor([0.5000]))
    """
    if not isinstance(z, Tensor) or z.dim() < 2:
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise FlowInputError(f"affine_coupling_step: expected z of shape (batch, ...), got {got}")
    s = torch.as_tensor(s, dtype=z.dtype, device=z.device)
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise FlowInputError("affine_coupling_step: expected mask to be a bool tensor, "
                                 f"got {getattr(mask, 'dtype', type(mask).__name__)}")
        s, t = torch.where(mask, s, 0.0), torch.where(mask, t, 0.0)
    if s.shape != z.shape:
        s = s.expand_as(z)
    log_det = s.sum(1) if s.dim() == 2 else s.flatten(1).sum(1)
    if inverse:
        return (z - t) * torch.exp(-s), -log_det
    return z * torch.exp(s) + t, log_det


def _vector_mask(dim: int, mask, parity: int) -> Tensor:
    if mask is None:
        transformed = torch.arange(dim) >= dim // 2
    elif isinstance(mask, Tensor):
        if mask.dtype != torch.bool or mask.shape != (dim,):
            raise FlowInputError(f"expected a bool mask of shape ({dim},) for dim={dim}, got "
                                 f"{mask.dtype} of shape {tuple(mask.shape)}")
        transformed = mask.clone()
    else:
        raise FlowInputError(f"expected mask to be None (halves), a bool tensor of shape ({dim},), "
                             f"or one of the image masks {IMAGE_MASKS}, got {mask!r}")
    return ~transformed if parity else transformed


def _check_split(transformed: Tensor, where: str) -> None:
    if not bool(transformed.any()):
        raise FlowInputError(f"{where}: the mask transforms nothing; it must mark at least one "
                             "entry as transformed")
    if bool(transformed.all()):
        raise FlowInputError(f"{where}: the mask transforms everything, leaving nothing to "
                             "condition on; at least one entry must be copied unchanged")


class _Coupling(Flow):
    """Masks, conditioner and the two directions shared by both coupling layers."""

    n_params = 1  # conditioner outputs per transformed entry

    def __init__(self, dim: int, mask=None, parity: int = 0, conditioner: Callable | None = None,
                 hidden: int = 64, n_hidden: int = 2, activation: Callable[[], nn.Module] = nn.SiLU):
        name = type(self).__name__
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise FlowInputError(f"{name}: expected a positive integer dim (or channels), got {dim!r}")
        if parity not in (0, 1):
            raise FlowInputError(f"{name}: expected parity 0 or 1, got {parity!r}")
        self.image = isinstance(mask, str)
        if self.image:
            if mask not in IMAGE_MASKS:
                raise FlowInputError(f"{name}: expected mask None, a bool tensor, or one of "
                                     f"{IMAGE_MASKS}, got {mask!r}")
            super().__init__((dim, None, None))
            if mask == "channel":
                _check_split((torch.arange(dim) >= dim // 2) != bool(parity),
                             f"{name} with a channel mask and {dim} channel(s)")
            n_in, n_out = dim, self.n_params * dim
        else:
            super().__init__((dim,))
            transformed = _vector_mask(dim, mask, parity)
            _check_split(transformed, f"{name} with dim={dim}")
            self.register_buffer("index_a", (~transformed).nonzero().flatten(), persistent=False)
            self.register_buffer("index_b", transformed.nonzero().flatten(), persistent=False)
            n_in, n_out = len(self.index_a), self.n_params * len(self.index_b)
            # two contiguous blocks (the default halves) split and concatenate instead of
            # gathering and scattering: the same map, fewer and cheaper operations
            blocks = int((transformed[1:] != transformed[:-1]).sum()) == 1
            self._halves = (int(transformed.sum()), bool(transformed[0])) if blocks else None
        self.mask_kind, self.parity, self._n_out = mask, parity, n_out
        self._mask_cache: tuple | None = None
        if conditioner is None:
            conditioner = (ConvNet if self.image else MLP)(n_in, n_out, hidden, n_hidden, activation)
        self.conditioner = conditioner

    def image_mask(self, height: int, width: int, device=None) -> Tensor:
        """Bool mask of the transformed entries of one image, broadcastable to ``(C, H, W)``."""
        key = (height, width, device)
        if self._mask_cache is not None and self._mask_cache[0] == key:
            return self._mask_cache[1]
        if self.mask_kind == "checkerboard":
            grid = torch.arange(height, device=device)[:, None] + torch.arange(width, device=device)
            mask = ((grid + self.parity) % 2 == 1)[None]
            _check_split(mask, f"{type(self).__name__} with a checkerboard mask on "
                               f"{height}x{width} images")
        else:
            c = self.event_shape[0]
            mask = ((torch.arange(c, device=device) >= c // 2) != bool(self.parity))[:, None, None]
        self._mask_cache = (key, mask)
        return mask

    def _condition(self, y_a: Tensor) -> Tensor:
        h = self.conditioner(y_a)
        if h.shape[1] != self._n_out:
            raise FlowInputError(f"{type(self).__name__}: the conditioner must return "
                                 f"{self._n_out} values per sample (dim 1), got {tuple(h.shape)}")
        return h

    def _step(self, y: Tensor, h: Tensor, mask: Tensor | None,
              inverse: bool) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _couple(self, y: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        if self.image:
            mask = self.image_mask(y.shape[2], y.shape[3], y.device)
            h = self._condition(torch.where(mask, 0.0, y))
            return self._step(y, h, mask, inverse)
        if self._halves is None:
            h = self._condition(y[:, self.index_a])
            out_b, logdet = self._step(y[:, self.index_b], h, None, inverse)
            return y.index_copy(1, self.index_b, out_b), logdet
        n_b, b_first = self._halves
        n_a = y.shape[1] - n_b
        y_b, y_a = y.split([n_b, n_a], 1) if b_first else y.split([n_a, n_b], 1)[::-1]
        out_b, logdet = self._step(y_b, self._condition(y_a), None, inverse)
        return torch.cat([out_b, y_a] if b_first else [y_a, out_b], 1), logdet

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(z, inverse=False)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, inverse=True)

    def extra_repr(self) -> str:
        mask = "halves" if self.mask_kind is None else (
            self.mask_kind if self.image else "custom")
        return f"{super().extra_repr()}, mask={mask}, parity={self.parity}"


class AdditiveCoupling(_Coupling):
    """NICE's additive coupling, ``x_a = z_a``, ``x_b = z_b + t(z_a)``: volume preserving.

    ``log|det J| = 0`` exactly: the Jacobian is triangular with ones on the diagonal.

    Args:
        dim: number of coordinates of a vector, or channels of an image (with an image mask).
        mask: ``None`` splits a vector into halves (``z_a`` the first ``dim // 2``
            coordinates); a bool tensor of shape ``(dim,)`` marks the transformed ones;
            ``"checkerboard"`` (alternate pixels) or ``"channel"`` (the last ``C - C // 2``
            channels are transformed) make it an image flow on ``(batch, C, H, W)``.
        parity: 1 swaps the roles of ``z_a`` and ``z_b``; alternate it between layers.
        conditioner: computes ``t`` from ``z_a``: ``(batch, |a|) -> (batch, |b|)`` for
            vectors, ``(batch, C, H, W) -> (batch, C, H, W)`` for images (it sees ``z``
            with ``z_b`` set to 0). By default an ``MLP`` / ``ConvNet`` with a zero last
            layer, so the layer starts as the identity.
        hidden, n_hidden, activation: width, depth and activation of the default conditioner.

    Example:
        >>> x, logdet = AdditiveCoupling(2)(torch.randn(5, 2))
    """

    n_params = 1

    def _step(self, y, h, mask, inverse):
        t = h if mask is None else torch.where(mask, h, 0.0)
        logdet = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        return (y - t if inverse else y + t), logdet


class AffineCoupling(_Coupling):
    """RealNVP's affine coupling, ``x_a = z_a``, ``x_b = z_b * exp(s(z_a)) + t(z_a)``.

    ``log|det J| = sum_i s_i(z_a)``. The log-scale is bounded softly,
    ``s = B * tanh(s_raw / B)`` with ``B = scale_bound`` (3 by default): ``exp`` of an
    unbounded ``s`` overflows, and one large scale early in training makes the loss
    jump, so ``|s| < B`` keeps every layer's stretch within ``exp(+-B)`` (about 20x).
    Near 0 the bound is invisible (slope 1), so the layer still starts as the identity.

    Args:
        dim: number of coordinates of a vector, or channels of an image (with an image mask).
        mask: ``None`` splits a vector into halves (``z_a`` the first ``dim // 2``
            coordinates); a bool tensor of shape ``(dim,)`` marks the transformed ones;
            ``"checkerboard"`` (alternate pixels) or ``"channel"`` (the last ``C - C // 2``
            channels are transformed) make it an image flow on ``(batch, C, H, W)``.
        parity: 1 swaps the roles of ``z_a`` and ``z_b``; alternate it between layers.
        conditioner: computes ``(s_raw, t)`` from ``z_a``: ``(batch, |a|) -> (batch, 2|b|)``
            for vectors, ``(batch, C, H, W) -> (batch, 2C, H, W)`` for images (it sees
            ``z`` with ``z_b`` set to 0); the first half of dim 1 is ``s_raw``. By default
            an ``MLP`` / ``ConvNet`` with a zero last layer, so the layer starts as the identity.
        hidden, n_hidden, activation: width, depth and activation of the default conditioner.
        scale_bound: the bound ``B`` on ``|s|``.

    Example:
        >>> x, logdet = AffineCoupling(2)(torch.randn(5, 2))
        >>> x, logdet = AffineCoupling(4, mask="checkerboard")(torch.randn(5, 4, 8, 8))
    """

    n_params = 2

    def __init__(self, dim: int, mask=None, parity: int = 0, conditioner: Callable | None = None,
                 hidden: int = 64, n_hidden: int = 2, activation: Callable[[], nn.Module] = nn.SiLU,
                 scale_bound: float = 3.0):
        if not scale_bound > 0:
            raise FlowInputError(f"AffineCoupling: scale_bound must be positive, got {scale_bound!r}")
        super().__init__(dim, mask, parity, conditioner, hidden, n_hidden, activation)
        self.scale_bound = float(scale_bound)

    def log_scale(self, s_raw: Tensor) -> Tensor:
        """``s = B * tanh(s_raw / B)``: the bounded log-scale, ``|s| < B``."""
        return self.scale_bound * torch.tanh(s_raw / self.scale_bound)

    def _step(self, y, h, mask, inverse):
        s_raw, t = h.chunk(2, dim=1)
        return affine_coupling_step(y, self.log_scale(s_raw), t, mask, inverse)

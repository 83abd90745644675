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

from ..validation import check_finite_parameters, positive_float, positive_int
from .base import Flow, FlowInputError
from .nets import MLP, ConvNet, bounded_log_scale, check_conditioner_output

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


def _vector_mask(dim: int, mask, parity: int, where: str) -> Tensor:
    if mask is None:
        transformed = torch.arange(dim) >= dim // 2
    elif isinstance(mask, Tensor):
        if mask.dtype != torch.bool or mask.shape != (dim,):
            raise FlowInputError(f"{where}: expected a bool mask of shape ({dim},) for dim={dim}, "
                                 f"got {mask.dtype} of shape {tuple(mask.shape)}")
        transformed = mask.detach().cpu().clone()
    else:
        raise FlowInputError(f"{where}: expected mask to be None (halves), a bool tensor of shape "
                             f"({dim},), or one of the image masks {IMAGE_MASKS}, got {mask!r}")
    return ~transformed if parity else transformed


def _check_split(transformed: Tensor, where: str) -> None:
    if not bool(transformed.any()):
        raise FlowInputError(f"{where}: the mask transforms nothing; it must mark at least one "
                             "entry as transformed")
    if bool(transformed.all()):
        raise FlowInputError(f"{where}: the mask transforms everything, leaving nothing to "
                             "condition on; at least one entry must be copied unchanged")


class _Coupling(Flow):
    """The coupling scheme every coupling layer shares: split, conditioner, two directions.

    A mask splits the input into the copied part ``a`` and the transformed part ``b`` (the
    halves of a vector, a bool mask, or a checkerboard or channel mask of an image); the
    conditioner reads ``a`` and returns ``n_params`` numbers per entry of ``b``; a subclass's
    ``_step`` applies its elementwise transform to ``b`` with them, in either direction,
    and returns ``(output, log|det J|)``. As ``a`` passes unchanged, both directions are one
    pass. Vectors: ``_step`` gets ``y_b`` of shape ``(batch, |b|)`` and ``h`` of shape
    ``(batch, n_params |b|)`` and ``mask=None``. Images: ``_step`` gets the whole image
    ``(batch, C, H, W)``, ``h`` of shape ``(batch, n_params C, H, W)`` and the bool mask of
    ``b``, and must leave the entries outside the mask unchanged.
    """

    def __init__(self, dim: int, mask, parity: int, conditioner: Callable | None, hidden: int,
                 n_hidden: int, activation: Callable[[], nn.Module], n_params: int):
        name = type(self).__name__
        image = isinstance(mask, str)
        dim = positive_int(dim, "channels" if image else "dim", name)
        if parity not in (0, 1):
            raise FlowInputError(f"{name}: expected parity 0 or 1, got {parity!r}")
        if conditioner is not None and not callable(conditioner):
            raise FlowInputError(f"{name}: expected conditioner to be a module or a function, "
                                 f"got {type(conditioner).__name__}")
        self.image = image
        if image:
            if mask not in IMAGE_MASKS:
                raise FlowInputError(f"{name}: expected mask None, a bool tensor, or one of "
                                     f"{IMAGE_MASKS}, got {mask!r}")
            super().__init__((dim, None, None))
            if mask == "channel":
                _check_split((torch.arange(dim) >= dim // 2) != bool(parity),
                             f"{name} with a channel mask and {dim} channel(s)")
            n_in, n_out = dim, n_params * dim
        else:
            super().__init__((dim,))
            transformed = _vector_mask(dim, mask, parity, name)
            _check_split(transformed, f"{name} with dim={dim}")
            self.register_buffer("index_a", (~transformed).nonzero().flatten(), persistent=False)
            self.register_buffer("index_b", transformed.nonzero().flatten(), persistent=False)
            n_in, n_out = len(self.index_a), n_params * len(self.index_b)
            # two contiguous blocks (the default halves) split and concatenate instead of
            # gathering and scattering: the same map, fewer and cheaper operations
            blocks = int((transformed[1:] != transformed[:-1]).sum()) == 1
            self._halves = (int(transformed.sum()), bool(transformed[0])) if blocks else None
        self.mask_kind, self.parity, self.n_params, self._n_out = mask, parity, n_params, n_out
        self._mask_cache: tuple | None = None
        if conditioner is None:
            conditioner = (ConvNet if image else MLP)(n_in, n_out, hidden, n_hidden, activation)
        self.conditioner = conditioner

    def image_mask(self, height: int, width: int, device=None) -> Tensor:
        """Bool mask of the transformed entries of one image, broadcastable to ``(C, H, W)``."""
        key = (height, width, device)
        if self._mask_cache is not None and self._mask_cache[0] == key:
            return self._mask_cache[1]
        if self.mask_kind == "checkerboard":
            grid = torch.arange(height, device=device)[:, None] + torch.arange(width, device=device)
            mask = ((grid + self.parity) % 2 == 1)[None]
            if height * width < 2:      # two or more pixels always hold both colours
                _check_split(mask, f"{type(self).__name__} with a checkerboard mask on "
                                   f"{height}x{width} images")
        else:
            c = self.event_shape[0]
            mask = ((torch.arange(c, device=device) >= c // 2) != bool(self.parity))[:, None, None]
        self._mask_cache = (key, mask)
        return mask

    def _check(self, x: Tensor, name: str) -> None:
        super()._check(x, name)
        check_finite_parameters(self, type(self).__name__)

    def _condition(self, y_a: Tensor) -> Tensor:
        h = self.conditioner(y_a)
        if not isinstance(h, Tensor) or h.dim() != y_a.dim() or h.shape[0] != y_a.shape[0] \
                or h.shape[1] != self._n_out or h.shape[2:] != y_a.shape[2:]:
            got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
            raise FlowInputError(f"{type(self).__name__}: the conditioner must return "
                                 f"{self._n_out} values per sample (dim 1), got {got}")
        check_conditioner_output(h, type(self).__name__)
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
        scale_bound: the bound ``B`` on ``|s|``; ``math.inf`` leaves ``s = s_raw`` unbounded.

    Example:
        >>> x, logdet = AffineCoupling(2)(torch.randn(5, 2))
        >>> x, logdet = AffineCoupling(4, mask="checkerboard")(torch.randn(5, 4, 8, 8))
    """

    def __init__(self, dim: int, mask=None, parity: int = 0, conditioner: Callable | None = None,
                 hidden: int = 64, n_hidden: int = 2, activation: Callable[[], nn.Module] = nn.SiLU,
                 scale_bound: float = 3.0):
        scale_bound = positive_float(scale_bound, "scale_bound", "AffineCoupling", allow_inf=True)
        super().__init__(dim, mask, parity, conditioner, hidden, n_hidden, activation, n_params=2)
        self.scale_bound = scale_bound

    def log_scale(self, s_raw: Tensor) -> Tensor:
        """``s = B * tanh(s_raw / B)``: the bounded log-scale, ``|s| < B``."""
        return bounded_log_scale(s_raw, self.scale_bound)

    def _step(self, y, h, mask, inverse):
        s_raw, t = h.chunk(2, dim=1)
        return affine_coupling_step(y, self.log_scale(s_raw), t, mask, inverse)


class AdditiveCoupling(_Coupling):
    """NICE's additive coupling, ``x_a = z_a``, ``x_b = z_b + t(z_a)``: volume preserving.

    ``log|det J| = 0`` exactly: the Jacobian is triangular with ones on the diagonal.

    Arguments as for :class:`AffineCoupling` (without ``scale_bound``); the conditioner
    returns only the shift ``t``: ``(batch, |a|) -> (batch, |b|)`` for vectors,
    ``(batch, C, H, W) -> (batch, C, H, W)`` for images.

    Example:
        >>> x, logdet = AdditiveCoupling(2)(torch.randn(5, 2))
    """

    def __init__(self, dim: int, mask=None, parity: int = 0, conditioner: Callable | None = None,
                 hidden: int = 64, n_hidden: int = 2,
                 activation: Callable[[], nn.Module] = nn.SiLU):
        super().__init__(dim, mask, parity, conditioner, hidden, n_hidden, activation, n_params=1)

    def _step(self, y, h, mask, inverse):
        t = h if mask is None else torch.where(mask, h, 0.0)
        logdet = y.new_zeros(y.shape[0])
        return (y - t if inverse else y + t), logdet

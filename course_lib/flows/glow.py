"""Glow (Kingma and Dhariwal, 2018): the image flows around a coupling layer.

A Glow step is, from data to latent, ActNorm -> invertible 1x1 convolution -> affine
coupling. On an image of ``C`` channels and ``H x W`` pixels:

* ``ActNorm``: ``x = s * z + t`` per channel, ``log|det J| = H W sum_c log|s_c|``;
* ``InvConv1x1``: ``x = W z`` at every pixel, ``log|det J| = H W log|det W|``
  ``= H W sum_i log|U_ii|`` with ``W = P L U``;
* ``Squeeze``: ``(C, H, W) <-> (4C, H/2, W/2)``, a reordering, ``log|det J| = 0``;
* ``MultiScale``: squeeze, steps, then factor out half the channels as latent and send
  the other half to the next, coarser level.
* ``LogitTransform``: the data side, from the real line onto the pixel range ``[0, 1]``.

All are written latent -> data (``x = f(z)``) like every flow of the course; data ->
latent, the direction of the papers' diagrams and of training, is ``inverse``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import CourseValueError, finite_float, is_validating, positive_int
from .base import (Compose, Flow, FlowInputError, check_exp_parameter, check_input,
                   initializing)
from .coupling import AffineCoupling
from .linear import LUMatrix

__all__ = ["ActNorm", "InvConv1x1", "Squeeze", "MultiScale", "LogitTransform", "glow_step"]


def _pixels(x: Tensor) -> int:
    return math.prod(x.shape[2:])  # H * W for images, 1 for vectors; also for an empty batch


class ActNorm(Flow):
    """Activation normalisation, ``x = exp(log_scale) * z + shift`` per channel.

    ``log|det J| = H W sum_c log_scale_c``. Accepts images ``(batch, C, H, W)`` and
    vectors ``(batch, C)`` (then ``H W = 1``), so it also normalises 2D models.

    Data-dependent initialisation is explicit: ``course_lib.flows.initialize(model, batch)``
    (which ``course_lib.training.fit`` calls on its first batch) passes a data batch from
    data to latent and lets every ActNorm that is not initialised yet set ``shift`` to the
    per-channel mean and ``log_scale`` to the log of the per-channel standard deviation
    (population variance, over the batch and all pixels) of the activations it receives, so
    that batch comes out with zero mean and unit variance in every channel. ``initialize``
    on the layer itself does the same for one layer. The flag ``initialized`` is a buffer:
    it is saved in the ``state_dict``, and a reloaded model is not initialised again.

    Nothing else changes the parameters: until it is initialised, an ActNorm acts with its
    stored parameters (the identity when new) in every direction and mode.

    Example:
        >>> from course_lib.flows import initialize
        >>> norm = initialize(ActNorm(3), 5 + 2 * torch.randn(64, 3, 4, 4))
        >>> z, _ = norm.inverse(5 + 2 * torch.randn(64, 3, 4, 4))  # about mean 0, variance 1
    """

    def __init__(self, channels: int):
        channels = positive_int(channels, "channels", "ActNorm")
        super().__init__((channels, None, None))
        self.channels = channels
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.shift = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _check(self, x: Tensor, name: str) -> None:
        if isinstance(x, Tensor) and x.dim() not in (2, 4):
            raise FlowInputError(f"ActNorm: expected {name} of shape (batch, {self.channels}) or "
                                 f"(batch, {self.channels}, H, W), got {tuple(x.shape)}")
        shape = (self.channels,) if isinstance(x, Tensor) and x.dim() == 2 else self.event_shape
        check_input(x, shape, name, self._param_dtype(), "ActNorm")

    def accepts_event_shape(self, shape) -> bool:
        return tuple(shape) == (self.channels,) or super().accepts_event_shape(shape)

    def needs_initialization(self) -> bool:
        return not bool(self.initialized)

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set ``shift`` and ``log_scale`` from the data batch ``x``; mark the flow initialised.

        Needs at least 2 samples and a non-zero spread in every channel (a constant channel
        has no scale to divide by). On failure nothing is changed.
        """
        self._check(x, "x")
        if x.shape[0] < 2:
            raise CourseValueError(f"ActNorm.initialize: expected a batch of at least 2 samples "
                                   f"to estimate each channel's spread, got {x.shape[0]}")
        dims = [0] + list(range(2, x.dim()))
        std = x.std(dim=dims, unbiased=False)
        bad = ~(std > 0) | ~torch.isfinite(std)
        if bool(bad.any()):
            channels = bad.nonzero().flatten().tolist()
            kind = "a constant channel" if bool((std[bad] == 0).all()) else "a channel whose spread"
            raise CourseValueError(
                f"ActNorm.initialize: expected a finite, non-zero spread in every channel, got "
                f"{kind} {channels} (std {std[bad][0].item():.3g}) in this batch; initialise "
                "with a larger or more varied batch, or rescale the data")
        self.log_scale.copy_(torch.log(std))
        self.shift.copy_(x.mean(dim=dims))
        self.initialized.fill_(True)

    def _per_channel(self, p: Tensor, x: Tensor) -> Tensor:
        return p.view(1, -1, *([1] * (x.dim() - 2)))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_exp_parameter(self.log_scale, "log_scale", "ActNorm")
        x = z * torch.exp(self._per_channel(self.log_scale, z)) + self._per_channel(self.shift, z)
        return x, (_pixels(z) * self.log_scale.sum()).expand(z.shape[0])

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if initializing() and self.needs_initialization():
            self.initialize(x)
        check_exp_parameter(self.log_scale, "log_scale", "ActNorm")
        shift, log_scale = self._per_channel(self.shift, x), self._per_channel(self.log_scale, x)
        z = (x - shift) * torch.exp(-log_scale)
        return z, (-_pixels(x) * self.log_scale.sum()).expand(x.shape[0])


def random_rotation(n: int, generator: torch.Generator | None = None) -> Tensor:
    """A uniformly random rotation (orthogonal, ``det = +1``) of size ``n``, in float64."""
    q, r = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=generator))
    q = q * torch.sign(torch.diagonal(r))  # makes the distribution uniform over O(n)
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


class InvConv1x1(Flow):
    """Invertible 1x1 convolution: the same channel mixing ``x_ij = W z_ij`` at every pixel.

    ``log|det J| = H W log|det W| = H W sum_i log|U_ii|``, with ``W = P L U``
    (``LUMatrix``). A learnable generalisation of a channel permutation.

    Args:
        channels: number of channels ``C``.
        weight: the initial ``W`` (invertible, ``C x C``); a random rotation by default,
            as in Glow, so it starts volume preserving (log-det 0).

    Example:
        >>> x, logdet = InvConv1x1(4)(torch.randn(2, 4, 8, 8))
    """

    def __init__(self, channels: int, weight: Tensor | None = None):
        channels = positive_int(channels, "channels", "InvConv1x1")
        super().__init__((channels, None, None))
        initial = random_rotation(channels) if weight is None else weight
        self.lu = LUMatrix(channels, initial, "InvConv1x1")

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.einsum("ij,bjhw->bihw", self.lu.matrix(), z)
        return x, (_pixels(z) * self.lu.log_abs_det()).expand(z.shape[0])

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        columns = x.transpose(0, 1).reshape(c, b * h * w)  # one column per pixel of every image
        z = self.lu.solve(columns).reshape(c, b, h, w).transpose(0, 1)
        return z, (-h * w * self.lu.log_abs_det()).expand(b)


class Squeeze(Flow):
    """Trade space for channels: data ``(C, H, W)`` <-> latent ``(4C, H/2, W/2)``.

    ``inverse`` (data to latent) squeezes: each 2x2 block of pixels becomes 4 channels
    of one pixel; ``forward`` puts the blocks back. Only a reordering: ``log|det J| = 0``.
    After a squeeze, a coupling layer's conditioner sees neighbouring pixels as channels.

    Args:
        channels: the data side's ``C``; ``None`` accepts any number.
    """

    def __init__(self, channels: int | None = None):
        if channels is not None:
            channels = positive_int(channels, "channels", "Squeeze")
        super().__init__((channels, None, None))
        self.channels = channels

    def _check(self, x: Tensor, name: str) -> None:
        if name == "z":  # the latent side, (4C, H/2, W/2)
            c = None if self.channels is None else 4 * self.channels
            check_input(x, (c, None, None), "z", None, "Squeeze.forward")
            if x.shape[1] % 4:
                raise FlowInputError("Squeeze.forward: expected a number of channels divisible "
                                     f"by 4 (4 per 2x2 block), got {x.shape[1]}")
        else:
            check_input(x, (self.channels, None, None), "x", None, "Squeeze.inverse")
            if x.shape[2] % 2 or x.shape[3] % 2:
                raise FlowInputError("Squeeze.inverse: expected an even height and width (the "
                                     "image is cut into 2x2 blocks), got "
                                     f"{x.shape[2]}x{x.shape[3]}")

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        b, c4, h, w = z.shape
        c = c4 // 4
        x = z.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)
        return x, z.new_zeros(b)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # channel 4c + 2i + j of the result holds the pixels x[:, c, i::2, j::2]
        b, c, h, w = x.shape
        z = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return z.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)


def glow_step(channels: int, hidden: int = 64, parity: int = 0) -> Compose:
    """One step of Glow, listed latent -> data: affine coupling, 1x1 convolution, ActNorm.

    From data to latent (``inverse``) it runs ActNorm first, as in the paper, so the
    ActNorm initialisation sees the data the step receives.
    """
    return Compose(AffineCoupling(channels, mask="channel", parity=parity, hidden=hidden),
                   InvConv1x1(channels), ActNorm(channels))


class MultiScale(Flow):
    """One level of the multi-scale architecture of RealNVP and Glow, on images ``(C, H, W)``.

    Data to latent (``inverse``): squeeze to ``(4C, H/2, W/2)``, run ``steps``, then
    factor out: the first ``2C`` channels are final latent variables, the other ``2C``
    go on to ``inner``, the next level, on ``(2C, H/2, W/2)``. ``forward`` is the same
    backwards. ``log|det J|`` is that of ``steps`` plus that of ``inner``.

    The latent is unsqueezed back to ``(C, H, W)`` (a fixed reordering of independent
    normal variables), so each level maps images of one shape to that same shape and
    levels nest: the latent has as many entries as the data.

    Args:
        channels: the data side's ``C``.
        steps: flows on ``4C`` channels (a list is composed); two ``glow_step`` by default.
        inner: the next level, a flow on ``2C`` channels; ``None`` for the last level,
            which factors nothing out.

    Example:
        >>> level = MultiScale(1, inner=MultiScale(2))
        >>> x, logdet = level(torch.randn(3, 1, 8, 8))
    """

    def __init__(self, channels: int, steps: Flow | Sequence[Flow] | None = None,
                 inner: Flow | None = None):
        channels = positive_int(channels, "channels", "MultiScale")
        if inner is not None and not isinstance(inner, Flow):
            raise CourseValueError(f"MultiScale: expected inner to be a Flow or None, got "
                                   f"{type(inner).__name__}")
        super().__init__((channels, None, None))
        if steps is None:
            steps = [glow_step(4 * channels, parity=k % 2) for k in range(2)]
        self.steps = steps if isinstance(steps, Flow) else Compose(*steps)
        for part, expected, flow in (("steps", 4 * channels, self.steps),
                                     ("inner", 2 * channels, inner)):
            if flow is not None and flow.event_shape[:1] not in ((expected,), (None,)):
                raise CourseValueError(f"MultiScale({channels}): {part} must act on {expected} "
                                     f"channels, got a flow with event shape {flow.event_shape}")
        self.squeeze, self.inner, self.channels = Squeeze(channels), inner, channels

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        h, _ = self.squeeze.inverse(z)
        logdet = z.new_zeros(z.shape[0])
        if self.inner is not None:
            kept, passed = h.chunk(2, dim=1)
            passed, logdet = self.inner.forward(passed)
            h = torch.cat([kept, passed], dim=1)
        h, step_logdet = self.steps.forward(h)
        return self.squeeze.forward(h)[0], logdet + step_logdet

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, _ = self.squeeze.inverse(x)
        h, logdet = self.steps.inverse(h)
        if self.inner is not None:
            kept, passed = h.chunk(2, dim=1)
            passed, inner_logdet = self.inner.inverse(passed)
            h, logdet = torch.cat([kept, passed], dim=1), logdet + inner_logdet
        return self.squeeze.forward(h)[0], logdet


class LogitTransform(Flow):
    """The data side of an image flow: ``x = (sigmoid(y) - a) / (1 - 2a)``, onto about ``(0, 1)``.

    Its inverse is RealNVP's preprocessing, ``y = logit(a + (1 - 2a) x)``: pixel values in
    ``[0, 1]`` are squeezed into ``[a, 1 - a]`` (so the logit stays finite) and taken to the
    whole real line, where the Gaussian latent lives. Elementwise, so
    ``log|det J| = sum_i [log sigmoid(y_i) + log sigmoid(-y_i)] - D log(1 - 2a)``.

    Args:
        channels: number of channels of the images.
        alpha: the margin ``a`` in ``(0, 1/2)``.
    """

    def __init__(self, channels: int, alpha: float = 0.05):
        channels = positive_int(channels, "channels", "LogitTransform")
        alpha = finite_float(alpha, "alpha", "LogitTransform")
        if not 0 < alpha < 0.5:
            raise CourseValueError(f"LogitTransform: expected alpha in (0, 0.5), got {alpha!r}")
        super().__init__((channels, None, None))
        self.alpha = alpha

    def _forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        a = self.alpha
        p = torch.sigmoid(y)
        if is_validating():
            bad = (p <= 0) | (p >= 1)
            if bool(bad.any()):
                value = y[bad].flatten()[0].item()
                raise FlowInputError(
                    f"LogitTransform.forward: sigmoid(y) rounds to exactly "
                    f"{1 if value > 0 else 0} in {y.dtype} at y = {value:.4g}, where the map is "
                    "no longer invertible; keep |y| smaller (about 16 in float32) or use float64")
        logdet = (F.logsigmoid(y) + F.logsigmoid(-y)).flatten(1).sum(1)
        return (p - a) / (1 - 2 * a), logdet - _size(y) * math.log(1 - 2 * a)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a = self.alpha
        p = a + (1 - 2 * a) * x
        if is_validating() and bool(((p <= 0) | (p >= 1)).any()):
            raise FlowInputError(f"LogitTransform.inverse: expected values in "
                                 f"({-a / (1 - 2 * a):.4g}, {(1 - a) / (1 - 2 * a):.4g}) "
                                 f"(data in [0, 1] are), got {x.min().item():.4g} .. "
                                 f"{x.max().item():.4g}")
        log_p, log_1mp = torch.log(p), torch.log1p(-p)
        logdet = -(log_p + log_1mp).flatten(1).sum(1)
        return log_p - log_1mp, logdet + _size(x) * math.log(1 - 2 * a)


def _size(x: Tensor) -> int:
    """Entries per sample, ``C H W`` (also for an empty batch)."""
    return math.prod(x.shape[1:])

"""Where the latent variables of a multi-scale flow come from, and resampling one level.

A multi-scale flow (``course_lib.models.glow``) factors out half of its channels after each
level, so every entry of its latent ``z`` belongs to one level: the first, finest level holds
local detail, the last one the coarse layout of an image. :func:`multiscale_levels` labels the
entries; :func:`resample_level` draws one level again and keeps the others.

Example:
    >>> multiscale_levels((1, 4, 4), 2)[0]
    tensor([[0, 0, 0, 0],
            [1, 1, 1, 1],
            [0, 0, 0, 0],
            [1, 1, 1, 1]])
"""
from __future__ import annotations

import torch

from .flows import Squeeze
from .model import NormalizingFlow
from .validation import CourseValueError, nonnegative_int, positive_float

__all__ = ["multiscale_levels", "resample_level"]


def multiscale_levels(image_shape: tuple[int, int, int], n_levels: int) -> torch.Tensor:
    """For the latent ``z`` of ``course_lib.models.glow(image_shape, n_levels)``: the level
    (0 = the first, finest one) at which each entry is factored out, shape ``(C, H, W)``.

    ``MultiScale`` squeezes, keeps the first half of the channels as latent and passes the
    second half on; the last level keeps all. The latent is unsqueezed back to ``(C, H, W)``,
    so the labels are built the same way, from the last level outwards.
    """
    c, h, w = image_shape
    if not isinstance(n_levels, int) or n_levels < 1 or h % 2 ** n_levels or w % 2 ** n_levels:
        raise CourseValueError(f"multiscale_levels: expected n_levels >= 1 that halves {h}x{w} "
                               f"that many times, got {n_levels!r}")
    channels = [c * 2 ** k for k in range(n_levels)]
    sizes = [(h // 2 ** k, w // 2 ** k) for k in range(n_levels)]
    inner = None
    for k in reversed(range(n_levels)):
        squeezed = torch.full((1, 4 * channels[k], sizes[k][0] // 2, sizes[k][1] // 2), float(k),
                              dtype=torch.float64)
        if inner is not None:
            squeezed[:, 2 * channels[k]:] = inner
        inner = Squeeze(channels[k]).forward(squeezed)[0]
    return inner[0].round().long()


def resample_level(model: NormalizingFlow, x: torch.Tensor, levels: torch.Tensor, level: int,
                   temperature: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Images that share every latent variable of ``x`` but those of one level.

    ``z = f^{-1}(x)``; the entries of ``z`` where ``levels == level`` (see
    :func:`multiscale_levels`) are replaced by fresh draws of ``N(0, T^2)``, ``T`` the
    ``temperature``, and the result is mapped back, ``f(z')``. Without gradients.
    """
    level = nonnegative_int(level, "level", "resample_level")
    temperature = positive_float(temperature, "temperature", "resample_level")
    with torch.no_grad():
        z, _ = model.flow.inverse(x)
        if levels.shape != z.shape[1:]:
            raise CourseValueError(f"resample_level: expected levels of the latent's shape "
                                   f"{tuple(z.shape[1:])}, got {tuple(levels.shape)}")
        # drawn where the generator lives (the CPU unless it is another device's), then moved
        device = generator.device if generator is not None else z.device
        fresh = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=device)
        fresh = temperature * fresh.to(z.device)
        return model.flow(torch.where(levels.to(z.device) == level, fresh, z))[0]

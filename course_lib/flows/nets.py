"""Conditioner networks: the small neural networks inside coupling and autoregressive flows.

A conditioner never has to be inverted, so it can be any network. Its last layer starts
at zero, so a flow built on it starts as the identity map (``s = 0``, ``t = 0``) and
training moves it away from there. ``bounded_log_scale`` turns a conditioner's raw output
into the log-scale of an affine transform.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from ..validation import (CourseValueError, is_validating, nonnegative_int, positive_float,
                          positive_int)

__all__ = ["MLP", "ConvNet", "spread_hinges", "first_linear", "bounded_log_scale",
           "check_conditioner_output"]


def check_conditioner_output(h: Tensor, where: str) -> None:
    """Raise if a conditioner returned NaN or inf for a finite input (a value check).

    The inputs and parameters were checked before, so the network's finite weights are so
    large that its arithmetic overflowed the dtype.
    """
    if not is_validating():
        return
    finite = torch.isfinite(h)
    if not bool(finite.all()):
        bad = int((~finite).sum().item())
        raise CourseValueError(
            f"{where}: the conditioner returned {bad} non-finite value(s) (NaN or inf) for a "
            f"finite input; its parameters are finite but so large that {h.dtype} overflows: "
            "re-initialise them, lower the learning rate, or clip the gradients")


def bounded_log_scale(s_raw: Tensor, bound: float) -> Tensor:
    """The soft bound on a log-scale, ``s = B tanh(s_raw / B)``, so ``|s| < B``.

    ``exp`` of an unbounded ``s`` overflows, and one large scale early in training makes the
    loss jump; ``|s| < B`` keeps every stretch within ``exp(+-B)``. Near 0 the bound has
    slope 1, so a layer whose conditioner outputs 0 is still the identity. ``B = inf``
    means no bound: ``s = s_raw``.

    Example:
        >>> bounded_log_scale(torch.tensor([0.0, 100.0]), 3.0)
        tensor([0., 3.])
    """
    if math.isinf(bound):
        return s_raw
    return bound * torch.tanh(s_raw / bound)


class MLP(nn.Module):
    """A fully connected network ``R^in -> R^out`` with ``n_hidden`` hidden layers.

    Args:
        in_features: size of the input.
        out_features: size of the output.
        hidden: width of every hidden layer.
        n_hidden: number of hidden layers.
        activation: a module class, built once per hidden layer. SiLU is smooth (the
            density of a flow inherits its smoothness) and does not saturate.
        zero_init: start the last layer at zero, so the output is 0 before training.

    Example:
        >>> MLP(1, 2)(torch.randn(5, 1)).shape
        torch.Size([5, 2])
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 64, n_hidden: int = 2,
                 activation: Callable[[], nn.Module] = nn.SiLU, zero_init: bool = True):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features),
                            ("hidden", hidden)):
            positive_int(value, name, "MLP")
        nonnegative_int(n_hidden, "n_hidden", "MLP")
        sizes = [in_features] + [hidden] * n_hidden + [out_features]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < n_hidden:
                layers.append(activation())
        self.net = nn.Sequential(*layers)
        if zero_init:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvNet(nn.Module):
    """A small convolutional network ``(batch, C_in, H, W) -> (batch, C_out, H, W)``.

    A 3x3 convolution, ``n_hidden - 1`` 1x1 convolutions and a 3x3 output convolution,
    all with padding that keeps height and width, so each output pixel sees its 5x5
    neighbourhood: enough for a checkerboard mask, where every transformed pixel is
    conditioned on its untouched neighbours.

    Args:
        in_channels, out_channels: channels of input and output.
        hidden: channels of the hidden feature maps.
        n_hidden: number of hidden feature maps (at least 1).
        activation: a module class, built once per hidden layer.
        zero_init: start the last convolution at zero.

    Example:
        >>> ConvNet(4, 8)(torch.randn(2, 4, 6, 6)).shape
        torch.Size([2, 8, 6, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, n_hidden: int = 2,
                 activation: Callable[[], nn.Module] = nn.SiLU, zero_init: bool = True):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("hidden", hidden), ("n_hidden", n_hidden)):
            positive_int(value, name, "ConvNet")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 3, padding=1), activation()]
        for _ in range(n_hidden - 1):
            layers += [nn.Conv2d(hidden, hidden, 1), activation()]
        layers.append(nn.Conv2d(hidden, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        if zero_init:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def spread_hinges(layer: nn.Linear, spread: float = 3.0, gain: float = 1.0) -> None:
    """Initialise the first layer of a ReLU conditioner so that it can bend anywhere.

    Unit ``j`` computes ``gain * w_j . (u - c_j)`` with ``c_j`` uniform in
    ``[-spread, spread]^d`` and ``w_j`` as torch initialised it (times the layer's mask, if
    it has one): its hinge passes through a random point of the region where the inputs
    lie (by default ``[-3, 3]``, the bulk of a standard normal) instead of near 0. A
    ``gain`` above 1 makes the hidden features larger, so Adam's steps move the spline
    parameters faster and sharp features of a density (edges) are learned sooner.
    """
    if not isinstance(layer, nn.Linear):
        raise CourseValueError(f"spread_hinges: expected an nn.Linear layer, "
                               f"got {type(layer).__name__}")
    spread = positive_float(spread, "spread", "spread_hinges")
    gain = positive_float(gain, "gain", "spread_hinges")
    with torch.no_grad():
        weight = layer.weight.mul_(gain)
        if hasattr(layer, "mask"):
            weight = weight * layer.mask
        centres = spread * (2 * torch.rand_like(weight) - 1)
        layer.bias.copy_(-(weight * centres).sum(1))


def first_linear(net: nn.Module) -> nn.Linear:
    """The first ``nn.Linear`` of a network (the layer ``spread_hinges`` initialises)."""
    for m in net.modules():
        if isinstance(m, nn.Linear):
            return m
    raise CourseValueError(f"first_linear: {type(net).__name__} has no nn.Linear layer")

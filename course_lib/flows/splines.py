"""Neural spline flows (Durkan et al., 2019): the rational-quadratic spline inside a flow.

The spline itself, ``rq_spline``, and the map from a network's outputs to its parameters,
``spline_parameters``, live in :mod:`course_lib.flows.rational_quadratic`. Here the spline
is the elementwise transform of three flows:

* ``RQSpline``: one learnable spline per coordinate, ``x_i = g_i(z_i)``.
* ``RQSCoupling``: a coupling layer (the scheme of :class:`AffineCoupling`: halves, a bool
  mask, or a checkerboard or channel mask of an image) whose conditioner sets the splines
  of the transformed part.
* ``RQSAutoregressive``: an autoregressive flow (the scheme of :class:`MAF`) whose MADE
  sets the spline of each coordinate from the coordinates before it.

Each spline has ``K`` bins and ``3K - 1`` unconstrained parameters; all zero is the
identity, so every flow here starts as the identity.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..validation import check_finite_parameters, positive_float, positive_int
from .autoregressive import _Autoregressive
from .base import Flow
from .coupling import _Coupling
from .nets import first_linear, spread_hinges
from .rational_quadratic import (MAX_DERIVATIVE, MIN_BIN_SIZE, MIN_DERIVATIVE, rq_spline,
                                 spline, spline_arguments, spline_parameters, spline_sizes)

__all__ = ["rq_spline", "spline_parameters", "RQSpline", "RQSCoupling", "RQSAutoregressive",
           "MIN_BIN_SIZE", "MIN_DERIVATIVE", "MAX_DERIVATIVE"]


def _apply_spline(u: Tensor, raw: Tensor, bound: float, inverse: bool) -> tuple[Tensor, Tensor]:
    """The spline with unconstrained parameters ``raw`` of shape ``(*u.shape, 3K - 1)``."""
    return spline(u, *spline_sizes(raw, bound), bound, inverse)


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
        bins, bound = spline_arguments("RQSpline", bins, bound)
        super().__init__((positive_int(dim, "dim", "RQSpline"),))
        self.bins, self.bound = bins, bound
        self.raw = nn.Parameter(torch.zeros(dim, 3 * bins - 1))

    def _check(self, x: Tensor, name: str) -> None:
        super()._check(x, name)
        check_finite_parameters(self, "RQSpline")

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        y, log_deriv = _apply_spline(z, self.raw, self.bound, inverse=False)
        return y, log_deriv.sum(-1)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, log_deriv = _apply_spline(x, self.raw, self.bound, inverse=True)
        return y, log_deriv.sum(-1)

    def extra_repr(self) -> str:
        return f"dim={self.event_shape[0]}, bins={self.bins}, bound={self.bound}"


class RQSCoupling(_Coupling):
    """Spline coupling: the copied part sets the splines of the transformed part.

    The coupling scheme of :class:`AffineCoupling` with a spline instead of the affine map:
    ``x_a = z_a`` and ``x_b = g(z_b; theta(z_a))``, with a conditioner ``theta`` giving
    ``3K - 1`` spline parameters per entry of ``b``. The Jacobian is block triangular, so
    ``log|det J| = sum_{i in b} log g'(z_i)``, and the inverse
    ``z_b = g^{-1}(x_b; theta(x_a))`` is one pass as well.

    Args:
        dim: number of coordinates of a vector, or channels of an image (with an image mask).
        bins: number of bins ``K``.
        bound: the splines act on ``[-bound, bound]``, the identity outside.
        hidden: width of the default conditioner's hidden layers.
        n_hidden: number of its hidden layers.
        parity: 0 or 1; alternate it between layers so that every coordinate is transformed.
        activation: a module class for the default conditioner's hidden layers.
        init_gain: the ``gain`` of ``spread_hinges`` for the default MLP's first layer.
        mask: ``None`` splits a vector into halves (``z_a`` the first ``dim // 2``
            coordinates); a bool tensor of shape ``(dim,)`` marks the transformed ones;
            ``"checkerboard"`` or ``"channel"`` make it an image flow on ``(batch, C, H, W)``
            with a ``ConvNet`` conditioner (see :class:`AffineCoupling`).
        conditioner: computes the spline parameters from ``z_a``:
            ``(batch, |a|) -> (batch, |b| (3K - 1))`` for vectors, the ``3K - 1`` numbers of
            each transformed coordinate next to each other; ``(batch, C, H, W) ->
            (batch, C (3K - 1), H, W)`` for images, channel ``c`` taking the block
            ``c (3K - 1) ... (c + 1)(3K - 1) - 1``. By default an ``MLP`` / ``ConvNet`` whose
            last layer is zero, so the layer starts as the identity.

    Example:
        >>> x, logdet = RQSCoupling(2, parity=1)(torch.randn(5, 2))
        >>> x, logdet = RQSCoupling(2, hidden=8, mask="checkerboard")(torch.randn(5, 2, 4, 4))
    """

    def __init__(self, dim: int, bins: int = 8, bound: float = 3.0, hidden: int = 64,
                 n_hidden: int = 2, parity: int = 0,
                 activation: Callable[[], nn.Module] = nn.ReLU, init_gain: float = 1.0,
                 mask=None, conditioner: Callable | None = None):
        bins, bound = spline_arguments("RQSCoupling", bins, bound)
        init_gain = positive_float(init_gain, "init_gain", "RQSCoupling")
        super().__init__(dim, mask, parity, conditioner, hidden, n_hidden, activation,
                         n_params=3 * bins - 1)
        self.bins, self.bound = bins, bound
        if conditioner is None and not self.image:
            spread_hinges(first_linear(self.conditioner), gain=init_gain)

    def _step(self, y, h, mask, inverse):
        raw = h.unflatten(1, (y.shape[1], self.n_params))
        if mask is None:
            y, log_deriv = _apply_spline(y, raw, self.bound, inverse)
            return y, log_deriv.sum(-1)
        out, log_deriv = _apply_spline(y, raw.movedim(2, -1), self.bound, inverse)
        return torch.where(mask, out, y), torch.where(mask, log_deriv, 0.0).flatten(1).sum(1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bins={self.bins}, bound={self.bound}"


class RQSAutoregressive(_Autoregressive):
    """Autoregressive spline flow: coordinate ``i`` goes through a spline set by ``x_<i``.

    The autoregressive scheme of :class:`MAF` with a spline instead of the affine map:
    ``x_i = g(z_i; theta_i(x_<i))``, all ``theta_i`` from one MADE pass over the data ``x``.
    The Jacobian is triangular in the MADE's order, so ``log|det J| = sum_i log g'(z_i)``.
    Density is the fast direction: ``z_i = g^{-1}(x_i; theta_i(x_<i))`` is one pass.
    Sampling builds ``x`` one coordinate at a time: ``d`` sequential passes.

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

    reads_data = True

    def __init__(self, dim: int, bins: int = 8, bound: float = 3.0,
                 hidden: int | Sequence[int] = (64, 64), order="sequential", seed: int = 0,
                 activation: Callable[[], nn.Module] = nn.ReLU, init_gain: float = 1.0):
        bins, bound = spline_arguments("RQSAutoregressive", bins, bound)
        init_gain = positive_float(init_gain, "init_gain", "RQSAutoregressive")
        super().__init__(dim, hidden, 3 * bins - 1, order, seed, activation)
        self.bins, self.bound = bins, bound
        spread_hinges(first_linear(self.made), gain=init_gain)

    def _transform(self, u: Tensor, h: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        y, log_deriv = _apply_spline(u, h, self.bound, inverse)
        return y, log_deriv.sum(-1)

    def extra_repr(self) -> str:
        return f"dim={self.event_shape[0]}, bins={self.bins}, bound={self.bound}"

"""Autoregressive flows: MADE, the masked network behind them, and MAF / IAF.

An autoregressive map transforms coordinate ``i`` with parameters that depend only on
the coordinates before it in a fixed order, so its Jacobian is triangular (in that order)
and ``log|det J|`` is the sum of the diagonal. MADE computes the parameters of every
coordinate in one network pass by masking the weights of an ordinary MLP.

Which direction is one pass depends on which side the parameters are read from:

* MAF reads them from the data, ``x_i = z_i exp(s_i(x_<i)) + mu_i(x_<i)``: density (data
  to latent) is one pass, sampling needs ``d`` sequential passes.
* IAF reads them from the latent, ``x_i = z_i exp(s_i(z_<i)) + mu_i(z_<i)``: sampling is
  one pass, density needs ``d`` sequential passes.
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_finite_parameters, nonnegative_int, positive_float, positive_int
from .base import Flow, FlowInputError, check_input
from .nets import bounded_log_scale, check_conditioner_output

__all__ = ["MADE", "MAF", "IAF"]


def autoregressive_order(dim: int, order, seed: int = 0, where: str = "MADE") -> Tensor:
    """The variables in the order they are generated: a permutation of ``0..dim-1``.

    ``"sequential"`` is ``0, 1, ..., dim-1``; ``"random"`` a permutation drawn with ``seed``;
    a sequence or tensor is checked to be a permutation.
    """
    if isinstance(order, str):
        if order == "sequential":
            return torch.arange(dim)
        if order == "random":
            return torch.randperm(dim, generator=torch.Generator().manual_seed(seed))
        raise FlowInputError(f"{where}: expected order to be 'sequential', 'random' or a "
                             f"permutation of 0..{dim - 1}, got {order!r}")
    try:
        perm = torch.as_tensor(order)
    except (TypeError, ValueError, RuntimeError):
        raise FlowInputError(f"{where}: expected order to be 'sequential', 'random' or a "
                             f"permutation of 0..{dim - 1}, got {order!r}") from None
    if (perm.dim() != 1 or perm.is_floating_point() or perm.numel() != dim
            or not torch.equal(perm.sort().values, torch.arange(dim))):
        raise FlowInputError(f"{where}: expected order to be a permutation of 0..{dim - 1}, "
                             f"got {perm.tolist()}")
    return perm.clone().long()


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask of shape ``(out, in)``."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation (Germain et al., 2015).

    An MLP ``R^d -> R^(d x P)`` whose output ``[:, i, :]`` depends only on the inputs that
    come strictly before ``i`` in ``order``. Every unit gets a degree: input ``j`` the
    position of ``j`` in the order plus one (``m(j)`` in ``1..d``), hidden units a degree in
    ``1..d-1``. A weight from a unit of degree ``m`` into a hidden unit of degree ``m'`` is
    kept when ``m' >= m``; into an output of degree ``m'`` when ``m' > m``. Every path from
    input ``j`` to output ``i`` then has ``m(i) > m(j)``, so the Jacobian of each output
    slot is strictly triangular in the order, and all ``d`` conditioners cost one pass.

    Hidden degrees cycle through ``1..d-1``, so every layer at least ``d - 1`` wide keeps
    every allowed dependency. The last layer starts at zero, so a flow built on MADE
    starts as the identity.

    Args:
        dim: number of variables ``d``.
        hidden: widths of the hidden layers (an int is one hidden layer).
        params_per_dim: ``P``, the number of outputs per variable (2 for an affine map:
            shift and log-scale).
        order: ``"sequential"``, ``"random"`` (drawn with ``seed``), or a permutation
            listing the variables in the order they are generated.
        seed: seed of the random order.
        activation: a module class for the hidden layers.

    Attributes:
        order: the variables in generation order, a tensor of shape ``(d,)``.
        degrees: the degree of every unit, one tensor per layer (inputs first).
        masks: the 0/1 masks of the layers, each of shape ``(out, in)``.

    Example:
        >>> made = MADE(3, hidden=(8, 8))
        >>> made(torch.randn(5, 3)).shape
        torch.Size([5, 3, 2])
    """

    def __init__(self, dim: int, hidden: int | Sequence[int] = (64, 64), params_per_dim: int = 2,
                 order="sequential", seed: int = 0,
                 activation: Callable[[], nn.Module] = nn.SiLU):
        super().__init__()
        self.dim = positive_int(dim, "dim", "MADE")
        self.params_per_dim = positive_int(params_per_dim, "params_per_dim", "MADE")
        nonnegative_int(seed, "seed", "MADE")
        widths = (hidden,) if isinstance(hidden, numbers.Integral) else hidden
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise FlowInputError(f"MADE: expected hidden to be a width or a sequence of widths, "
                                 f"got {hidden!r}")
        widths = tuple(positive_int(w, "every hidden width", "MADE") for w in widths)
        self.register_buffer("order", autoregressive_order(dim, order, seed))

        position = torch.empty(dim, dtype=torch.long)
        position[self.order] = torch.arange(dim)
        degrees = [position + 1]
        for w in widths:
            degrees.append(torch.arange(w) % max(dim - 1, 1) + 1)
        degrees.append(degrees[0].repeat_interleave(params_per_dim))
        self.degrees = degrees

        layers: list[nn.Module] = []
        for k, (d_in, d_out) in enumerate(zip(degrees[:-1], degrees[1:])):
            is_output = k == len(widths)
            mask = (d_out[:, None] > d_in[None, :]) if is_output else (d_out[:, None] >= d_in[None, :])
            layers.append(MaskedLinear(len(d_in), len(d_out), mask))
            if not is_output:
                layers.append(activation())
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    @property
    def masks(self) -> list[Tensor]:
        return [m.mask for m in self.net if isinstance(m, MaskedLinear)]

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, (self.dim,), "x", self.net[0].weight.dtype, "MADE")
        h = self.net(x)
        check_conditioner_output(h, "MADE")
        return h.reshape(x.shape[0], self.dim, self.params_per_dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, params_per_dim={self.params_per_dim}, order={self.order.tolist()}"


class _Autoregressive(Flow):
    """The autoregressive scheme every autoregressive flow shares: a MADE and two directions.

    One MADE pass gives ``params_per_dim`` numbers per coordinate, each from the coordinates
    before it in the order; a subclass's ``_transform(u, h, inverse)`` applies its elementwise
    transform to ``u`` with them (``h`` of shape ``(batch, d, params_per_dim)``) and returns
    ``(output, log|det J|)``. ``reads_data`` says where the MADE reads: the data side
    (MAF: density is one pass, sampling ``d`` sequential passes) or the latent side (IAF:
    the other way round).
    """

    reads_data = True

    def __init__(self, dim: int, hidden: int | Sequence[int], params_per_dim: int, order,
                 seed: int, activation: Callable[[], nn.Module]):
        super().__init__((positive_int(dim, "dim", type(self).__name__),))
        self.made = MADE(dim, hidden, params_per_dim, order, seed, activation)

    @property
    def order(self) -> Tensor:
        return self.made.order

    def _check(self, x: Tensor, name: str) -> None:
        super()._check(x, name)
        check_finite_parameters(self, type(self).__name__)

    def _transform(self, u: Tensor, h: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _solve_sequentially(self, target: Tensor, step: Callable[[Tensor], tuple[Tensor, Tensor]]):
        """Solve ``u = step(u)`` for an autoregressive ``step``, ``d`` passes.

        After pass ``k`` the first ``k`` variables in the order are exact, because
        variable ``i`` only needs those before it; after ``d`` passes all are.
        """
        u, logdet = target, None
        for _ in range(self.event_shape[0]):
            u, logdet = step(u)
        return u, logdet

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.reads_data:
            return self._solve_sequentially(z, lambda x: self._transform(z, self.made(x), False))
        return self._transform(z, self.made(z), False)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.reads_data:
            return self._transform(x, self.made(x), True)
        return self._solve_sequentially(x, lambda z: self._transform(x, self.made(z), True))


class AffineAutoregressive(_Autoregressive):
    """Shared part of MAF and IAF: an affine transform, ``(mu_i, s_i)`` from the MADE.

    The log-scale is bounded softly, ``s = B tanh(s_raw / B)`` (``bounded_log_scale``),
    because ``exp`` of an unbounded ``s`` overflows and one large scale makes training
    jump; near 0 the bound has slope 1, so the flow still starts as the identity.
    """

    def __init__(self, dim: int, hidden: int | Sequence[int] = (64, 64), order="sequential",
                 seed: int = 0, scale_bound: float = 3.0,
                 activation: Callable[[], nn.Module] = nn.SiLU):
        scale_bound = positive_float(scale_bound, "scale_bound", type(self).__name__,
                                     allow_inf=True)
        super().__init__(dim, hidden, 2, order, seed, activation)
        self.scale_bound = scale_bound

    def _shift_and_log_scale(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return h[..., 0], bounded_log_scale(h[..., 1], self.scale_bound)

    def shift_and_log_scale(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu(u), s(u))``, each ``(batch, d)``; entry ``i`` depends on ``u_<i`` only."""
        return self._shift_and_log_scale(self.made(u))

    def _transform(self, u: Tensor, h: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        mu, s = self._shift_and_log_scale(h)
        if inverse:
            return (u - mu) * torch.exp(-s), -s.sum(dim=1)
        return u * torch.exp(s) + mu, s.sum(dim=1)


class MAF(AffineAutoregressive):
    """Masked autoregressive flow (Papamakarios et al., 2017): fast density, slow sampling.

    ``x_i = z_i exp(s_i(x_<i)) + mu_i(x_<i)``, with ``(mu, s)`` from a MADE that reads the
    data ``x``. Its inverse needs ``x`` only,

    ``z_i = (x_i - mu_i(x_<i)) exp(-s_i(x_<i))``, ``log|det J_{f^-1}| = -sum_i s_i(x_<i)``,

    so ``log p(x)`` is one MADE pass. Sampling must build ``x`` one coordinate at a time
    (``x_i`` needs ``x_<i``): ``d`` sequential passes.

    Args:
        dim: number of coordinates ``d``.
        hidden: widths of the MADE's hidden layers.
        order: ``"sequential"``, ``"random"`` or a permutation (see :class:`MADE`);
            alternate or shuffle it between stacked layers.
        seed: seed of the random order.
        scale_bound: the bound ``B`` on ``|s|``; ``math.inf`` leaves it unbounded.
        activation: a module class for the MADE's hidden layers.

    Example:
        >>> z, logdet = MAF(3).inverse(torch.randn(5, 3))
    """

    reads_data = True


class IAF(AffineAutoregressive):
    """Inverse autoregressive flow (Kingma et al., 2016): fast sampling, slow density.

    ``x_i = z_i exp(s_i(z_<i)) + mu_i(z_<i)``, with ``(mu, s)`` from a MADE that reads the
    latent ``z``: sampling is one MADE pass, ``log|det J_f| = sum_i s_i(z_<i)``. The density
    of a given ``x`` needs ``z``, and ``z_i = (x_i - mu_i(z_<i)) exp(-s_i(z_<i))`` needs
    ``z_<i``: ``d`` sequential passes. The mirror image of :class:`MAF`.

    Arguments as for :class:`MAF`.

    Example:
        >>> x, logdet = IAF(3)(torch.randn(5, 3))
    """

    reads_data = False

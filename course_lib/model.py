"""A normalizing flow model: a base distribution pushed through a stack of flows."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from .flows.base import Compose, Flow, FlowInputError

__all__ = ["NormalizingFlow"]


class NormalizingFlow(nn.Module):
    """``x = f_K(... f_1(z))`` with ``z ~ base``.

    The density of data follows from the change of variables,

    ``log p_X(x) = log p_Z(f^{-1}(x)) + log|det J_{f^{-1}}(x)|``.

    Args:
        base: a ``torch.distributions.Distribution`` over one sample (its
            ``event_shape`` is the sample shape), or a dimension ``d`` / a shape
            tuple for a standard normal. The standard normal is kept as buffers,
            so ``model.double()`` moves it along with the flows.
        flows: the flows, applied in list order from latent to data.

    Example:
        >>> model = NormalizingFlow(2, [Affine(2, scale=2.0)])
        >>> model.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """

    def __init__(self, base: Distribution | int | Sequence[int], flows: Sequence[Flow] | Flow):
        super().__init__()
        if isinstance(flows, Flow):
            flows = [flows]
        self.flow = Compose(*flows)
        if isinstance(base, Distribution):
            self._base = base
        else:
            shape = (base,) if isinstance(base, int) else tuple(base)
            self._base = None
            self.register_buffer("base_loc", torch.zeros(shape))
            self.register_buffer("base_scale", torch.ones(shape))

    @property
    def base(self) -> Distribution:
        if self._base is not None:
            return self._base
        return Independent(Normal(self.base_loc, self.base_scale), self.base_loc.dim())

    @property
    def flows(self) -> nn.ModuleList:
        return self.flow.flows

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p_X(x)`` per sample (maps data back to the base: the inverse direction)."""
        z, logdet = self.flow.inverse(x)
        return self.base.log_prob(z) + logdet

    def forward(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def _n(self, n: int) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise FlowInputError(f"expected a positive integer number of samples, got {n!r}")
        return n

    def sample(self, n: int) -> Tensor:
        """Draw ``n`` samples in one pass: ``z ~ base``, then ``x = f(z)``."""
        with torch.no_grad():
            return self.flow.forward(self.base.sample((self._n(n),)))[0]

    def sample_and_log_prob(self, n: int) -> tuple[Tensor, Tensor]:
        """Samples and their log-density, differentiable with respect to the parameters.

        ``log p_X(x) = log p_Z(z) - log|det J_f(z)|`` at ``x = f(z)``: no inverse needed.
        """
        z = self.base.rsample((self._n(n),))
        x, logdet = self.flow.forward(z)
        return x, self.base.log_prob(z) - logdet

    def forward_kl(self, x: Tensor) -> Tensor:
        """Mean negative log-likelihood of data, the forward KL up to the data's entropy."""
        return -self.log_prob(x).mean()

    def reverse_kl(self, log_target: Callable[[Tensor], Tensor], n: int) -> Tensor:
        """Monte Carlo ``KL(q || p~) = E_q[log q(x) - log p~(x)]`` for an unnormalised target.

        Equals ``KL(q || p) - log Z``: minimising it needs values of ``log p~`` only,
        never samples of the target.
        """
        x, log_q = self.sample_and_log_prob(n)
        log_p = log_target(x)
        if not isinstance(log_p, Tensor) or log_p.shape != log_q.shape:
            shape = tuple(log_p.shape) if isinstance(log_p, Tensor) else type(log_p).__name__
            raise FlowInputError(f"log_target must return a tensor of shape {tuple(log_q.shape)} "
                                 f"(one value per sample), got {shape}")
        return (log_q - log_p).mean()

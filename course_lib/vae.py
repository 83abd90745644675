"""A small variational autoencoder, with an optional flow posterior (Rezende and Mohamed, 2015).

Generative model: ``z ~ p(z) = N(0, I)`` in ``k`` dimensions, then ``x ~ p(x|z)`` from a
decoder. Its marginal ``p(x) = int p(x|z) p(z) dz`` has no closed form, so a VAE trains an
encoder ``q(z|x)`` with the evidence lower bound

    ``ELBO(x) = E_q[log p(x|z) + log p(z) - log q(z|x)] = log p(x) - KL(q(z|x) || p(z|x))``,

which is below ``log p(x)`` and equal to it only when ``q(z|x)`` is the true posterior.

The posterior is a diagonal Gaussian pushed through a flow ``f`` (the identity if none):
``z_0 ~ q_0(z_0|x) = N(mu(x), diag sigma(x)^2)`` and ``z = f(z_0)``, so by the change of
variables

    ``log q(z|x) = log q_0(z_0|x) - log|det df/dz_0|``.

The flow's parameters are learned but shared by every ``x`` (not produced by the encoder):
one map ``f`` acts on every image's posterior, differently where those posteriors lie.

The prior can be a flow too: ``u ~ N(0, I)`` and ``z = g(u)``, so that

    ``log p(z) = log N(g^{-1}(z); 0, I) + log|det dg^{-1}/dz|``,

a learnable prior that can take the shape the encoder's codes actually have. The ELBO
needs ``log p(z)`` at the posterior's samples: the inverse direction of ``g``.

Likelihoods: ``"binomial"`` for integer pixels ``0..n`` (each pixel counts successes in ``n``
trials with probability ``sigmoid(logit)``; the 8x8 digits have ``n = 16``), or
``"gaussian"``, ``N(x; decoder(z), diag s^2)`` with a learned ``s``. With ``hidden=()`` and a
Gaussian likelihood the model is linear, ``p(x) = N(b, W W^T + diag s^2)``: a test case
where ``log p(x)`` is known exactly.

Example:
    >>> from course_lib.flows import Planar
    >>> vae = VAE(64, latent_dim=2, posterior_flows=[Planar(2) for _ in range(4)])
    >>> vae.elbo(torch.zeros(3, 64)).shape     # fit(vae, data, loss_fn=negative_elbo) trains it
    torch.Size([3])

The ground truth a posterior is compared with, :func:`posterior_on_grid` (the posterior of a
two-dimensional latent by quadrature), lives in :mod:`course_lib.grid_posterior`.
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Binomial

from .flows.base import Compose, Flow, FlowInputError, check_input
from .flows.nets import MLP
from .grid_posterior import GridPosterior, posterior_on_grid
from .validation import is_validating, positive_int

# GridPosterior and posterior_on_grid are defined in course_lib.grid_posterior; lecture 12
# imports them from here
__all__ = ["VAE", "negative_elbo", "GridPosterior", "posterior_on_grid"]

LOG_2PI = math.log(2 * math.pi)


def _hidden_widths(hidden: int | Sequence[int]) -> tuple[int, int]:
    """``(width, layers)`` of the encoder's and decoder's hidden layers, all of one width."""
    widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    widths = tuple(positive_int(w, "every hidden width", "VAE") for w in widths)
    if len(set(widths)) > 1:
        raise FlowInputError(f"VAE: expected hidden layers of one width (an int or a sequence of "
                             f"equal widths), got {widths}")
    return (widths[0] if widths else 1), len(widths)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` summed over the last dimension."""
    return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * LOG_2PI


def _latent_flow(flows: Sequence[Flow] | Flow | None, latent_dim: int,
                 kind: str = "posterior") -> Compose | None:
    if isinstance(flows, Flow):
        flows = [flows]
    flows = list(flows or [])
    for f in flows:
        if not isinstance(f, Flow) or f.event_shape != (latent_dim,):
            shape = f.event_shape if isinstance(f, Flow) else type(f).__name__
            raise FlowInputError(f"VAE: {kind} flows must act on ({latent_dim},) latent "
                                 f"vectors, got one with event shape {shape}")
    return Compose(*flows) if flows else None


class VAE(nn.Module):
    """``p(z) = g(N(0, I))``, ``p(x|z)`` from a decoder, ``q(z|x) = f(N(mu(x), diag sigma(x)^2))``.

    Args:
        data_dim: number of data coordinates ``D`` (64 for the 8x8 digits).
        latent_dim: number of latent coordinates ``k``.
        hidden: widths of the hidden layers of the encoder and of the decoder (mirrored);
            ``()`` makes both linear.
        likelihood: ``"binomial"`` (integer data ``0..trials``) or ``"gaussian"``.
        trials: ``n`` of the binomial likelihood (16 for the digits).
        posterior_flows: flows on ``(batch, k)`` applied to the encoder's Gaussian sample,
            latent ``z_0`` to posterior sample ``z``; none gives the Gaussian posterior.
        prior_flows: flows on ``(batch, k)`` from ``u ~ N(0, I)`` to the code ``z = g(u)``;
            none gives the prior ``N(0, I)``. Their inverse is evaluated at every ELBO.
    """

    def __init__(self, data_dim: int = 64, latent_dim: int = 2, hidden: Sequence[int] = (128,),
                 likelihood: str = "binomial", trials: int = 16,
                 posterior_flows: Sequence[Flow] | Flow | None = None,
                 prior_flows: Sequence[Flow] | Flow | None = None):
        super().__init__()
        self.data_dim = positive_int(data_dim, "data_dim", "VAE")
        self.latent_dim = positive_int(latent_dim, "latent_dim", "VAE")
        if likelihood not in ("binomial", "gaussian"):
            raise FlowInputError(f"VAE: likelihood must be 'binomial' or 'gaussian', "
                                 f"got {likelihood!r}")
        self.likelihood = likelihood
        self.trials = positive_int(trials, "trials", "VAE")
        width, layers = _hidden_widths(hidden)
        self.encoder = MLP(data_dim, 2 * latent_dim, width, layers, zero_init=False)
        self.decoder = MLP(latent_dim, data_dim, width, layers, zero_init=False)
        if likelihood == "gaussian":
            self.log_scale = nn.Parameter(torch.zeros(data_dim))
        self.posterior_flow = _latent_flow(posterior_flows, latent_dim)
        self.prior_flow = _latent_flow(prior_flows, latent_dim, "prior")

    # -- checks --------------------------------------------------------------------------
    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_data(self, x: Tensor) -> None:
        check_input(x, (self.data_dim,), "x", self._dtype(), "VAE")
        if self.likelihood == "binomial" and is_validating():
            bad = (x != x.round()) | (x < 0) | (x > self.trials)
            if bool(bad.any()):
                raise FlowInputError(
                    f"VAE: the binomial likelihood needs integer values 0..{self.trials}, got "
                    f"{x[bad][0].item():g}; use likelihood='gaussian' for continuous data")

    def _check_latent(self, z: Tensor) -> None:
        check_input(z.reshape(-1, z.shape[-1]) if z.dim() > 1 else z, (self.latent_dim,), "z",
                    self._dtype(), "VAE")

    # -- the pieces of the model ---------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu(x), log sigma(x))`` of the Gaussian ``q_0(z_0|x)``, each ``(batch, k)``."""
        self._check_data(x)
        mu, log_sigma = self.encoder(x).chunk(2, dim=-1)
        return mu, log_sigma

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's output: pixel logits (binomial) or the mean of ``x`` (Gaussian)."""
        return self.decoder(z)

    def decode_mean(self, z: Tensor) -> Tensor:
        """``E[x|z]``: ``n sigmoid(logits)`` (binomial) or the decoder's mean (Gaussian)."""
        out = self.decode(z)
        return self.trials * torch.sigmoid(out) if self.likelihood == "binomial" else out

    def log_likelihood(self, x: Tensor, z: Tensor, observed: Tensor | None = None) -> Tensor:
        """``log p(x|z)``, summed over the coordinates of ``x`` (over those where the 0/1
        mask ``observed`` of shape ``(D,)`` or ``(batch, D)`` is 1, when it is given);
        ``z`` is ``(batch, k)`` or ``(samples, batch, k)``."""
        out = self.decode(z)
        if self.likelihood == "binomial":
            # the binomial coefficient depends on x only: computed once, not once per z
            n = self.trials
            log_choose = math.lgamma(n + 1) - torch.lgamma(x + 1) - torch.lgamma(n - x + 1)
            per_pixel = log_choose + x * F.logsigmoid(out) + (n - x) * F.logsigmoid(-out)
        else:
            s = self.log_scale
            per_pixel = -0.5 * ((x - out) * torch.exp(-s)) ** 2 - s - 0.5 * LOG_2PI
        if observed is not None:
            per_pixel = per_pixel * self._checked_mask(observed, per_pixel.dtype)
        return per_pixel.sum(-1)

    def _checked_mask(self, observed: Tensor, dtype: torch.dtype) -> Tensor:
        if (not isinstance(observed, Tensor) or observed.shape[-1:] != (self.data_dim,)
                or (is_validating() and not bool(((observed == 0) | (observed == 1)).all()))):
            got = tuple(observed.shape) if isinstance(observed, Tensor) else type(observed).__name__
            raise FlowInputError(f"VAE: expected observed to be a 0/1 mask of shape "
                                 f"({self.data_dim},) or (batch, {self.data_dim}), got {got}")
        return observed.to(dtype)

    def log_prior(self, z: Tensor) -> Tensor:
        """``log p(z)``: ``log N(z; 0, I)``, or with a flow prior ``z = g(u)``,
        ``log N(g^{-1}(z); 0, I) + log|det dg^{-1}/dz|``; ``z`` is ``(..., k)``."""
        self._check_latent(z)
        if self.prior_flow is None:
            return standard_normal_log_prob(z)
        u, logdet = self.prior_flow.inverse(z.reshape(-1, self.latent_dim))
        return (standard_normal_log_prob(u) + logdet).reshape(z.shape[:-1])

    def log_joint(self, x: Tensor, z: Tensor, observed: Tensor | None = None) -> Tensor:
        """``log p(x, z) = log p(x|z) + log p(z)``: the posterior ``p(z|x)`` up to ``log p(x)``.

        ``x`` is ``(batch, D)`` and ``z`` is ``(batch, k)`` or ``(samples, batch, k)``; a
        single ``x`` (batch 1) is paired with every ``z``, e.g. a grid. With a mask
        ``observed``, only the observed pixels count: ``p(z | x_observed)`` up to a constant,
        the posterior of an inverse problem such as filling in a partly hidden image.
        """
        self._check_data(x)
        self._check_latent(z)
        if z.dim() > 1 and x.shape[0] not in (1, z.shape[-2]):
            raise FlowInputError(f"VAE: expected one z per x (batch {x.shape[0]}) or a single x, "
                                 f"got {x.shape[0]} x and z of shape {tuple(z.shape)}")
        return self.log_likelihood(x, z, observed) + self.log_prior(z)

    # -- the posterior -------------------------------------------------------------------
    def sample_posterior(self, x: Tensor, n_samples: int = 1) -> tuple[Tensor, Tensor]:
        """``n_samples`` draws ``z ~ q(z|x)`` and ``log q(z|x)``, each with a leading
        samples dimension: ``(samples, batch, k)`` and ``(samples, batch)``.

        Reparameterised (``z_0 = mu + sigma * eps``), so gradients reach the encoder.
        """
        positive_int(n_samples, "n_samples", "VAE")
        mu, log_sigma = self.encode(x)
        eps = torch.randn((n_samples, *mu.shape), dtype=mu.dtype, device=mu.device)
        z0 = mu + torch.exp(log_sigma) * eps
        log_q = standard_normal_log_prob(eps) - log_sigma.sum(-1)
        if self.posterior_flow is None:
            return z0, log_q
        z, logdet = self.posterior_flow(z0.reshape(-1, self.latent_dim))
        return z.reshape(z0.shape), log_q - logdet.reshape(log_q.shape)

    def posterior_log_prob(self, z: Tensor, x: Tensor) -> Tensor:
        """``log q(z|x)`` at given ``z``, by the flow's inverse:
        ``log q_0(f^{-1}(z)|x) + log|det df^{-1}/dz|``. A single ``x`` pairs with every ``z``.
        """
        self._check_latent(z)
        mu, log_sigma = self.encode(x)
        shape = torch.broadcast_shapes(z.shape, mu.shape)
        z = z.expand(shape)
        logdet = torch.zeros(shape[:-1], dtype=z.dtype, device=z.device)
        if self.posterior_flow is not None:
            z0, logdet = self.posterior_flow.inverse(z.reshape(-1, self.latent_dim))
            z, logdet = z0.reshape(shape), logdet.reshape(shape[:-1])
        eps = (z - mu) * torch.exp(-log_sigma)
        return standard_normal_log_prob(eps) - log_sigma.sum(-1) + logdet

    # -- bounds on log p(x) --------------------------------------------------------------
    def elbo(self, x: Tensor, n_samples: int = 1) -> Tensor:
        """Monte Carlo ``E_q[log p(x|z) + log p(z) - log q(z|x)]`` per sample, ``(batch,)``."""
        z, log_q = self.sample_posterior(x, n_samples)
        return (self.log_joint(x, z) - log_q).mean(0)

    def log_marginal(self, x: Tensor, n_samples: int = 1000) -> Tensor:
        """Importance-sampling estimate of ``log p(x)`` with ``q`` as proposal,
        ``log (1/S) sum_s p(x, z_s) / q(z_s|x)``, per sample.

        Its expectation is a lower bound that rises towards ``log p(x)`` as ``S`` grows
        (Burda et al., 2016); ``S = 1`` is the ELBO.
        """
        n_samples = positive_int(n_samples, "n_samples", "VAE.log_marginal")
        z, log_q = self.sample_posterior(x, n_samples)
        return torch.logsumexp(self.log_joint(x, z) - log_q, dim=0) - math.log(n_samples)

    def forward(self, x: Tensor) -> Tensor:
        return self.elbo(x)

    def with_posterior_flows(self, flows: Sequence[Flow] | Flow) -> "VAE":
        """A copy of this VAE (same encoder, decoder and likelihood) whose posterior
        is pushed through ``flows``; flows starting at the identity start at the same ELBO."""
        flow = _latent_flow(flows, self.latent_dim)
        other = copy.deepcopy(self)
        other.posterior_flow = flow
        return other

    def with_prior_flows(self, flows: Sequence[Flow] | Flow) -> "VAE":
        """A copy of this VAE (same encoder, decoder, likelihood and posterior) whose prior
        is ``N(0, I)`` pushed through ``flows``; flows starting at the identity start at the
        same ELBO."""
        flow = _latent_flow(flows, self.latent_dim, "prior")
        other = copy.deepcopy(self)
        other.prior_flow = flow
        return other

    def sample(self, n: int) -> Tensor:
        """``n`` draws of ``x``: ``z ~ p(z)`` (``u ~ N(0, I)`` and ``z = g(u)`` with a flow
        prior), then ``x ~ p(x|z)``."""
        n = positive_int(n, "n", "VAE.sample", minimum=0)
        with torch.no_grad():
            z = torch.randn(n, self.latent_dim, dtype=self._dtype(), device=self._device())
            if self.prior_flow is not None and n > 0:
                z = self.prior_flow(z)[0]
            out = self.decode(z)
            if self.likelihood == "binomial":
                return Binomial(self.trials, logits=out, validate_args=is_validating()).sample()
            return out + torch.exp(self.log_scale) * torch.randn_like(out)


def negative_elbo(model: VAE, x: Tensor) -> Tensor:
    """The training loss ``-mean ELBO(x)``, in the form ``fit(..., loss_fn=negative_elbo)`` takes."""
    return -model.elbo(x).mean()

"""Target densities in the plane for samplers trained by the reverse KL.

A target is known through its **unnormalised** log-density,

``p(x) = p~(x) / Z``,  ``Z = integral of p~(x) dx``,

which is all the reverse KL ``KL(q || p~) = E_q[log q(x) - log p~(x)] = KL(q || p) - log Z``
needs. Each target has ``log_prob(x)`` (that is ``log p~``, shape ``(batch,)`` for points of
shape ``(batch, 2)``), ``log_normaliser`` (the exact ``log Z``, or ``None`` where there is
no closed form), a plotting window ``xlim``, ``ylim``, and, where the density can be
sampled exactly, ``sample(n, generator=None)`` (the data of the forward KL).

Example:
    >>> banana = Banana()
    >>> banana.log_prob(torch.zeros(1, 2)), banana.log_normaliser   # log p~ and log Z = log pi
    (tensor([-2.]), 1.1447298858494002)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor
from torch.nn.functional import logsigmoid

from .datasets import sample_request
from .validation import CourseValueError, check_finite, finite_float, positive_float, positive_int

__all__ = ["Target", "banana_log_prob", "Banana", "GaussianMixture", "TwoCrescents",
           "LogisticRegressionPosterior", "get", "names"]


class Target:
    """A 2D density ``p = p~ / Z`` given by ``log p~``; subclasses define ``_log_prob``."""

    name: str = ""
    dim: int = 2
    xlim: tuple[float, float] = (-4.0, 4.0)
    ylim: tuple[float, float] = (-4.0, 4.0)
    log_normaliser: float | None = None

    def log_prob(self, x: Tensor) -> Tensor:
        """The unnormalised log-density ``log p~(x)`` at points ``x`` of shape ``(batch, 2)``."""
        where = f"{self.name}.log_prob"
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise CourseValueError(f"{where}: expected points of shape (batch, {self.dim}), "
                                   f"got {got}")
        if not x.is_floating_point():
            raise CourseValueError(f"{where}: expected floating-point points (float32 or float64), "
                                   f"got dtype {x.dtype}")
        check_finite(x, "x", where)
        return self._log_prob(x)

    def __call__(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact samples of ``p`` (``n = 0`` gives an empty batch), in torch's default
        dtype."""
        n = sample_request(n, generator, f"{self.name}.sample")
        return self._sample(n, generator).to(torch.get_default_dtype())

    def _log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _sample(self, n: int, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError(f"{self.name} cannot be sampled exactly: fit a sampler to it")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _normal_log_prob(x: Tensor, mean, std) -> Tensor:
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    return -0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)


def banana_log_prob(x: Tensor) -> Tensor:
    """The normalised banana: ``x1 ~ N(0, 1)``, ``x2 | x1 ~ N(x1^2 / 2 - 1, 0.5^2)``."""
    x1, x2 = x[:, 0], x[:, 1]
    return _normal_log_prob(x1, 0.0, 1.0) + _normal_log_prob(x2, 0.5 * x1 ** 2 - 1, 0.5)


class Banana(Target):
    """The banana without its constants:

    ``log p~(x) = -x1^2 / 2 - (x2 - x1^2 / 2 + 1)^2 / (2 * 0.5^2)``,  ``Z = 2 pi * 1 * 0.5 = pi``.

    Normalised it is :func:`banana_log_prob`; samples come from its two Gaussian factors.
    """

    name, log_normaliser = "banana", math.log(math.pi)
    xlim, ylim = (-3.5, 3.5), (-2.5, 4.5)

    def _log_prob(self, x):
        return -0.5 * x[:, 0] ** 2 - 0.5 * ((x[:, 1] - 0.5 * x[:, 0] ** 2 + 1) / 0.5) ** 2

    def _sample(self, n, generator):
        x1 = torch.randn(n, generator=generator, dtype=torch.float64)
        x2 = 0.5 * x1 ** 2 - 1 + 0.5 * torch.randn(n, generator=generator, dtype=torch.float64)
        return torch.stack([x1, x2], dim=1)


class GaussianMixture(Target):
    """Isotropic Gaussians with unnormalised weights ``a_k > 0``:

    ``p~(x) = sum_k a_k N(x; mu_k, sigma_k^2 I)``,  so ``Z = sum_k a_k`` exactly.

    The default is two well separated modes of equal weight, ``mu = (-2, -1)`` and
    ``(3, 2)``, ``sigma = 0.5``, ``a = (1, 1)`` (``Z = 2``): the first lies closer to the
    origin, where a sampler starting as ``N(0, I)`` puts its mass.
    """

    name = "mixture of Gaussians"
    xlim, ylim = (-4.0, 5.0), (-3.5, 4.5)

    def __init__(self, means: Sequence[Sequence[float]] = ((-2.0, -1.0), (3.0, 2.0)),
                 stds: Sequence[float] = (0.5, 0.5), weights: Sequence[float] = (1.0, 1.0)):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        self.stds = torch.as_tensor(stds, dtype=torch.float64)
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        k = self.means.shape[0]
        if self.means.shape != (k, 2) or self.stds.shape != (k,) or self.weights.shape != (k,):
            raise CourseValueError(f"GaussianMixture: expected means of shape (K, 2) and K stds "
                                   f"and weights, got {tuple(self.means.shape)}, "
                                   f"{tuple(self.stds.shape)}, {tuple(self.weights.shape)}")
        for v in self.means.flatten().tolist():
            finite_float(v, "every coordinate of the means", "GaussianMixture")
        for name, values in (("stds", self.stds), ("weights", self.weights)):
            for v in values.tolist():
                positive_float(v, f"every one of the {name}", "GaussianMixture")
        self.log_normaliser = math.log(float(self.weights.sum()))

    def _log_prob(self, x):
        means, stds = self.means.to(x), self.stds.to(x)
        per_component = _normal_log_prob(x[:, None, :], means, stds[:, None]).sum(-1)
        return torch.logsumexp(per_component + self.weights.to(x).log(), dim=1)

    def _sample(self, n, generator):
        if n == 0:   # multinomial refuses to draw nothing
            return self.means[:0]
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k, None] * noise

    def __repr__(self) -> str:
        return (f"GaussianMixture(means={self.means.tolist()}, stds={self.stds.tolist()}, "
                f"weights={self.weights.tolist()})")


class TwoCrescents(Target):
    """Two facing crescents on a ring, like the two-moons data (Rezende and Mohamed's first
    test energy):

    ``log p~(x) = -((|x| - 2) / 0.4)^2 / 2``
    ``+ log(exp(-((x1 - 2) / 0.6)^2 / 2) + exp(-((x1 + 2) / 0.6)^2 / 2))``.

    ``Z`` has no closed form. Exact samples by rejection from the uniform density on
    ``[-4.5, 4.5]^2``, which holds all but a negligible part of the mass, using
    ``p~ <= 1 + exp(-50/9) < 1.01`` (one of the two bumps is always at least 2 away).
    """

    name = "two crescents"
    xlim, ylim = (-4.0, 4.0), (-4.0, 4.0)
    _box, _log_bound = 4.5, math.log(1.01)

    def _log_prob(self, x):
        ring = -0.5 * ((x.norm(dim=1) - 2) / 0.4) ** 2
        sides = torch.stack([-0.5 * ((x[:, 0] - 2) / 0.6) ** 2, -0.5 * ((x[:, 0] + 2) / 0.6) ** 2])
        return ring + torch.logsumexp(sides, dim=0)

    def _sample(self, n, generator):
        kept, count = [torch.empty(0, 2, dtype=torch.float64)], 0
        while count < n:
            x = (2 * torch.rand(8 * n, 2, generator=generator, dtype=torch.float64) - 1) * self._box
            u = torch.rand(8 * n, generator=generator, dtype=torch.float64)
            accepted = x[u.log() < self._log_prob(x) - self._log_bound]
            kept.append(accepted)
            count += accepted.shape[0]
        return torch.cat(kept)[:n]


class LogisticRegressionPosterior(Target):
    """Posterior of the two weights ``w`` of a logistic regression without intercept:

    ``y_i | w ~ Bernoulli(sigmoid(w . u_i))``,  ``w ~ N(0, prior_std^2 I)``,

    ``log p~(w) = sum_i [y_i log sigmoid(w . u_i) + (1 - y_i) log sigmoid(-w . u_i)]``
    ``+ log N(w; 0, prior_std^2 I)``.

    The normaliser ``Z = p(y_1, ..., y_n)`` is the evidence, unknown in closed form. The
    data (features ``u_i ~ N(0, I)``, labels drawn with ``true_weights``) are generated
    here from ``seed``, so every lecture and test sees the same posterior. The flow's data
    variable ``x`` is the weight vector ``w``.
    """

    name = "logistic regression posterior"

    def __init__(self, n_data: int = 10, true_weights: Sequence[float] = (3.0, -2.0),
                 prior_std: float = 3.0, seed: int = 2):
        where = "LogisticRegressionPosterior"
        n_data = positive_int(n_data, "n_data", where)
        true_weights = [finite_float(w, "every true weight", where) for w in true_weights]
        if len(true_weights) != 2:
            raise CourseValueError(f"{where}: expected two true weights, got {len(true_weights)}")
        prior_std = positive_float(prior_std, "prior_std", where)
        g = torch.Generator().manual_seed(positive_int(seed, "seed", where, minimum=0))
        self.features = torch.randn(n_data, 2, generator=g, dtype=torch.float64)
        chance = torch.sigmoid(self.features @ torch.as_tensor(true_weights, dtype=torch.float64))
        coin = torch.rand(n_data, generator=g, dtype=torch.float64)
        self.labels = (coin < chance).to(torch.float64)
        self.true_weights = tuple(float(v) for v in true_weights)
        self.prior_std = float(prior_std)
        self.xlim, self.ylim = (-2.0, 10.0), (-9.0, 3.0)

    def log_likelihood(self, w: Tensor) -> Tensor:
        """``log p(y | w)`` for weight vectors ``w`` of shape ``(batch, 2)``."""
        logits = w @ self.features.to(w).T
        labels = self.labels.to(w)
        return (labels * logsigmoid(logits) + (1 - labels) * logsigmoid(-logits)).sum(dim=1)

    def log_prior(self, w: Tensor) -> Tensor:
        """``log N(w; 0, prior_std^2 I)``."""
        return _normal_log_prob(w, 0.0, self.prior_std).sum(dim=1)

    def _log_prob(self, w):
        return self.log_likelihood(w) + self.log_prior(w)

    def __repr__(self) -> str:
        return f"LogisticRegressionPosterior(n_data={len(self.labels)}, prior_std={self.prior_std})"


_REGISTRY = {cls.name: cls for cls in (TwoCrescents, GaussianMixture, Banana,
                                        LogisticRegressionPosterior)}
names = tuple(_REGISTRY)


def get(name: str) -> Target:
    """The target called ``name`` (with its default settings): one of ``names``."""
    if name not in _REGISTRY:
        raise CourseValueError(f"targets.get: unknown target {name!r}; choose one of "
                               f"{', '.join(names)}")
    return _REGISTRY[name]()

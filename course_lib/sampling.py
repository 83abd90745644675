"""Importance sampling with a trained sampler: how good is ``q`` as a stand-in for ``p``?

Draw ``x_i ~ q`` and weigh each sample by ``w_i = p~(x_i) / q(x_i)``. Then

* ``Z = E_q[w]``, so ``Z_hat = (1/n) sum_i w_i`` is an unbiased estimate of the normaliser
  (its logarithm is biased low, by Jensen's inequality, but consistent);
* the effective sample size ``ESS = (sum_i w_i)^2 / sum_i w_i^2`` lies between 1 (one
  sample carries all the weight) and ``n`` (all weights equal, i.e. ``q = p`` on the
  samples): ``n`` weighted samples are worth about ``ESS`` exact ones.

Everything works with ``log w`` and ``logsumexp``, because the weights themselves overflow
or underflow easily.

Example:
    >>> log_w = torch.log(torch.tensor([1.0, 1.0, 2.0]))
    >>> effective_sample_size(log_w)   # (1 + 1 + 2)^2 / (1 + 1 + 4)
    tensor(2.6667)
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .validation import CourseValueError, is_validating, positive_int

__all__ = ["log_importance_weights", "effective_sample_size", "log_normaliser_estimate"]


def _check_log_weights(log_w: Tensor, where: str) -> None:
    if not isinstance(log_w, Tensor) or log_w.dim() != 1 or log_w.numel() == 0:
        got = tuple(log_w.shape) if isinstance(log_w, Tensor) else type(log_w).__name__
        raise CourseValueError(f"{where}: expected a non-empty 1D tensor of log-weights, got {got}")
    if not is_validating():
        return
    if bool(torch.isnan(log_w).any()) or bool((log_w == math.inf).any()):
        raise CourseValueError(f"{where}: expected log-weights that are finite or -inf (weight 0), "
                               "got NaN or +inf")
    if bool((log_w == -math.inf).all()):
        raise CourseValueError(f"{where}: every weight is 0: the sampler puts no mass where the "
                               "target has any")


def log_importance_weights(model, log_target: Callable[[Tensor], Tensor],
                           n: int) -> tuple[Tensor, Tensor]:
    """``n`` samples ``x ~ q`` of ``model`` and their ``log w = log p~(x) - log q(x)``, without
    gradients. ``model`` is anything with ``sample_and_log_prob(n)``."""
    n = positive_int(n, "n", "log_importance_weights")
    with torch.no_grad():
        x, log_q = model.sample_and_log_prob(n)
        return x, log_target(x) - log_q


def effective_sample_size(log_w: Tensor) -> Tensor:
    """``ESS = (sum_i w_i)^2 / sum_i w_i^2`` from the log-weights ``log w`` of shape ``(n,)``.

    Unchanged when every weight is multiplied by the same constant, so an unnormalised
    target is fine. Divide by ``n`` for the fraction of samples that count.
    """
    _check_log_weights(log_w, "effective_sample_size")
    return torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))


def log_normaliser_estimate(log_w: Tensor) -> Tensor:
    """``log Z_hat = log((1/n) sum_i w_i)``: the log of the unbiased importance-sampling
    estimate of ``Z``, from the log-weights ``log w`` of shape ``(n,)``."""
    _check_log_weights(log_w, "log_normaliser_estimate")
    return torch.logsumexp(log_w, 0) - math.log(log_w.numel())

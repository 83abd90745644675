"""Training loops: maximum likelihood from samples (forward KL) and fitting a sampler to an
unnormalised log-density (reverse KL), with a progress bar and a guard against NaN."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .flows.base import initialize

__all__ = ["fit", "TrainingDiverged"]


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the message names the step."""


def _batch_source(data, batch_size: int, generator: torch.Generator) -> Callable[[], Tensor]:
    if data is None:
        raise ValueError("objective='forward_kl' needs data: a data set, a tensor of samples, "
                         "or a function n -> samples")
    if isinstance(data, Tensor):
        if data.dim() < 2:
            raise ValueError(f"expected training samples of shape (n, ...), got {tuple(data.shape)}")
        return lambda: data[torch.randint(0, data.shape[0], (batch_size,), generator=generator)]
    if hasattr(data, "sample"):
        return lambda: data.sample(batch_size, generator=generator)
    if callable(data):
        return lambda: data(batch_size)
    raise ValueError(f"cannot draw training batches from a {type(data).__name__}")


def fit(model: nn.Module, data=None, *, objective: str = "forward_kl",
        log_target: Callable[[Tensor], Tensor] | None = None, steps: int = 1000,
        batch_size: int = 256, lr: float = 1e-3, seed: int = 0, progress: bool = True,
        optimizer: torch.optim.Optimizer | None = None, loss_fn: Callable | None = None,
        schedule: str | None = None, clip_grad: float | None = None,
        callback: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` with Adam and return the loss at every step.

    Args:
        model: a ``NormalizingFlow`` (or anything with ``forward_kl`` / ``reverse_kl``).
        data: for ``forward_kl``: a data set from ``course_lib.datasets`` (fresh samples
            every step), a tensor of samples (minibatches drawn with replacement), or a
            function ``n -> samples``.
        objective: ``"forward_kl"`` (mean NLL of data, i.e. density estimation) or
            ``"reverse_kl"`` (``E_q[log q - log p~]``, fitting a sampler to ``log_target``).
        loss_fn: optional ``(model, batch) -> loss`` replacing the objective's loss on
            data batches (e.g. flow matching).
        schedule: ``None`` for a constant learning rate or ``"cosine"`` to decay it to 0.
        clip_grad: clip the gradient norm to this value.
        callback: called as ``callback(step, loss)`` after every step.

    Raises:
        TrainingDiverged: when the loss is NaN or infinite, naming the step.
    """
    if objective not in ("forward_kl", "reverse_kl"):
        raise ValueError(f"objective must be 'forward_kl' or 'reverse_kl', got {objective!r}")
    if objective == "reverse_kl" and log_target is None:
        raise ValueError("objective='reverse_kl' needs log_target, an unnormalised log-density")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    draw = _batch_source(data, batch_size, generator) if objective == "forward_kl" else None
    # the fused kernel updates all parameters at once: on a CPU the per-tensor Python loop of
    # plain Adam is a large share of a small flow's step time
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine"
             else None)
    dtype = next(model.parameters()).dtype
    history: list[float] = []
    bar = _progress(steps, progress)
    model.train()
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        if objective == "forward_kl":
            batch = draw().to(dtype)
            if step == 1 and loss_fn is None:
                initialize(model, batch)  # data-dependent initialisation (ActNorm), explicit
            loss = loss_fn(model, batch) if loss_fn is not None else model.forward_kl(batch)
        else:
            loss = model.reverse_kl(log_target, batch_size)
        value = loss.item()
        if not math.isfinite(value):
            bar.close()
            raise TrainingDiverged(
                f"the loss became {value} at step {step} of {steps}; try a smaller learning "
                "rate, gradient clipping (clip_grad=...), or check the data for outliers")
        loss.backward()
        if clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        opt.step()
        if sched is not None:
            sched.step()
        history.append(value)
        if callback is not None:
            callback(step, value)
        if step % 10 == 0 or step == steps:
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)
        bar.update(1)
    bar.close()
    model.eval()
    return history


def _progress(steps: int, enabled: bool):
    return tqdm(total=steps, disable=not enabled, desc="training", leave=True)

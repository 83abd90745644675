"""Training loops: maximum likelihood from samples (forward KL) and fitting a sampler to an
unnormalised log-density (reverse KL), with a progress bar and a guard against NaN."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .flows.base import initialize
from .model import dtype_device
from .validation import (CourseValueError, check_finite, is_validating, positive_float,
                         positive_int)

__all__ = ["fit", "adam", "TrainingDiverged"]


class TrainingDiverged(CourseValueError):
    """Training left the finite numbers (a NaN or infinite loss or gradient, or a flow that
    overflowed on finite data); the message names the step."""


def _batch_source(data, batch_size: int, generator: torch.Generator) -> Callable[[], Tensor]:
    if data is None:
        raise CourseValueError("fit: objective='forward_kl' needs data: a data set, a tensor of "
                               "samples, or a function n -> samples")
    if isinstance(data, Tensor):
        if data.dim() < 2:
            raise CourseValueError(f"fit: expected training samples of shape (n, ...), got "
                                   f"{tuple(data.shape)}")
        if data.shape[0] == 0:
            raise CourseValueError(f"fit: expected at least one training sample, got an empty "
                                   f"tensor of shape {tuple(data.shape)}")
        # indices are drawn on the CPU generator, so a run is the same on every device
        return lambda: data[torch.randint(0, data.shape[0], (batch_size,),
                                          generator=generator).to(data.device)]
    if hasattr(data, "sample"):
        return lambda: data.sample(batch_size, generator=generator)
    if callable(data):
        return lambda: data(batch_size)
    raise CourseValueError(f"fit: cannot draw training batches from a {type(data).__name__}; "
                           "pass a data set, a tensor of samples or a function n -> samples")


def _fused_adam_available(params: list[Tensor]) -> bool:
    """Whether the running torch has a fused Adam kernel for every parameter's device."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
        devices = _get_fused_kernels_supported_devices()
    except ImportError:  # torch before 2.2 has no such list, and a fused kernel for CUDA only
        devices = ["cuda"]
    return all(p.device.type in devices and p.is_floating_point() for p in params)


def adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam, fused where the running torch has a fused kernel for the model's device.

    The fused kernel updates all parameters at once: on a CPU the per-tensor Python loop of
    plain Adam is a large share of a small flow's step time. CPU kernels arrived in torch 2.4,
    so the choice asks torch which devices it supports (and falls back if torch still refuses).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise CourseValueError(f"fit: the model has no trainable parameters; got a "
                               f"{type(model).__name__} whose parameters all have "
                               "requires_grad=False (or none at all)")
    if _fused_adam_available(params):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=lr)


def _gradient_norm(model: nn.Module) -> Tensor | None:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return None
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def fit(model: nn.Module, data=None, *, objective: str = "forward_kl",
        log_target: Callable[[Tensor], Tensor] | None = None, steps: int = 1000,
        batch_size: int = 256, lr: float = 1e-3, seed: int = 0, progress: bool = True,
        optimizer: torch.optim.Optimizer | None = None, loss_fn: Callable | None = None,
        schedule: str | None = None, clip_grad: float | None = None,
        callback: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``model`` with Adam and return the loss at every step.

    Batches are moved to the model's device and cast to its dtype (``dtype_device``).

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
        TrainingDiverged: when the loss is NaN or infinite, when (with validation on) the
            gradient is, or when the model's value checks fail on a finite batch after the
            optimizer has moved its parameters; the message names the step.
    """
    where = "fit"
    if objective not in ("forward_kl", "reverse_kl"):
        raise CourseValueError(f"fit: objective must be 'forward_kl' or 'reverse_kl', got "
                               f"{objective!r}")
    if objective == "reverse_kl" and log_target is None:
        raise CourseValueError("fit: objective='reverse_kl' needs log_target, an unnormalised "
                               "log-density")
    steps = positive_int(steps, "steps", where)
    batch_size = positive_int(batch_size, "batch_size", where)
    if optimizer is None:
        lr = positive_float(lr, "lr", where)
    if schedule not in (None, "cosine"):
        raise CourseValueError(f"fit: schedule must be None (constant learning rate) or "
                               f"'cosine', got {schedule!r}")
    if clip_grad is not None:
        clip_grad = positive_float(clip_grad, "clip_grad", where)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    draw = _batch_source(data, batch_size, generator) if objective == "forward_kl" else None
    opt = optimizer or adam(model, lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine"
             else None)
    dtype, device = dtype_device(model)
    history: list[float] = []
    bar = _progress(steps, progress)

    def diverged(step: int, what: str) -> TrainingDiverged:
        return TrainingDiverged(
            f"fit: at step {step} of {steps} {what}; try a smaller learning rate (lr={lr!r}), "
            "gradient clipping (clip_grad=...), or check the data for outliers")

    model.train()
    try:
        for step in range(1, steps + 1):
            opt.zero_grad(set_to_none=True)
            if objective == "forward_kl":
                batch = draw()
                if not isinstance(batch, Tensor):
                    raise CourseValueError(f"fit: expected the data to give a tensor batch, got "
                                           f"{type(batch).__name__}")
                batch = batch.to(device=device, dtype=dtype)
                check_finite(batch, f"the training batch of step {step}", where)
                if step == 1 and loss_fn is None:
                    # data-dependent initialisation (ActNorm), explicit; with a loss_fn the batch
                    # need not be what the model sees, so such callers initialise themselves
                    initialize(model, batch)
            try:
                if objective == "forward_kl":
                    loss = (loss_fn(model, batch) if loss_fn is not None
                            else model.forward_kl(batch))
                else:
                    loss = model.reverse_kl(log_target, batch_size)
            except CourseValueError as exc:
                if step == 1 or isinstance(exc, TrainingDiverged):
                    raise
                # the same model passed these checks on finite data before the optimizer moved
                # its parameters: the steps since have driven the flows out of the finite numbers
                raise diverged(step, f"the model failed on finite data after {step - 1} "
                                     f"optimizer step(s) ({exc})") from exc
            value = loss.item()
            if not math.isfinite(value):
                raise diverged(step, f"the loss became {value}")
            loss.backward()
            # the gradient check is a value check: with validation off a non-finite gradient
            # shows up as a non-finite loss one step later
            norm = (nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                    if clip_grad is not None
                    else _gradient_norm(model) if is_validating() else None)
            if is_validating() and norm is not None and not bool(torch.isfinite(norm)):
                raise diverged(step, "the gradient became non-finite (NaN or inf)")
            opt.step()
            if sched is not None:
                sched.step()
            history.append(value)
            if callback is not None:
                callback(step, value)
            if step % 10 == 0 or step == steps:
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            bar.update(1)
    finally:
        bar.close()
    model.eval()
    return history


def _progress(steps: int, enabled: bool):
    return tqdm(total=steps, disable=not enabled, desc="training", leave=True)

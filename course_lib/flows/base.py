"""The flow interface, composition, inversion and explicit data-dependent initialisation.

A flow is an invertible map from latent to data, :math:`x = f(z)`. Both directions
return the output together with the log absolute Jacobian determinant of the map
that was applied, one value per sample:

* ``forward(z) -> (x, log|det df/dz|)``
* ``inverse(x) -> (z, log|det df^{-1}/dx|)``, which equals minus the forward value at ``z``.

Subclasses implement ``_forward`` and ``_inverse``; the public methods wrap them in one
skeleton, so that a mistake is reported where it is made instead of surfacing later as a
NaN loss:

1. the input's type, dtype and shape are checked (always);
2. while validation is on (:func:`course_lib.set_validation`), the outermost flow call also
   checks that the input and every parameter of the flow (and of the flows inside it) are
   finite, naming the parameter;
3. while validation is on, every flow checks that what it returns is finite; finite input
   and finite parameters giving a non-finite result means the numbers overflowed the dtype,
   and the error says so instead of passing an inf or NaN on.

Flows called inside another flow's call skip the finiteness scans of their input and
parameters (the outer call did them), so a deep model scans each tensor once.
"""
from __future__ import annotations

import contextvars
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from ..validation import (CourseValueError, check_finite, check_finite_parameters,
                          is_validating)

__all__ = ["Flow", "Compose", "Inverse", "FlowInputError", "check_input", "initialize",
           "initializing", "check_exp_parameter"]

# True while a checked outer flow call runs: its input and parameters were scanned already
_INSIDE_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("course_lib_inside_flow_call",
                                                                    default=False)
# True while ``initialize`` passes a batch through a model (a plain flag, so that reading it
# inside a flow is free for torch.compile)
_INITIALIZING = False


class FlowInputError(CourseValueError):
    """Raised when a flow is given an input it cannot map (shape, dtype, value, domain)."""


def _describe_shape(event_shape: Sequence[int | None]) -> str:
    dims = ", ".join("batch" if i == 0 else ("*" if s is None else str(s))
                     for i, s in enumerate([0, *event_shape]))
    return f"({dims})"


def check_input(x: Tensor, event_shape: Sequence[int | None], name: str = "input",
                dtype: torch.dtype | None = None, where: str = "flow") -> None:
    """Raise :class:`FlowInputError` unless ``x`` is a finite float batch of ``event_shape``.

    ``event_shape`` lists the sizes after the batch dimension; ``None`` accepts any size.
    The type, dtype and shape checks always run; the finiteness scan is a value check that
    :func:`course_lib.set_validation` can switch off, and that is skipped inside a checked
    flow call, whose input was scanned already.
    """
    if not isinstance(x, Tensor):
        raise FlowInputError(f"{where}: expected {name} to be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise FlowInputError(
            f"{where}: expected {name} with a floating dtype (float32 or float64), got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise FlowInputError(
            f"{where}: expected {name} of dtype {dtype} (the dtype of the flow's parameters), "
            f"got {x.dtype}; convert one of them with .to({dtype}) or .to({x.dtype})")
    expected = _describe_shape(event_shape)
    if x.dim() != len(event_shape) + 1 or any(
            s is not None and s != g for s, g in zip(event_shape, x.shape[1:])):
        raise FlowInputError(f"{where}: expected {name} of shape {expected}, got {tuple(x.shape)}")
    if is_validating() and not _INSIDE_CALL.get():
        _check_finite_input(x, name, where)


def _check_finite_input(x: Tensor, name: str, where: str) -> None:
    try:
        check_finite(x, name, where)
    except CourseValueError as exc:
        raise FlowInputError(str(exc)) from None


def check_exp_parameter(p: Tensor, name: str, where: str) -> None:
    """Raise unless ``exp(p)`` is finite and non-zero in ``p``'s dtype (a value check).

    For parameters stored as logarithms of scales (ActNorm's ``log_scale``, the ``log_u`` of
    an LU matrix): outside about ``(-103, 88.7)`` in float32 the scale is 0 or inf and the
    map stops being invertible.
    """
    if not is_validating():
        return
    scale = torch.exp(p.detach())
    bad = ~(torch.isfinite(scale) & (scale > 0))
    if bool(bad.any()):
        value = p.detach()[bad].flatten()[0].item()
        info = torch.finfo(p.dtype)
        raise CourseValueError(
            f"{where}: parameter '{name}' = {value:.4g} gives a scale exp({value:.4g}) that is "
            f"{'inf' if value > 0 else '0'} in {p.dtype}; the map is not invertible there. "
            f"Expected {name} in ({torch.tensor(info.tiny).log().item():.1f}, "
            f"{torch.tensor(info.max).log().item():.1f}): lower the learning rate, or use float64")


def initializing() -> bool:
    """Whether :func:`initialize` is passing a data batch through the flows right now."""
    return _INITIALIZING


class Flow(nn.Module):
    """Base class of every invertible map ``x = f(z)`` in the course.

    Args:
        event_shape: the shape of one sample, e.g. ``(dim,)`` for vectors or
            ``(channels, None, None)`` for images of any height and width.
    """

    def __init__(self, event_shape: Sequence[int | None]):
        super().__init__()
        self.event_shape = tuple(event_shape)

    # -- what subclasses implement -------------------------------------------------
    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def needs_initialization(self) -> bool:
        """Whether this flow waits for :func:`initialize` to set parameters from data."""
        return False

    # -- public, checked directions ------------------------------------------------
    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Map latent ``z`` to data: returns ``(x, log|det df/dz|)``."""
        return self._checked_call(z, "z", "forward")

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map data ``x`` to latent: returns ``(z, log|det df^{-1}/dx|)``."""
        return self._checked_call(x, "x", "inverse")

    def _checked_call(self, x: Tensor, name: str, direction: str) -> tuple[Tensor, Tensor]:
        self._check(x, name)
        run = self._forward if direction == "forward" else self._inverse
        if not is_validating():
            return run(x)
        if _INSIDE_CALL.get():
            out = run(x)
        else:
            check_finite_parameters(self, f"{type(self).__name__}.{direction}")
            token = _INSIDE_CALL.set(True)
            try:
                out = run(x)
            finally:
                _INSIDE_CALL.reset(token)
        self._check_output(out, direction)
        return out

    def _check_output(self, out: tuple[Tensor, Tensor], direction: str) -> None:
        for value, what in zip(out, ("output", "log-determinant")):
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                bad = int((~finite).sum().item())
                info = torch.finfo(value.dtype)
                raise FlowInputError(
                    f"{type(self).__name__}.{direction}: the {what} has {bad} non-finite value(s) "
                    f"although the input and the parameters are finite: the result overflows "
                    f"{value.dtype} (largest finite value {info.max:.3g}, smallest positive "
                    f"{info.tiny:.3g}); use smaller inputs, float64, or parameters nearer the "
                    "identity")

    def _param_dtype(self) -> torch.dtype | None:
        for t in self.parameters():
            return t.dtype
        for t in self.buffers():
            if t.is_floating_point():
                return t.dtype
        return None

    def _check(self, x: Tensor, name: str) -> None:
        check_input(x, self.event_shape, name, self._param_dtype(), type(self).__name__)

    def accepts_event_shape(self, shape: Sequence[int]) -> bool:
        """Whether samples of ``shape`` (one sample, no batch dimension) fit this flow."""
        return len(shape) == len(self.event_shape) and all(
            s is None or s == g for s, g in zip(self.event_shape, shape))

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}"


def _check_any_batch(flow: Flow, x: Tensor, name: str) -> None:
    """The checks of a flow that passes its input on to other flows, which check its shape."""
    where = type(flow).__name__
    if not isinstance(x, Tensor):
        raise FlowInputError(f"{where}: expected {name} to be a torch.Tensor, "
                             f"got {type(x).__name__}")
    if x.dim() == 0:
        raise FlowInputError(f"{where}: expected {name} with a batch dimension, got a scalar")
    if is_validating() and not _INSIDE_CALL.get():
        _check_finite_input(x, name, where)


class Compose(Flow):
    """Apply flows in order, ``x = f_K(... f_1(z))``; log-determinants add up.

    ``log|det J_f(z)| = sum_k log|det J_{f_k}(z_{k-1})|`` (chain rule of determinants).
    Accepts flows as arguments or one list of them.
    """

    def __init__(self, *flows: Flow | Iterable[Flow]):
        if len(flows) == 1 and not isinstance(flows[0], nn.Module):
            try:
                flows = tuple(flows[0])
            except TypeError:
                raise CourseValueError(f"Compose: expected Flow instances or one list of them, "
                                       f"got {type(flows[0]).__name__}") from None
        elif len(flows) == 1 and isinstance(flows[0], nn.ModuleList):
            flows = tuple(flows[0])
        if not flows:
            raise CourseValueError("Compose: expected at least one flow, got none")
        for i, f in enumerate(flows):
            if not isinstance(f, Flow):
                raise CourseValueError(
                    f"Compose: expected Flow instances (with forward and inverse returning "
                    f"(output, log-det)), got {type(f).__name__} at position {i}")
        super().__init__(flows[0].event_shape)
        self.flows = nn.ModuleList(flows)

    def _check(self, x: Tensor, name: str) -> None:
        _check_any_batch(self, x, name)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        total = None
        for f in self.flows:
            z, logdet = f.forward(z)
            total = logdet if total is None else total + logdet
        return z, total

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        total = None
        for f in reversed(self.flows):
            x, logdet = f.inverse(x)
            total = logdet if total is None else total + logdet
        return x, total

    def __len__(self) -> int:
        return len(self.flows)

    def __getitem__(self, i: int) -> Flow:
        return self.flows[i]


class Inverse(Flow):
    """The inverse map ``f^{-1}`` of a flow: its two directions swapped.

    ``Inverse(Sigmoid(d))`` is the logit, ``Inverse(Exp(d))`` the logarithm.
    """

    def __init__(self, flow: Flow):
        if not isinstance(flow, Flow):
            raise CourseValueError(f"Inverse: expected a Flow, got {type(flow).__name__}")
        super().__init__(flow.event_shape)
        self.flow = flow

    def _check(self, x: Tensor, name: str) -> None:
        _check_any_batch(self, x, name)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow.inverse(z)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow.forward(x)


def initialize(module: nn.Module, x: Tensor) -> nn.Module:
    """Set every data-dependent initialisation inside ``module`` (ActNorm) from the batch ``x``.

    ``x`` is data. It is passed once through the data -> latent direction: ``inverse`` for a
    :class:`Flow`, the flows in reverse for a model with a ``.flow`` (a ``NormalizingFlow``).
    Every flow inside that is not initialised yet (``needs_initialization()``) sets its
    parameters from the activations it receives and marks itself initialised; flows that are
    initialised already, or loaded from a saved state, are left alone. Nothing else ever
    initialises a flow from data: until this is called, an ActNorm acts with its stored
    parameters (the identity when new). ``course_lib.training.fit`` calls it on its first batch.

    If anything fails (too small a batch, a constant channel), no flow is changed.

    Returns:
        ``module``, so ``model = initialize(glow(), batch)`` reads naturally.

    Example:
        >>> from course_lib.flows import ActNorm
        >>> norm = initialize(ActNorm(2), torch.randn(64, 2) * 3 + 1)
        >>> bool(norm.initialized)
        True
    """
    if not isinstance(module, nn.Module):
        raise CourseValueError(f"initialize: expected a Flow or a model (an nn.Module), got "
                               f"{type(module).__name__}")
    pending = {name: m for name, m in module.named_modules()
               if isinstance(m, Flow) and m.needs_initialization()}
    if not pending:
        return module  # nothing waits for data (no ActNorm, or all initialised already)
    flow = module if isinstance(module, Flow) else getattr(module, "flow", None)
    if not isinstance(flow, Flow):
        raise CourseValueError(f"initialize: expected a Flow or a model with a .flow (a "
                               f"NormalizingFlow) to pass the data through, got "
                               f"{type(module).__name__}")
    saved = {name: {k: v.detach().clone() for k, v in m.state_dict().items()}
             for name, m in pending.items()}
    global _INITIALIZING
    previous, _INITIALIZING = _INITIALIZING, True
    try:
        with torch.no_grad():
            flow.inverse(x)
        missed = [name or type(m).__name__ for name, m in pending.items()
                  if m.needs_initialization()]
        if missed:
            raise CourseValueError(
                f"initialize: {', '.join(missed)} received no data on the data -> latent pass "
                "(a flow wrapped in Inverse sees latents there); initialise it on its own with "
                "its .initialize(batch)")
    except BaseException:
        for name, m in pending.items():
            m.load_state_dict(saved[name])
        raise
    finally:
        _INITIALIZING = previous
    return module

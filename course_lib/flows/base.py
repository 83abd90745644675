"""The flow interface, composition and inversion.

A flow is an invertible map from latent to data, :math:`x = f(z)`. Both directions
return the output together with the log absolute Jacobian determinant of the map
that was applied, one value per sample:

* ``forward(z) -> (x, log|det df/dz|)``
* ``inverse(x) -> (z, log|det df^{-1}/dx|)``, which equals minus the forward value at ``z``.

Subclasses implement ``_forward`` and ``_inverse``; the public methods first check
that the input has the expected shape, a floating dtype that matches the flow's
parameters, and only finite values, so that a mistake is reported where it is made
instead of surfacing later as a NaN loss.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from ..validation import CourseValueError, check_finite

__all__ = ["Flow", "Compose", "Inverse", "FlowInputError", "check_input"]


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
    :func:`course_lib.set_validation` can switch off.
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
    try:
        check_finite(x, name, where)
    except CourseValueError as exc:
        raise FlowInputError(str(exc)) from None


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

    # -- public, checked directions ------------------------------------------------
    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Map latent ``z`` to data: returns ``(x, log|det df/dz|)``."""
        self._check(z, "z")
        return self._forward(z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Map data ``x`` to latent: returns ``(z, log|det df^{-1}/dx|)``."""
        self._check(x, "x")
        return self._inverse(x)

    def _param_dtype(self) -> torch.dtype | None:
        for t in self.parameters():
            return t.dtype
        for t in self.buffers():
            if t.is_floating_point():
                return t.dtype
        return None

    def _check(self, x: Tensor, name: str) -> None:
        check_input(x, self.event_shape, name, self._param_dtype(), type(self).__name__)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}"


class Compose(Flow):
    """Apply flows in order, ``x = f_K(... f_1(z))``; log-determinants add up.

    ``log|det J_f(z)| = sum_k log|det J_{f_k}(z_{k-1})|`` (chain rule of determinants).
    """

    def __init__(self, *flows: Flow | Iterable[Flow]):
        if len(flows) == 1 and not isinstance(flows[0], Flow):
            flows = tuple(flows[0])
        if not flows:
            raise ValueError("Compose: expected at least one flow, got none")
        for f in flows:
            if not isinstance(f, Flow):
                raise ValueError(f"Compose: expected Flow instances, got {type(f).__name__}")
        super().__init__(flows[0].event_shape)
        self.flows = nn.ModuleList(flows)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        total = None
        for f in self.flows:
            z, logdet = f.forward(z)
            total = logdet if total is None else total + logdet
        return z, total

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
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
            raise ValueError(f"Inverse: expected a Flow, got {type(flow).__name__}")
        super().__init__(flow.event_shape)
        self.flow = flow

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow.inverse(z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.flow.forward(x)

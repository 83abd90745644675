"""Adapters between course flows and ``torch.distributions`` transforms, both ways.

* :func:`as_transform` wraps a course :class:`~course_lib.flows.Flow` as a
  ``torch.distributions.Transform``, so it can sit inside a ``TransformedDistribution``::

      TransformedDistribution(Normal(torch.zeros(1), 1.0), [as_transform(Exp(1))])

* :func:`from_transform` wraps a bijective torch transform as a course ``Flow``, so it can
  sit inside a :class:`~course_lib.model.NormalizingFlow`::

      NormalizingFlow(1, [from_transform(ExpTransform(), 1)])

Torch's transforms use the same direction as the course (``y = t(x)`` maps the base to the
data side) and the same sign of ``log_abs_det_jacobian``, so each adapter is a thin wrapper.
Course flows take one batch dimension, ``(batch, *event_shape)``; :func:`apply_batched`
flattens any number of leading dimensions (including none) into that one and back.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.distributions import constraints
from torch.distributions.transforms import Transform

from .flows.base import Compose, Flow, FlowInputError, Inverse
from .validation import CourseValueError, is_validating, positive_int

__all__ = ["as_transform", "from_transform", "FlowTransform", "TransformFlow", "apply_batched",
           "flow_domain", "flow_codomain"]


def apply_batched(fn: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor,
                  event_ndim: int) -> tuple[Tensor, Tensor]:
    """Run ``fn`` (taking ``(batch, *event)``) on ``x`` of shape ``(*lead, *event)``.

    Returns the output reshaped to ``(*lead, *event_out)`` and the log-determinant reshaped
    to ``lead``; ``lead`` may be empty (one sample) or hold several dimensions.
    """
    lead = x.shape[:x.dim() - event_ndim]
    y, logdet = fn(x.reshape(-1, *x.shape[x.dim() - event_ndim:]))
    return y.reshape(*lead, *y.shape[1:]), logdet.reshape(lead)


# -- domain and codomain of a course flow ---------------------------------------------------------

def _real_line(flow: Flow) -> constraints.Constraint:
    return constraints.real


def _logit_range(flow: Flow) -> constraints.Constraint:
    a = flow.alpha
    # the open interval (-a / (1 - 2a), (1 - a) / (1 - 2a)); torch has no open interval, and the
    # boundary points are never reached by the forward map
    return constraints.interval(-a / (1 - 2 * a), (1 - a) / (1 - 2 * a))


def _elementwise(cls: type) -> tuple[Callable, Callable] | None:
    """(domain, codomain) of the elementwise course flows whose ranges are not the real line."""
    from .flows import Exp, Sigmoid
    from .flows.glow import LogitTransform
    table = {Exp: (_real_line, lambda f: constraints.positive),
             Sigmoid: (_real_line, lambda f: constraints.unit_interval),
             LogitTransform: (_real_line, _logit_range)}
    return table.get(cls)


def _range(flow: Flow, side: str) -> constraints.Constraint:
    """The constraint of one entry on the latent (``"domain"``) or data (``"codomain"``) side."""
    if isinstance(flow, Inverse):
        return _range(flow.flow, "codomain" if side == "domain" else "domain")
    if isinstance(flow, Compose):
        return _range(flow.flows[0] if side == "domain" else flow.flows[-1], side)
    if isinstance(flow, TransformFlow):
        c = flow.transform.domain if side == "domain" else flow.transform.codomain
        while isinstance(c, constraints.independent):
            c = c.base_constraint
        return c
    entry = _elementwise(type(flow))
    if entry is None:
        return constraints.real
    return entry[0 if side == "domain" else 1](flow)


def _with_event(c: constraints.Constraint, event_ndim: int) -> constraints.Constraint:
    return constraints.independent(c, event_ndim - c.event_dim) if event_ndim > c.event_dim else c


def flow_domain(flow: Flow) -> constraints.Constraint:
    """Where ``flow.forward`` is defined, over one sample (event dimension ``len(event_shape)``)."""
    return _with_event(_range(flow, "domain"), len(flow.event_shape))


def flow_codomain(flow: Flow) -> constraints.Constraint:
    """The data side of ``flow`` over one sample, as ``torch.distributions`` reports a support.

    Like ``TransformedDistribution.support`` it is the codomain of the last map: exact for
    ``Exp``, ``Sigmoid`` and ``LogitTransform`` (and their inverses), the real line for every
    other course flow, a superset of the true image when an earlier layer restricts it.
    """
    return _with_event(_range(flow, "codomain"), len(flow.event_shape))


# -- course flow -> torch transform ---------------------------------------------------------------

class FlowTransform(Transform):
    """A course ``Flow`` as a bijective ``torch.distributions.Transform`` (see :func:`as_transform`).

    The flow computes its output and log-determinant together; the pair of the last call
    (in either direction) is remembered, so ``TransformedDistribution.log_prob`` (``inv`` then
    ``log_abs_det_jacobian`` on the same tensors) runs the flow once.
    """

    bijective = True

    def __init__(self, flow: Flow):
        super().__init__(cache_size=0)
        self.flow = flow
        self._event_ndim = len(flow.event_shape)
        self._last: tuple[Tensor, Tensor, Tensor] | None = None

    @property
    def domain(self) -> constraints.Constraint:
        return flow_domain(self.flow)

    @property
    def codomain(self) -> constraints.Constraint:
        return flow_codomain(self.flow)

    def with_cache(self, cache_size: int = 1) -> "FlowTransform":
        return self  # the flow's own (input, output, log-det) memory plays the cache's part

    def _call(self, z: Tensor) -> Tensor:
        x, logdet = apply_batched(self.flow.forward, z, self._event_ndim)
        self._last = (z, x, logdet)
        return x

    def _inverse(self, x: Tensor) -> Tensor:
        z, logdet = apply_batched(self.flow.inverse, x, self._event_ndim)
        self._last = (z, x, -logdet)
        return z

    def log_abs_det_jacobian(self, z: Tensor, x: Tensor) -> Tensor:
        if self._last is not None and self._last[0] is z and self._last[1] is x:
            return self._last[2]
        return apply_batched(self.flow.forward, z, self._event_ndim)[1]

    def forward_shape(self, shape):
        return shape

    def inverse_shape(self, shape):
        return shape

    def __repr__(self) -> str:
        return f"FlowTransform({type(self.flow).__name__}, event_dim={self._event_ndim})"


def as_transform(flow: Flow) -> FlowTransform:
    """A course flow as a ``torch.distributions.Transform`` (bijective, with ``inv``,
    ``log_abs_det_jacobian``, ``domain``/``codomain`` and ``event_dim = len(flow.event_shape)``).

    Example:
        >>> import torch
        >>> from torch.distributions import Normal, TransformedDistribution
        >>> from course_lib.flows import Exp
        >>> q = TransformedDistribution(Normal(torch.zeros(1), 1.0), [as_transform(Exp(1))])
        >>> q.log_prob(torch.ones(1)).shape  # one event: the log-normal density at 1
        torch.Size([])
    """
    if not isinstance(flow, Flow):
        raise CourseValueError(f"as_transform: expected a course Flow, got {type(flow).__name__}")
    return FlowTransform(flow)


# -- torch transform -> course flow ---------------------------------------------------------------

class TransformFlow(Flow):
    """A bijective torch transform as a course ``Flow`` on samples of ``event_shape``.

    ``forward`` is ``t``, ``inverse`` is ``t.inv``; the log-determinant is torch's
    ``log_abs_det_jacobian`` summed over the event dimensions the transform treats as a batch
    (``ExpTransform`` is elementwise: its log-det is summed over the ``dim`` coordinates).
    Tensors held by the transform (an ``AffineTransform``'s ``loc``, say) are not parameters
    or buffers of the flow: they stay on their device and dtype.
    """

    def __init__(self, transform: Transform, event_shape: Sequence[int]):
        super().__init__(event_shape)
        self.transform = transform
        self._extra = len(self.event_shape) - transform.domain.event_dim

    def _sum_extra(self, logdet: Tensor, x: Tensor) -> Tensor:
        logdet = logdet.expand(x.shape[:x.dim() - self.transform.domain.event_dim])
        return logdet.flatten(1).sum(1) if self._extra > 0 else logdet

    def _check_range(self, value: Tensor, c: constraints.Constraint, what: str) -> None:
        if is_validating() and value.numel() and not bool(c.check(value).all()):
            raise FlowInputError(f"{type(self.transform).__name__} (as a flow): expected {what} "
                                 f"inside {c}, got values outside it")

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        self._check_range(z, self.transform.domain, "z")
        x = self.transform(z)
        return x, self._sum_extra(self.transform.log_abs_det_jacobian(z, x), z)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check_range(x, self.transform.codomain, "x")
        z = self.transform.inv(x)
        return z, -self._sum_extra(self.transform.log_abs_det_jacobian(z, x), z)

    def extra_repr(self) -> str:
        return f"{self.transform}, event_shape={self.event_shape}"


def from_transform(transform: Transform, dim: int | Sequence[int]) -> TransformFlow:
    """A bijective, shape-preserving torch transform as a course flow on samples of size ``dim``
    (an int for vectors, or a shape tuple).

    Example:
        >>> from torch.distributions.transforms import ExpTransform
        >>> from course_lib import NormalizingFlow
        >>> model = NormalizingFlow(1, [from_transform(ExpTransform(), 1)])  # the log-normal
        >>> model.sample((2, 3)).shape
        torch.Size([2, 3, 1])
    """
    if not isinstance(transform, Transform):
        raise CourseValueError(f"from_transform: expected a torch.distributions Transform, got "
                               f"{type(transform).__name__}")
    if isinstance(dim, int) or not isinstance(dim, Sequence):
        shape = (positive_int(dim, "dim", "from_transform"),)
    else:
        shape = tuple(positive_int(s, "each size of dim", "from_transform") for s in dim)
    if not transform.bijective:
        raise CourseValueError(f"from_transform: expected a bijective transform, got "
                               f"{transform} (bijective=False)")
    if transform.domain.event_dim > len(shape):
        raise CourseValueError(f"from_transform: {transform} acts on events of "
                               f"{transform.domain.event_dim} dimensions, more than the sample "
                               f"shape {shape} has")
    try:
        out = tuple(transform.forward_shape(shape))
    except (ValueError, NotImplementedError):
        out = None
    if out != shape:
        raise CourseValueError(f"from_transform: expected a transform that keeps the shape "
                               f"{shape} of a sample, got one mapping it to {out}")
    return TransformFlow(transform, shape)

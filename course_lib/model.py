"""A normalizing flow model: a base distribution pushed through a stack of flows.

``NormalizingFlow`` is both a ``torch.nn.Module`` (parameters, ``.to()``, ``state_dict``) and a
``torch.distributions.Distribution`` (``sample``, ``rsample``, ``log_prob``, ``event_shape``), so
a trained model can be used wherever PyTorch expects a distribution.
"""
from __future__ import annotations

import contextlib
import itertools
import numbers
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.distributions import (Distribution, Independent, LowRankMultivariateNormal,
                                 MultivariateNormal, Normal, Uniform, constraints)

from .flows.base import Compose, Flow, FlowInputError
from .transforms import apply_batched, flow_codomain
from .validation import (CourseValueError, check_finite_parameters, is_validating,
                         nonnegative_int, positive_int)

__all__ = ["NormalizingFlow", "dtype_device"]


def dtype_device(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of a model: those of its first floating-point parameter, else of
    its first floating-point buffer, else torch's default dtype and device."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.get_default_dtype(), torch.empty(()).device


# The torch distributions a base may be, and the tensors that define each: these are copied
# into buffers of the model, so the base moves, casts and saves with it.
_BASE_TENSORS = {"normal": ("loc", "scale"), "uniform": ("low", "high"),
                 "mvn": ("loc", "scale_tril"), "lowrank": ("loc", "cov_factor", "cov_diag")}


def _base_kind(base: Distribution) -> str:
    inner = base.base_dist if isinstance(base, Independent) else base
    if isinstance(inner, Normal):
        kind = "normal"
    elif isinstance(inner, Uniform):
        kind = "uniform"
    elif isinstance(inner, LowRankMultivariateNormal) and inner is base:
        kind = "lowrank"
    elif isinstance(inner, MultivariateNormal) and inner is base:
        kind = "mvn"
    else:
        raise CourseValueError(
            "NormalizingFlow: expected the base to be a dimension, a shape, or one of the torch "
            "distributions Normal, Uniform (bare or in Independent), MultivariateNormal, "
            f"LowRankMultivariateNormal; got {base!r}. Push another distribution through a "
            "flow of its own")
    if isinstance(base, Independent) and base.batch_shape != torch.Size():
        raise CourseValueError(
            f"NormalizingFlow: expected a base over one sample (batch_shape ()), got "
            f"batch_shape {tuple(base.batch_shape)} and event_shape {tuple(base.event_shape)}; "
            "reinterpret every dimension, e.g. Independent(Normal(loc, scale), loc.dim())")
    if kind in ("mvn", "lowrank") and base.batch_shape != torch.Size():
        raise CourseValueError(f"NormalizingFlow: expected a base over one sample (batch_shape "
                               f"()), got batch_shape {tuple(base.batch_shape)}")
    return kind


def _flow_list(flows) -> list[Flow]:
    if isinstance(flows, Flow):
        return [flows]
    if isinstance(flows, nn.ModuleList):
        flows = list(flows)
    if isinstance(flows, (nn.Module, Tensor)) or not isinstance(flows, (Sequence, nn.ModuleList)):
        raise FlowInputError(f"NormalizingFlow: expected flows to be a Flow or a list of Flows, "
                             f"got {type(flows).__name__}")
    flows = list(flows)
    if not flows:
        raise FlowInputError("NormalizingFlow: expected at least one flow, got an empty list")
    for i, f in enumerate(flows):
        if not isinstance(f, Flow):
            raise FlowInputError(f"NormalizingFlow: expected every entry of flows to be a course "
                                 f"Flow (x = f(z) with a log-determinant), got "
                                 f"{type(f).__name__} at position {i}; wrap a torch transform "
                                 "with course_lib.transforms.from_transform")
    return flows


class NormalizingFlow(nn.Module, Distribution):
    """``x = f_K(... f_1(z))`` with ``z ~ base``: a module and a torch ``Distribution``.

    The density of data follows from the change of variables,

    ``log p_X(x) = log p_Z(f^{-1}(x)) + log|det J_{f^{-1}}(x)|``.

    As a distribution it has ``batch_shape = ()`` and ``event_shape`` the shape of one sample
    (the base's event shape: every course flow keeps the shape of a sample). ``sample`` and
    ``rsample`` follow torch's semantics (``sample()`` is one sample, ``sample((2, 3))`` has
    shape ``(2, 3, *event_shape)``; an int ``n`` means ``(n,)``), and ``log_prob`` accepts any
    leading dimensions. ``support`` is the codomain of the last flow, as for torch's
    ``TransformedDistribution`` (the real line unless the last flow is ``Exp``, ``Sigmoid``
    or ``LogitTransform``). ``arg_constraints`` is empty: the model's parameters are network
    weights, with no constraint torch could check; ``validate_args`` is off, and
    :func:`course_lib.set_validation` governs the model's value checks instead.

    Args:
        base: a dimension ``d`` or a shape tuple for a standard normal, or one of the torch
            distributions ``Normal`` / ``Uniform`` (bare, in which case every dimension of its
            parameters belongs to one sample, or in ``Independent`` with ``batch_shape ()``),
            ``MultivariateNormal`` or ``LowRankMultivariateNormal``. The tensors defining the
            base are copied into buffers (``base_loc``, ``base_scale``, ...), so ``.to()``,
            ``.double()``, ``state_dict()`` and ``load_state_dict()`` carry the base with the
            model; they are not trained (to learn a base, put an ``Affine`` flow first). Its
            event shape must match the first flow's.
        flows: a flow or a list of flows, applied in list order from latent to data.

    Example:
        >>> import torch
        >>> from course_lib.flows import Affine
        >>> model = NormalizingFlow(2, [Affine(2, scale=2.0)])
        >>> model.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
        >>> model.sample((4, 5)).shape
        torch.Size([4, 5, 2])
    """

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, base: Distribution | int | Sequence[int], flows: Sequence[Flow] | Flow):
        nn.Module.__init__(self)
        self.flow = Compose(*_flow_list(flows))
        if isinstance(base, Distribution):
            self._base_kind = _base_kind(base)
            inner = base.base_dist if isinstance(base, Independent) else base
            for name in _BASE_TENSORS[self._base_kind]:
                self.register_buffer(f"base_{name}", getattr(inner, name).detach().clone())
        else:
            if isinstance(base, numbers.Integral):
                shape = (positive_int(base, "the base dimension", "NormalizingFlow"),)
            elif isinstance(base, Sequence) and not isinstance(base, str) and base:
                shape = tuple(positive_int(s, "each size of the base shape", "NormalizingFlow")
                              for s in base)
            else:
                raise CourseValueError(f"NormalizingFlow: expected the base to be a dimension, a "
                                       f"shape tuple or a torch Distribution, got {base!r}")
            self._base_kind = "normal"
            self.register_buffer("base_loc", torch.zeros(shape))
            self.register_buffer("base_scale", torch.ones(shape))
        event_shape = self.base.event_shape
        first = self.flow.flows[0].event_shape
        if not self.flow.flows[0].accepts_event_shape(tuple(event_shape)):
            raise FlowInputError(
                f"NormalizingFlow: the base's event shape {tuple(event_shape)} does not fit the "
                f"first flow, which takes samples of shape "
                f"{tuple('*' if s is None else s for s in first)}")
        Distribution.__init__(self, batch_shape=torch.Size(), event_shape=event_shape,
                              validate_args=False)

    # -- the base ---------------------------------------------------------------------------
    @property
    def base(self) -> Distribution:
        """The base distribution, rebuilt from the model's buffers (so it has their dtype and
        device). Built without torch's argument validation: no data-dependent checks."""
        kind, opts = self._base_kind, {"validate_args": False}
        if kind == "normal":
            d = Normal(self.base_loc, self.base_scale, **opts)
        elif kind == "uniform":
            d = Uniform(self.base_low, self.base_high, **opts)
        elif kind == "mvn":
            return MultivariateNormal(self.base_loc, scale_tril=self.base_scale_tril, **opts)
        else:
            return LowRankMultivariateNormal(self.base_loc, self.base_cov_factor,
                                             self.base_cov_diag, **opts)
        return Independent(d, len(d.batch_shape), **opts)

    @property
    def flows(self) -> nn.ModuleList:
        return self.flow.flows

    @property
    def support(self) -> constraints.Constraint:
        """The codomain of the last flow (see the class docstring)."""
        return flow_codomain(self.flow)

    # -- helpers ----------------------------------------------------------------------------
    def _sample_shape(self, sample_shape, where: str) -> torch.Size:
        if isinstance(sample_shape, numbers.Integral) and not isinstance(sample_shape, bool):
            return torch.Size((nonnegative_int(sample_shape, "the number of samples", where),))
        if isinstance(sample_shape, (Sequence, torch.Size)) and not isinstance(sample_shape, str):
            return torch.Size(nonnegative_int(s, "each size of sample_shape", where)
                              for s in sample_shape)
        raise FlowInputError(f"{where}: expected sample_shape to be an int n or a tuple of "
                             f"sizes (torch.Size), got {sample_shape!r}")

    def _check_data(self, x: Tensor, where: str) -> None:
        """Structural checks of data ``(*lead, *event_shape)`` (always on)."""
        event = tuple(self.event_shape)
        if not isinstance(x, Tensor):
            raise FlowInputError(f"{where}: expected x to be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise FlowInputError(f"{where}: expected x with a floating dtype, got {x.dtype}")
        if x.dim() < len(event) or tuple(x.shape[x.dim() - len(event):]) != event:
            raise FlowInputError(f"{where}: expected x of shape (..., {', '.join(map(str, event))}) "
                                 f"(any leading dimensions, then one sample), got {tuple(x.shape)}")
        device = dtype_device(self)[1]
        if x.device != device:
            raise FlowInputError(f"{where}: expected x on the model's device {device}, got "
                                 f"{x.device}; move one of them with .to(...)")

    def _check_values(self, t: Tensor, what: str, where: str) -> None:
        """A value check (only while validation is on): ``t`` is finite."""
        if is_validating() and t.numel() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise FlowInputError(
                f"{where}: {what} has {bad} non-finite value(s) although the input was finite: "
                "the flows overflowed, most likely because their parameters are too large (a "
                "diverged training step); use smaller learning rates or reload a saved state")

    def _push(self, z: Tensor, where: str) -> tuple[Tensor, Tensor]:
        """``x = f(z)`` and ``log|det J_f(z)|`` for ``z`` of shape ``(*lead, *event_shape)``."""
        lead = z.shape[:z.dim() - len(self.event_shape)]
        if z.numel() == 0:
            return z.clone(), z.new_zeros(lead)
        with self._blaming_parameters(where):
            x, logdet = apply_batched(self.flow.forward, z, len(self.event_shape))
            self._check_values(x, "the sample x = f(z)", where)
        if x.shape != z.shape:
            raise FlowInputError(f"{where}: expected the flows to keep the shape of a sample, "
                                 f"{tuple(self.event_shape)}; they returned "
                                 f"{tuple(x.shape[len(lead):])}")
        return x, logdet

    @contextlib.contextmanager
    def _blaming_parameters(self, where: str):
        """When a value check fails inside the flows, name a non-finite parameter if there is
        one (the scan runs only then, so it costs nothing on finite runs)."""
        try:
            yield
        except CourseValueError:
            check_finite_parameters(self, where)
            raise

    # -- the distribution -------------------------------------------------------------------
    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p_X(x)`` for ``x`` of shape ``(*lead, *event_shape)``; returns shape
        ``lead`` (maps data back to the base: the inverse direction)."""
        self._check_data(x, "NormalizingFlow.log_prob")
        k = len(self.event_shape)
        lead = x.shape[:x.dim() - k]
        if x.numel() == 0:
            return x.new_zeros(lead)
        with self._blaming_parameters("NormalizingFlow.log_prob"):
            z, logdet = apply_batched(self.flow.inverse, x, k)
            self._check_values(z, "the latent z = f^-1(x)", "NormalizingFlow.log_prob")
        return self.base.log_prob(z) + logdet

    def forward(self, x: Tensor) -> Tensor:
        """``model(x)`` is ``model.log_prob(x)``."""
        return self.log_prob(x)

    def rsample(self, sample_shape=torch.Size()) -> Tensor:
        """Reparameterised samples of shape ``(*sample_shape, *event_shape)``: ``z ~ base``,
        then ``x = f(z)``; differentiable with respect to the parameters."""
        shape = self._sample_shape(sample_shape, "NormalizingFlow.rsample")
        return self._push(self.base.rsample(shape), "NormalizingFlow.rsample")[0]

    def sample(self, sample_shape=torch.Size()) -> Tensor:
        """Samples of shape ``(*sample_shape, *event_shape)`` without gradients (an int ``n``
        means ``(n,)``): all of them in one pass, ``z ~ base``, ``x = f(z)``."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def sample_and_log_prob(self, sample_shape=torch.Size()) -> tuple[Tensor, Tensor]:
        """Samples and their log-density, differentiable with respect to the parameters.

        ``log p_X(x) = log p_Z(z) - log|det J_f(z)|`` at ``x = f(z)``: no inverse needed.
        """
        shape = self._sample_shape(sample_shape, "NormalizingFlow.sample_and_log_prob")
        z = self.base.rsample(shape)
        x, logdet = self._push(z, "NormalizingFlow.sample_and_log_prob")
        if z.numel() == 0:  # torch's log_prob cannot sum over an empty batch
            return x, logdet
        return x, self.base.log_prob(z) - logdet

    def forward_kl(self, x: Tensor) -> Tensor:
        """Mean negative log-likelihood of data, the forward KL up to the data's entropy.

        A flow with a ``regulariser()`` method (a CNF with ``kinetic_energy > 0``) adds the
        penalty it reports for the pass that ``log_prob`` just made.
        """
        log_p = self.log_prob(x)
        if log_p.numel() == 0:
            raise FlowInputError("NormalizingFlow.forward_kl: expected at least one sample, got "
                                 f"x of shape {tuple(x.shape)}")
        loss = -log_p.mean()
        for flow in self.flow.modules():
            penalty = flow.regulariser() if callable(getattr(flow, "regulariser", None)) else None
            if penalty is not None:
                loss = loss + penalty
        return loss

    def reverse_kl(self, log_target: Callable[[Tensor], Tensor], n: int) -> Tensor:
        """Monte Carlo ``KL(q || p~) = E_q[log q(x) - log p~(x)]`` for an unnormalised target,
        from ``n`` samples ``x`` of shape ``(n, *event_shape)``.

        Equals ``KL(q || p) - log Z``: minimising it needs values of ``log p~`` only,
        never samples of the target.
        """
        n = positive_int(n, "the number of samples n", "NormalizingFlow.reverse_kl")
        x, log_q = self.sample_and_log_prob((n,))
        log_p = log_target(x)
        if not isinstance(log_p, Tensor) or log_p.shape != log_q.shape:
            shape = tuple(log_p.shape) if isinstance(log_p, Tensor) else type(log_p).__name__
            raise FlowInputError(f"log_target must return a tensor of shape {tuple(log_q.shape)} "
                                 f"(one value per sample), got {shape}")
        return (log_q - log_p).mean()

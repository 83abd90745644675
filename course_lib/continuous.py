"""Continuous normalizing flows: a vector field moves the base density to the data.

A point moves along ``dz/dt = f(t, z)`` from the base (``t = 0``) to the data (``t = 1``),
and its log-density changes by the divergence of the field (change of variables 2.0):

``d/dt log p(z_t) = -div f(t, z_t) = -tr(df/dz)``.

:class:`CNF` is a course :class:`~course_lib.flows.Flow`: ``forward(z)`` solves the ODE from
``t = 0`` to ``t = 1`` and returns ``(x, log|det dx/dz|)`` with
``log|det dx/dz| = + int_0^1 tr(df/dz) dt``; ``inverse(x)`` solves from 1 back to 0 and returns
``(z, - int_0^1 tr(df/dz) dt)``. The point and the integral are solved together as one
augmented state ``y = [z, l]`` by ``torchdiffeq.odeint``. The trace is exact (one backward
pass per dimension) or Hutchinson's estimate ``eps^T (df/dz) eps`` with ``E[eps eps^T] = I``
(one pass per probe, the probes drawn once per solve), as in FFJORD.

Like every flow, a CNF gets its density from a model, ``NormalizingFlow(base, [cnf])``
(``course_lib.models.cnf`` builds one on a standard normal), which supplies ``log_prob``,
``sample``, ``sample_and_log_prob``, ``forward_kl`` and ``reverse_kl``.

Training: maximum likelihood (``model.forward_kl``; with ``kinetic_energy > 0`` the CNF adds
``kinetic_energy * mean(int_0^1 |f|^2 dt)`` through its :meth:`CNF.regulariser`, which keeps
paths straight and the solver fast), or flow matching (:func:`flow_matching_loss`), which
regresses the field on straight paths without any ODE solve. Both plug into
``course_lib.training.fit``.

Example:
    >>> from course_lib.model import NormalizingFlow
    >>> model = NormalizingFlow(2, [CNF(VectorField(2))])
    >>> x, log_p = model.sample_and_log_prob(5)
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from .flows.base import Flow, check_input
from .jacobian import NOISES, divergence_exact, divergence_hutchinson, probes
from .validation import CourseValueError, finite_float, positive_int

__all__ = ["CNF", "VectorField", "SolverError", "flow_matching_loss", "cnf_layer",
           "density_paths"]

SOLVER_HINT = ("loosen the tolerances (e.g. rtol=atol=1e-3), or use a fixed-step method, "
               "e.g. method='rk4', options={'step_size': 0.05}")


class SolverError(RuntimeError):
    """The ODE solver gave up (step size underflow, too many steps, non-finite state)."""


class VectorField(nn.Module):
    """A time-conditioned MLP ``f(t, z) -> dz/dt``: ``t`` is appended to the input of every layer.

    Smooth activations (SiLU) keep the ODE easy for an adaptive solver. ``t`` is a
    number, a 0-dim tensor (inside an ODE solve) or one time per sample ``(batch,)``
    (flow matching).

    Args:
        dim: dimension of ``z``.
        hidden: width of the hidden layers.
        layers: number of hidden layers.
    """

    def __init__(self, dim: int, hidden: int = 64, layers: int = 3):
        super().__init__()
        self.dim = positive_int(dim, "dim", "VectorField")
        hidden = positive_int(hidden, "hidden", "VectorField")
        layers = positive_int(layers, "layers", "VectorField")
        sizes = [dim] + [hidden] * layers
        self.linears = nn.ModuleList(nn.Linear(a + 1, b) for a, b in zip(sizes, sizes[1:]))
        self.out = nn.Linear(hidden + 1, dim)
        self.act = nn.SiLU()

    def forward(self, t: Tensor | float, z: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=z.dtype, device=z.device).reshape(-1, 1).expand(len(z), 1)
        h = z
        for linear in self.linears:
            h = self.act(linear(torch.cat([h, t], dim=1)))
        return self.out(torch.cat([h, t], dim=1))


class CNF(Flow):
    """A continuous normalizing flow ``dz/dt = f(t, z)``: the flow map from ``t = 0`` (latent,
    the base side) to ``t = 1`` (data), a :class:`~course_lib.flows.Flow` of event shape
    ``(dim,)``.

    ``forward(z) -> (x, log|det dx/dz|)`` with ``log|det dx/dz| = int_0^1 tr(df/dz)(t, z_t) dt``
    (the flow map of an ODE never flips orientation, so the determinant is positive);
    ``inverse(x) -> (z, -int_0^1 tr(df/dz) dt)``, the same ODE solved from 1 back to 0.

    Args:
        vector_field: any callable ``f(t, z) -> dz/dt`` with ``z`` of shape ``(batch, dim)``
            (an ``nn.Module`` to be trained; the adjoint method trains its parameters).
        trace: ``"exact"`` (``dim`` backward passes per evaluation) or ``"hutchinson"``
            (``n_probes`` passes, the probes drawn once per solve).
        noise: Hutchinson probes, ``"gaussian"`` or ``"rademacher"``.
        n_probes: number of Hutchinson probes.
        method, rtol, atol, options: passed to ``torchdiffeq.odeint``.
        adjoint: backpropagate with the adjoint method (memory independent of the steps).
        kinetic_energy: weight ``lambda`` of the penalty ``lambda * mean(int_0^1 |f|^2 dt)``.
            When it is positive every solve also integrates ``|f|^2`` and stores it per sample
            in :attr:`last_kinetic_energy`; :meth:`regulariser` turns the last one into the
            penalty, which ``NormalizingFlow.forward_kl`` adds to the negative log-likelihood.
            (The extra state also enters the adaptive solver's error control.)
        dim: the dimension of ``z``; may be left out when ``vector_field`` has a ``dim``
            attribute (as :class:`VectorField` does).

    Attributes:
        last_kinetic_energy: ``int_0^1 |f(t, z_t)|^2 dt`` per sample of the last ``forward`` or
            ``inverse`` call (with its graph), or ``None`` before the first one or when
            ``kinetic_energy == 0``.
    """

    def __init__(self, vector_field: Callable[[Tensor, Tensor], Tensor], trace: str = "exact",
                 noise: str = "gaussian", n_probes: int = 1, method: str = "dopri5",
                 rtol: float = 1e-5, atol: float = 1e-5, adjoint: bool = False,
                 options: dict | None = None, kinetic_energy: float = 0.0,
                 dim: int | None = None):
        where = "CNF"
        if not callable(vector_field):
            raise CourseValueError(f"{where}: expected vector_field to be callable as f(t, z), "
                                   f"got {type(vector_field).__name__}")
        field_dim = getattr(vector_field, "dim", None)
        if dim is None:
            if field_dim is None:
                raise CourseValueError(f"{where}: cannot tell the dimension of this vector field "
                                       "(it has no .dim attribute); pass dim=d")
            dim = field_dim
        dim = positive_int(dim, "dim", where)
        if field_dim is not None and field_dim != dim:
            raise CourseValueError(f"{where}: expected dim to match the vector field's dimension "
                                   f"{field_dim}, got dim={dim}")
        if trace not in ("exact", "hutchinson"):
            raise CourseValueError(f"{where}: trace must be 'exact' or 'hutchinson', got {trace!r}")
        if noise not in NOISES:
            raise CourseValueError(f"{where}: noise must be 'gaussian' or 'rademacher', "
                                   f"got {noise!r}")
        if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
            raise CourseValueError(f"{where}: n_probes must be a positive integer, "
                                   f"got {n_probes!r}")
        kinetic_energy = finite_float(kinetic_energy, "kinetic_energy", where)
        if kinetic_energy < 0:
            raise CourseValueError(f"{where}: kinetic_energy must be >= 0, got {kinetic_energy!r}")
        super().__init__((dim,))
        self.dim = dim
        self.vector_field = vector_field
        self.trace, self.noise, self.n_probes = trace, noise, n_probes
        self.method, self.rtol, self.atol, self.options = method, rtol, atol, options
        self.adjoint, self.kinetic_energy = adjoint, kinetic_energy
        self.last_kinetic_energy: Tensor | None = None

    def __getstate__(self) -> dict:
        # copies and pickles leave out the last solve's penalty: it may hold an autograd graph,
        # which neither deepcopy nor pickle can take
        state = super().__getstate__()
        state["last_kinetic_energy"] = None
        return state

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, trace={self.trace!r}, method={self.method!r}, "
                f"rtol={self.rtol}, atol={self.atol}, adjoint={self.adjoint}, "
                f"kinetic_energy={self.kinetic_energy}")

    # -- the ODE, as a practitioner writes it ------------------------------------------------
    def field(self, t: Tensor, z: Tensor) -> Tensor:
        """``f(t, z)``, checked to have the shape of ``z`` (a structural check, always on)."""
        dz = self.vector_field(t, z)
        if not isinstance(dz, Tensor) or dz.shape != z.shape:
            got = tuple(dz.shape) if isinstance(dz, Tensor) else type(dz).__name__
            raise CourseValueError(f"CNF: the vector field must return dz/dt of the same shape "
                                   f"as z {tuple(z.shape)}, got {got}")
        return dz

    def _dynamics(self, t: Tensor, y: Tensor, eps: Tensor | None) -> Tensor:
        """``d/dt [z, l, E] = [f, -div f, |f|^2]`` (``E`` only when regularising)."""
        build_graph = torch.is_grad_enabled()  # only when training through the solve
        z = y[:, :self.dim]
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            dz = self.field(t, z)
            # dz already holds f(z): the divergence differentiates it instead of calling f again
            if not dz.requires_grad:  # a field that ignores z, e.g. a translation
                div = z.new_zeros(len(z))
            elif eps is None:
                div = divergence_exact(lambda _: dz, z, create_graph=build_graph)
            else:
                div = divergence_hutchinson(lambda _: dz, z, eps=eps, create_graph=build_graph)
        columns = [dz, -div[:, None]]
        if y.shape[1] > self.dim + 1:
            columns.append(dz.pow(2).sum(dim=1, keepdim=True))
        return torch.cat(columns, dim=1)

    def _integrate(self, z: Tensor, times: Sequence[float]) -> Tensor:
        """Solve from ``times[0]`` with ``y = [z, 0(, 0)]``; returns ``y`` at every time."""
        eps = None
        if self.trace == "hutchinson":  # drawn once, fixed for the whole solve
            eps = probes(z.shape, self.noise, self.n_probes, z.dtype, device=z.device)
        extra = 2 if self.kinetic_energy > 0 else 1
        y0 = torch.cat([z, z.new_zeros(len(z), extra)], dim=1)
        return self._solve(lambda t, y: self._dynamics(t, y, eps), y0, times)

    def _solve(self, func: Callable, y0: Tensor, times: Sequence[float]) -> Tensor:
        t = torch.as_tensor(times, dtype=y0.dtype, device=y0.device)
        kwargs = dict(rtol=self.rtol, atol=self.atol, method=self.method, options=self.options)
        try:
            if self.adjoint:
                params = (tuple(self.vector_field.parameters())
                          if isinstance(self.vector_field, nn.Module) else ())
                return odeint_adjoint(func, y0, t, adjoint_params=params, **kwargs)
            return odeint(func, y0, t, **kwargs)
        except AssertionError as err:  # torchdiffeq reports a failed solve with assert
            raise SolverError(f"CNF: the ODE solver ({self.method}, rtol={self.rtol}, "
                              f"atol={self.atol}) failed: {err}; {SOLVER_HINT}") from err

    # -- the two directions --------------------------------------------------------------------
    def _map(self, u: Tensor, start: float, end: float) -> tuple[Tensor, Tensor]:
        if u.shape[0] == 0:  # nothing to solve for (and an empty state upsets the solver)
            self.last_kinetic_energy = None if self.kinetic_energy == 0 else u.new_zeros(0)
            return u.clone(), u.new_zeros(0)
        y = self._integrate(u, [start, end])[-1]
        if self.kinetic_energy > 0:  # integrated from `start` to `end`: sign by direction
            self.last_kinetic_energy = (end - start) * y[:, self.dim + 1]
        else:
            self.last_kinetic_energy = None
        # y[:, dim] = int_start^end -div f dt: forward -int_0^1 div, inverse +int_0^1 div; the
        # log-determinant of the map is its negative in both directions
        return y[:, :self.dim], -y[:, self.dim]

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base to data: ``x = z_1`` and ``log|det dx/dz| = int_0^1 div f dt``."""
        return self._map(z, 0.0, 1.0)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data to base: ``z = z_0`` and ``log|det dz/dx| = -int_0^1 div f dt``."""
        return self._map(x, 1.0, 0.0)

    def regulariser(self) -> Tensor | None:
        """The training penalty of the last solve, ``kinetic_energy * mean(int |f|^2 dt)``, or
        ``None`` when ``kinetic_energy == 0`` (or nothing was solved yet).

        ``NormalizingFlow.forward_kl`` adds the ``regulariser()`` of every flow that has one to
        the mean negative log-likelihood, right after the solve of its ``log_prob``.
        """
        if self.kinetic_energy == 0 or self.last_kinetic_energy is None:
            return None
        if self.last_kinetic_energy.numel() == 0:
            return None
        return self.kinetic_energy * self.last_kinetic_energy.mean()

    def trajectory(self, z0: Tensor, times: Sequence[float]) -> tuple[Tensor, Tensor]:
        """Paths from base points ``z0`` (at ``t = 0``) forward through ``times`` (from 0 up to 1).

        Returns ``z_t`` of shape ``(len(times), batch, dim)`` and
        ``log|det dz_t/dz_0| = int_0^t div f ds`` of shape ``(len(times), batch)``, without
        gradients, for animations. The log-density along the paths is
        ``log p_t(z_t) = log p_0(z_0) - log|det dz_t/dz_0|``: :func:`density_paths` computes it
        for a model.
        """
        self._check(z0, "z0")
        times = [float(t) for t in times]
        if len(times) < 2 or times[0] != 0.0 or any(b <= a for a, b in zip(times, times[1:])):
            raise CourseValueError(f"CNF.trajectory: times must start at 0 (the base) and "
                                   f"increase, got {times}")
        with torch.no_grad():
            y = self._integrate(z0, times)
            return y[..., :self.dim], -y[..., self.dim]


# -- a CNF inside a model ----------------------------------------------------------------------

def cnf_layer(model, where: str = "cnf_layer") -> CNF:
    """The :class:`CNF` of ``model``: ``model`` itself if it is a CNF, else the only flow of a
    ``NormalizingFlow`` (as ``course_lib.models.cnf`` builds)."""
    from .model import NormalizingFlow
    if isinstance(model, CNF):
        return model
    if isinstance(model, NormalizingFlow) and len(model.flows) == 1 \
            and isinstance(model.flows[0], CNF):
        return model.flows[0]
    if isinstance(model, NormalizingFlow):
        kinds = ", ".join(type(f).__name__ for f in model.flows)
        raise CourseValueError(f"{where}: expected a NormalizingFlow whose only flow is a CNF "
                               f"(as models.cnf builds), got one with flows [{kinds}]")
    raise CourseValueError(f"{where}: expected a CNF or a NormalizingFlow whose only flow is a "
                           f"CNF (as models.cnf builds), got {type(model).__name__}")


def density_paths(model, z0: Tensor, times: Sequence[float]) -> tuple[Tensor, Tensor]:
    """Paths of a CNF model from base points ``z0`` (``t = 0``) through ``times`` (from 0 up
    to 1), with the log-density carried along them.

    ``model`` is a ``NormalizingFlow`` whose only flow is a CNF. Returns ``z_t`` of shape
    ``(len(times), batch, dim)`` and ``log p_t(z_t) = log p_0(z_0) - int_0^t div f ds`` of
    shape ``(len(times), batch)``, without gradients (for plots and animations).
    """
    from .model import NormalizingFlow
    if not isinstance(model, NormalizingFlow):
        raise CourseValueError(f"density_paths: expected a NormalizingFlow whose only flow is a "
                               f"CNF (it has the base density), got {type(model).__name__}")
    cnf = cnf_layer(model, "density_paths")
    paths, logdet = cnf.trajectory(z0, times)
    with torch.no_grad():
        return paths, model.base.log_prob(z0) - logdet


def flow_matching_loss(model, x1: Tensor, sigma_min: float = 0.0) -> Tensor:
    """Conditional flow matching on straight paths, no ODE solve.

    ``x_t = (1 - (1 - sigma_min) t) x_0 + t x_1`` with ``x_0 ~ base``, ``t ~ U(0, 1)``,
    moves at ``u = x_1 - (1 - sigma_min) x_0``; the loss is ``E |f(t, x_t) - u|^2``. Its
    minimiser's flow carries the base to the data. The field is called with one time per
    sample, ``t`` of shape ``(batch,)``.

    ``model`` is a ``NormalizingFlow`` whose only flow is a CNF (``x_0`` is drawn from its
    base) or a bare :class:`CNF` (``x_0`` is standard normal). Use as
    ``fit(model, data, loss_fn=flow_matching_loss)``.
    """
    where = "flow_matching_loss"
    cnf = cnf_layer(model, where)
    check_input(x1, cnf.event_shape, "x1", cnf._param_dtype(), where)
    sigma_min = finite_float(sigma_min, "sigma_min", where)
    if not 0 <= sigma_min < 1:
        raise CourseValueError(f"{where}: expected sigma_min in [0, 1), got {sigma_min!r}")
    if cnf is model:
        x0 = torch.randn_like(x1)
    else:
        x0 = model.base.sample((len(x1),)).to(x1)
    t = torch.rand(len(x1), 1, dtype=x1.dtype, device=x1.device)
    xt = (1 - (1 - sigma_min) * t) * x0 + t * x1
    target = x1 - (1 - sigma_min) * x0
    return (cnf.field(t[:, 0], xt) - target).pow(2).sum(dim=1).mean()

"""Continuous normalizing flows: a vector field moves the base density to the data.

A point moves along ``dz/dt = f(t, z)`` from the base (``t = 0``) to the data (``t = 1``),
and its log-density changes by the divergence of the field (change of variables 2.0):

``d/dt log p(z_t) = -div f(t, z_t) = -tr(df/dz)``.

Both are integrated together as one augmented state ``y = [z, delta log p]`` by
``torchdiffeq.odeint``. The trace is exact (one backward pass per dimension) or
Hutchinson's estimate ``eps^T (df/dz) eps`` with ``E[eps eps^T] = I`` (one pass per probe,
the probes drawn once per solve), as in FFJORD.

Training: maximum likelihood (``forward_kl``, optionally plus ``kinetic_energy`` times
``int_0^1 |f|^2 dt``, which keeps paths straight and the solver fast), or flow matching
(:func:`flow_matching_loss`), which regresses the field on straight paths without any ODE
solve. Both plug into ``course_lib.training.fit``.

Example:
    >>> cnf = CNF(VectorField(2))
    >>> x, log_p = cnf.sample_and_log_prob(5)
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal
from torchdiffeq import odeint, odeint_adjoint

from .flows.base import FlowInputError, check_input
from .jacobian import divergence_exact, divergence_hutchinson, probes

__all__ = ["CNF", "VectorField", "flow_matching_loss", "SolverError"]

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
        for name, value in (("dim", dim), ("hidden", hidden), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VectorField: {name} must be a positive integer, got {value!r}")
        self.dim = dim
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


class CNF(nn.Module):
    """A continuous normalizing flow ``dz/dt = f(t, z)``, base at ``t = 0``, data at ``t = 1``.

    Args:
        vector_field: any callable ``f(t, z) -> dz/dt`` with ``z`` of shape ``(batch, dim)``
            (an ``nn.Module`` to be trained; the adjoint method trains its parameters).
        base: a ``torch.distributions.Distribution`` over one sample, a dimension ``d`` for a
            standard normal, or ``None`` for a standard normal of ``vector_field.dim``.
        trace: ``"exact"`` (``d`` backward passes) or ``"hutchinson"`` (``n_probes`` passes).
        noise: Hutchinson probes, ``"gaussian"`` or ``"rademacher"``.
        method, rtol, atol, options: passed to ``torchdiffeq.odeint``.
        adjoint: backpropagate with the adjoint method (memory independent of the steps).
        kinetic_energy: weight of ``int_0^1 |f|^2 dt`` added to ``forward_kl``.
    """

    def __init__(self, vector_field: Callable[[Tensor, Tensor], Tensor],
                 base: Distribution | int | None = None, trace: str = "exact",
                 noise: str = "gaussian", n_probes: int = 1, method: str = "dopri5",
                 rtol: float = 1e-5, atol: float = 1e-5, adjoint: bool = False,
                 options: dict | None = None, kinetic_energy: float = 0.0):
        super().__init__()
        if not callable(vector_field):
            raise ValueError("vector_field must be callable as f(t, z), got "
                             f"{type(vector_field).__name__}")
        if trace not in ("exact", "hutchinson"):
            raise ValueError(f"trace must be 'exact' or 'hutchinson', got {trace!r}")
        if noise not in ("gaussian", "rademacher"):
            raise ValueError(f"noise must be 'gaussian' or 'rademacher', got {noise!r}")
        if not isinstance(n_probes, int) or n_probes < 1:
            raise ValueError(f"n_probes must be a positive integer, got {n_probes!r}")
        if kinetic_energy < 0:
            raise ValueError(f"kinetic_energy must be >= 0, got {kinetic_energy!r}")
        self.vector_field = vector_field
        self.trace, self.noise, self.n_probes = trace, noise, n_probes
        self.method, self.rtol, self.atol, self.options = method, rtol, atol, options
        self.adjoint, self.kinetic_energy = adjoint, kinetic_energy
        if base is None:
            base = getattr(vector_field, "dim", None)
            if base is None:
                raise ValueError("cannot tell the dimension of this vector field: pass base=dim "
                                 "or a torch.distributions.Distribution")
        if isinstance(base, Distribution):
            self._base = base
            self.dim = base.event_shape[0]
        else:
            self._base, self.dim = None, int(base)
            self.register_buffer("base_loc", torch.zeros(self.dim))
            self.register_buffer("base_scale", torch.ones(self.dim))

    @property
    def base(self) -> Distribution:
        if self._base is not None:
            return self._base
        return Independent(Normal(self.base_loc, self.base_scale), 1)

    # -- the ODE, as a practitioner writes it ------------------------------------------------
    def field(self, t: Tensor, z: Tensor) -> Tensor:
        """``f(t, z)``, checked to have the shape of ``z``."""
        dz = self.vector_field(t, z)
        if not isinstance(dz, Tensor) or dz.shape != z.shape:
            got = tuple(dz.shape) if isinstance(dz, Tensor) else type(dz).__name__
            raise ValueError(f"the vector field must return dz/dt of the same shape as z "
                             f"{tuple(z.shape)}, got {got}")
        return dz

    def _dynamics(self, t: Tensor, y: Tensor, eps: Tensor | None) -> Tensor:
        """``d/dt [z, delta log p, E] = [f, -div f, |f|^2]`` (``E`` only when regularising)."""
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

    def _integrate(self, z: Tensor, times: Sequence[float], kinetic: bool = False) -> Tensor:
        """Solve from ``times[0]`` with ``y = [z, 0(, 0)]``; returns ``y`` at every time."""
        eps = None
        if self.trace == "hutchinson":  # drawn once, fixed for the whole solve
            eps = probes(z.shape, self.noise, self.n_probes, z.dtype).to(z.device)
        y0 = torch.cat([z, z.new_zeros(len(z), 2 if kinetic else 1)], dim=1)
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
            raise SolverError(f"the ODE solver ({self.method}, rtol={self.rtol}, "
                              f"atol={self.atol}) failed: {err}; {SOLVER_HINT}") from err

    # -- the two directions --------------------------------------------------------------------
    def data_to_base(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Integrate backward from data (``t = 1``) to the base (``t = 0``).

        Returns ``z_0`` and ``delta = log p_0(z_0) - log p_1(x) = int_0^1 div f dt``.
        """
        self._check(x, "x", "CNF.data_to_base")
        y = self._integrate(x, [1.0, 0.0])[-1]
        return y[:, :self.dim], y[:, self.dim]

    def base_to_data(self, z0: Tensor) -> tuple[Tensor, Tensor]:
        """Integrate forward from the base (``t = 0``) to data (``t = 1``).

        Returns ``x = z_1`` and ``delta = log p_1(x) - log p_0(z_0) = -int_0^1 div f dt``.
        """
        self._check(z0, "z0", "CNF.base_to_data")
        y = self._integrate(z0, [0.0, 1.0])[-1]
        return y[:, :self.dim], y[:, self.dim]

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p_1(x) = log p_0(z_0) - int_0^1 div f dt``, integrating data -> base."""
        z0, delta = self.data_to_base(x)
        return self.base.log_prob(z0) - delta

    def forward(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def sample_and_log_prob(self, n: int) -> tuple[Tensor, Tensor]:
        """``z_0 ~ base`` integrated base -> data: samples ``x`` and ``log p_1(x)``.

        Differentiable with respect to the parameters (for ``reverse_kl``).
        """
        z0 = self.base.rsample((self._n(n),))
        x, delta = self.base_to_data(z0)
        return x, self.base.log_prob(z0) + delta

    def sample(self, n: int) -> Tensor:
        """``n`` samples: base -> data, without the divergence (no log-density needed)."""
        with torch.no_grad():
            return self._solve(self.field, self.base.sample((self._n(n),)), [0.0, 1.0])[-1]

    def trajectory(self, z0: Tensor, times: Sequence[float]) -> tuple[Tensor, Tensor]:
        """Paths from base points ``z0`` (at ``t = 0``) forward through ``times`` (from 0 up to 1).

        Returns ``z_t`` of shape ``(len(times), batch, dim)`` and ``log p_t(z_t)`` of shape
        ``(len(times), batch)``, for animations.
        """
        self._check(z0, "z0", "CNF.trajectory")
        times = [float(t) for t in times]
        if len(times) < 2 or times[0] != 0.0 or any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError(f"times must start at 0 (the base) and increase, got {times}")
        with torch.no_grad():
            y = self._integrate(z0, times)
            return y[..., :self.dim], self.base.log_prob(z0) + y[..., self.dim]

    # -- training objectives ----------------------------------------------------------------------
    def forward_kl(self, x: Tensor) -> Tensor:
        """Mean negative log-likelihood of data (plus the kinetic-energy penalty, if weighted)."""
        if not self.kinetic_energy:
            return -self.log_prob(x).mean()
        self._check(x, "x", "CNF.forward_kl")
        y = self._integrate(x, [1.0, 0.0], kinetic=True)[-1]
        log_p = self.base.log_prob(y[:, :self.dim]) - y[:, self.dim]
        kinetic = y[:, self.dim + 1].abs()  # integrated from 1 to 0, hence the sign
        return -log_p.mean() + self.kinetic_energy * kinetic.mean()

    def reverse_kl(self, log_target: Callable[[Tensor], Tensor], n: int) -> Tensor:
        """Monte Carlo ``E_q[log q(x) - log p~(x)]`` for an unnormalised target ``p~``."""
        x, log_q = self.sample_and_log_prob(n)
        return (log_q - log_target(x)).mean()

    # -- checks ---------------------------------------------------------------------------------
    def _check(self, x: Tensor, name: str, where: str) -> None:
        dtype = next((t.dtype for t in [*self.parameters(), *self.buffers()]), None)
        check_input(x, (self.dim,), name, dtype, where)

    def _n(self, n: int) -> int:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise FlowInputError(f"expected a positive integer number of samples, got {n!r}")
        return n


def flow_matching_loss(cnf: CNF, x1: Tensor, sigma_min: float = 0.0) -> Tensor:
    """Conditional flow matching on straight paths, no ODE solve.

    ``x_t = (1 - (1 - sigma_min) t) x_0 + t x_1`` with ``x_0 ~ base``, ``t ~ U(0, 1)``,
    moves at ``u = x_1 - (1 - sigma_min) x_0``; the loss is ``E |f(t, x_t) - u|^2``. Its
    minimiser's flow carries the base to the data. The field is called with one time per
    sample, ``t`` of shape ``(batch,)``. Use as ``fit(cnf, data, loss_fn=flow_matching_loss)``.
    """
    cnf._check(x1, "x1", "flow_matching_loss")
    x0 = cnf.base.sample((len(x1),)).to(x1)
    t = torch.rand(len(x1), 1, dtype=x1.dtype, device=x1.device)
    xt = (1 - (1 - sigma_min) * t) * x0 + t * x1
    target = x1 - (1 - sigma_min) * x0
    return (cnf.field(t[:, 0], xt) - target).pow(2).sum(dim=1).mean()

"""How a flow joins the shared contract: a ``Case`` in ``CASES`` of a ``tests/cases_*.py`` file.

``make(dim)`` builds the flow in float64 (image flows ignore ``dim``); ``shape(dim)`` is
the shape of one sample; the contract perturbs every parameter away from its
initial value before checking, so an identity initialisation cannot hide a bug.
"""
from __future__ import annotations

import importlib
import pathlib
from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass
class Case:
    make: Callable[[int], torch.nn.Module]
    shape: Callable[[int], tuple] = lambda dim: (dim,)
    atol: float = 1e-9
    perturb: float = 0.3
    input_scale: float = 1.0
    dims: tuple = (2, 5)
    # called with (flow, batch) after construction and before perturbation,
    # e.g. to run a data-dependent initialisation
    warmup: Callable | None = None
    batch: int = 6
    # maps standard normal draws into the flow's domain (e.g. exp for a logarithm)
    to_domain: Callable | None = None
    # the maps come from an adaptive ODE solve (a CNF): accurate to the solver's tolerance, not
    # to rounding, and with autograd and data-dependent steps inside. Only the contract
    # (collect(solvers=True)) runs such cases; the closed-form tests (torch.func transforms,
    # extreme magnitudes in float32) leave them out
    solver: bool = False
    extra: dict = field(default_factory=dict)


def collect(solvers: bool = False) -> dict[str, Case]:
    """Every case of the ``cases_*.py`` files; those with ``solver=True`` only if ``solvers``."""
    cases: dict[str, Case] = {}
    for path in sorted(pathlib.Path(__file__).parent.glob("cases_*.py")):
        module = importlib.import_module(path.stem)
        for name, case in module.CASES.items():
            if name in cases:
                raise RuntimeError(f"flow case {name!r} defined twice")
            if case.solver and not solvers:
                continue
            cases[name] = case
    return cases


def build(case: Case, dim: int, seed: int = 0, batch: int | None = None,
          input_scale: float | None = None) -> tuple[torch.nn.Module, torch.Tensor]:
    """The case's flow in float64 and a seeded batch (``batch`` draws of ``input_scale`` times a
    standard normal, the case's own by default, mapped into the flow's domain): the flow is warmed
    up on the batch, then every parameter is moved off its start."""
    torch.manual_seed(seed)
    flow = case.make(dim).double()
    size = case.batch if batch is None else batch
    scale = case.input_scale if input_scale is None else input_scale
    z = scale * torch.randn(size, *case.shape(dim), dtype=torch.float64)
    if case.to_domain is not None:
        z = case.to_domain(z)
    if case.warmup is not None:
        case.warmup(flow, z)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(case.perturb * torch.randn_like(p))
    return flow, z


def randomise(flow, scale, seed=0):
    """Move every parameter of ``flow`` by ``scale`` times a seeded standard normal draw."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))
    return flow

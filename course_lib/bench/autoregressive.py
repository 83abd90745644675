"""The cost table of autoregressive and residual flows, measured.

MAF computes a density in one MADE pass and samples in ``d``; IAF the other way round.
One layer of each is timed on a batch of 512 (one thread) at growing ``d``: the slow side
should grow about linearly in ``d`` relative to the fast one. For the residual flow, the
exact log-determinant (``d`` backward passes) is timed against the power series
(``n_terms`` vector-Jacobian products, one probe), with the series' error.

Last, the quick-reference table of the course: one layer of every architecture (coupling,
Glow step, autoregressive, spline, residual, continuous) timed for a density evaluation
and for sampling at the same ``d``.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from . import table
from ..flows import IAF, MAF, ResidualFlow
from ..flows.residual import log_abs_det_exact, log_abs_det_series
from ..model import NormalizingFlow
from ..flows import (ActNorm, AdditiveCoupling, AffineCoupling, Compose, LULinear,
                     RQSAutoregressive, RQSCoupling)
from ..models import cnf

BATCH = 512


def _ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _moved(flow: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    # off the identity initialisation, so every pass does real work
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))
    return flow


def autoregressive_rows(dims, repeats: int) -> list[list]:
    rows = []
    for d in dims:
        for cls in (MAF, IAF):
            torch.manual_seed(0)
            model = NormalizingFlow(d, [_moved(cls(d))])
            x = model.sample(BATCH)
            with torch.no_grad():
                density = _ms(lambda: model.log_prob(x), repeats)
                sampling = _ms(lambda: model.sample(BATCH), repeats)
            rows.append([cls.__name__, d, density, sampling, sampling / density])
    return rows


def residual_rows(dims, repeats: int, n_terms: int = 10) -> list[list]:
    rows = []
    for d in dims:
        torch.manual_seed(0)
        flow = _moved(ResidualFlow(d), 1.0).eval()
        for layer in flow.layers:  # so every layer sits at its bound c, as after training
            layer.normalised_weight(n_iterations=100, store=True)
        g = flow.branch()
        z = torch.randn(BATCH, d)
        with torch.no_grad():
            exact_ms = _ms(lambda: log_abs_det_exact(g, z), repeats)
            series_ms = _ms(lambda: log_abs_det_series(g, z, n_terms), repeats)
            exact = log_abs_det_exact(g, z)
            error = (log_abs_det_series(g, z, n_terms) - exact).abs().mean().item()
            inverse_ms = _ms(lambda: flow.inverse(flow(z)[0]), repeats)
        rows.append([d, exact_ms, series_ms, error, exact.abs().mean().item(), inverse_ms])
    return rows


def _at_bound(flow: ResidualFlow) -> ResidualFlow:
    # weights moved far from initialisation and renormalised, so every layer sits at its
    # bound c, as after training
    _moved(flow, 1.0)
    for layer in flow.layers:
        layer.normalised_weight(n_iterations=100, store=True)
    return flow


def _one_layer(d: int) -> list[tuple[str, str, Callable[[], torch.nn.Module]]]:
    """(architecture, how its log-det is computed, builder of a one-layer model)."""
    def model(flow):
        return lambda: NormalizingFlow(d, [flow()])
    return [
        ("NICE (additive coupling)", "0", model(lambda: _moved(AdditiveCoupling(d)))),
        ("RealNVP (affine coupling)", "sum of s", model(lambda: _moved(AffineCoupling(d)))),
        ("Glow step (coupling, LU, actnorm)", "sums of s, log|U_ii|, log-scales",
         model(lambda: _moved(Compose(AffineCoupling(d), LULinear(d), ActNorm(d))))),
        ("MAF", "sum of s", model(lambda: _moved(MAF(d)))),
        ("IAF", "sum of s", model(lambda: _moved(IAF(d)))),
        ("NSF coupling", "sum of log g'", model(lambda: _moved(RQSCoupling(d)))),
        ("NSF autoregressive", "sum of log g'", model(lambda: _moved(RQSAutoregressive(d)))),
        ("residual flow, exact log-det", "d backward passes",
         model(lambda: _at_bound(ResidualFlow(d)))),
        ("residual flow, series log-det", "10 terms x 1 probe",
         model(lambda: _at_bound(ResidualFlow(d, logdet="series")))),
        ("CNF, exact trace", "d backward passes per ODE step", lambda: cnf(d)),
        ("FFJORD (CNF, Hutchinson)", "1 probe per ODE step", lambda: cnf(d, trace="hutchinson")),
    ]


def architecture_rows(dims=(4, 16), repeats: int = 3, batch: int = BATCH) -> list[list]:
    """One layer of every architecture of the course, timed on this machine: rows
    ``[architecture, log-det, d, density ms, sampling ms]`` for a batch of ``batch``.

    Discrete layers have their parameters moved off the identity first; the CNFs (a
    ``models.cnf`` vector field, integrated with dopri5) are timed at initialisation, where
    the solver takes few steps, so their times are a lower bound. Like every flow in a model,
    a CNF computes its log-determinant (the integrated trace) when sampling too.
    """
    torch.set_num_threads(1)
    rows = []
    for d in dims:
        for name, log_det, build in _one_layer(d):
            torch.manual_seed(0)
            model = build().eval()
            with torch.no_grad():
                x = model.sample(batch)
                density = _ms(lambda: model.log_prob(x), repeats)
                sampling = _ms(lambda: model.sample(batch), repeats)
            rows.append([name, log_det, d, density, sampling])
    return rows


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    repeats = 3 if quick else 20
    dims = (2, 8) if quick else (2, 8, 32, 64)
    ar = table(["flow", "d", "density ms", "sampling ms", "sampling / density"],
               autoregressive_rows(dims, repeats))
    res = table(["d", "exact log-det ms", "series ms (10 terms)", "series |error|",
                 "|log-det|", "forward+inverse ms"],
                residual_rows((2, 16) if not quick else (2,), repeats))
    cost = table(["architecture", "log-det", "d", "density ms", "sampling ms"],
                 architecture_rows((4,) if quick else (4, 16, 64), repeats))
    return (f"One layer, batch {BATCH}, one thread, median of {repeats} runs.\n{ar}\n\n"
            f"ResidualFlow (hidden 64, 2 hidden layers, c = 0.9), batch {BATCH}:\n{res}\n\n"
            f"One layer of each architecture, batch {BATCH}:\n{cost}")

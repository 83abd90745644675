"""Continuous flows on ``eight_gaussians``: flow matching against FFJORD in the same time budget,
and the variance of Hutchinson's trace estimate.

Every model trains for ``BUDGET`` seconds of CPU time on one thread (on an idle machine
that is the wall clock; on a shared one it keeps the comparison fair), with Adam and a
cosine learning rate driven by the fraction of the budget used. Every model is then
evaluated the same way: the exact-trace likelihood, dopri5 with ``rtol = atol = 1e-5``,
on ``TEST_SAMPLES`` held-out samples. The gap is ``test NLL - entropy``; ``KL`` is the
same quantity estimated sample by sample, ``mean(log p(x) - log q(x))``, whose standard
error is much smaller because the true density is known.
"""
from __future__ import annotations

import math
import time

import torch

from .. import datasets, models
from ..continuous import VectorField, cnf_layer, flow_matching_loss
from ..jacobian import (divergence_exact, divergence_hutchinson, hutchinson_variance_theory,
                        jacobian)
from ..training import fit
from . import TEST_SAMPLES, table

BUDGET, QUICK_BUDGET = 60.0, 3.0
DATASET = "eight_gaussians"
# maximum likelihood with one Rademacher probe per solve and a kinetic-energy penalty
FFJORD = dict(trace="hutchinson", noise="rademacher", kinetic_energy=0.01)


class _BudgetSpent(Exception):
    pass


def train_for(model: torch.nn.Module, data, seconds: float, lr: float, batch_size: int,
              loss_fn=None, seed: int = 0) -> int:
    """``fit`` until ``seconds`` of CPU time are spent; returns the number of steps taken."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start, steps = time.process_time(), 0

    def on_step(step: int, loss: float) -> None:
        nonlocal steps
        steps = step
        used = (time.process_time() - start) / seconds
        if used >= 1:
            raise _BudgetSpent
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * used))

    try:
        fit(model, data, steps=10 ** 9, batch_size=batch_size, optimizer=optimizer, seed=seed,
            loss_fn=loss_fn, progress=False, callback=on_step)
    except _BudgetSpent:
        model.eval()
    return steps


def exact_log_prob(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The evaluation every row shares: exact trace, dopri5, ``rtol = atol = 1e-5``.

    ``model`` is a ``NormalizingFlow`` around one CNF (``models.cnf``); its CNF keeps these
    solver settings afterwards.
    """
    cnf = cnf_layer(model, "exact_log_prob")
    cnf.trace, cnf.method, cnf.rtol, cnf.atol, cnf.options = "exact", "dopri5", 1e-5, 1e-5, None
    with torch.no_grad():
        return torch.cat([model.log_prob(chunk) for chunk in x.split(5000)])


def _density_row(label: str, build, loss_fn, lr: float, batch_size: int, seconds: float,
                 n_test: int) -> list:
    torch.manual_seed(0)
    data = datasets.get(DATASET)
    cnf = build()
    wall, cpu = time.perf_counter(), time.process_time()
    steps = train_for(cnf, data, seconds, lr, batch_size, loss_fn)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    test = data.sample(n_test, generator=torch.Generator().manual_seed(10_000))
    start = time.perf_counter()
    log_q = exact_log_prob(cnf, test)
    eval_s = time.perf_counter() - start
    nll = -log_q.mean().item()
    kl = data.log_prob(test.double()) - log_q.double()
    return [label, steps, 1000 * cpu / steps, wall, eval_s, nll, data.entropy, nll - data.entropy,
            f"{kl.mean().item():.4f} ± {kl.std().item() / math.sqrt(n_test):.4f}"]


def hutchinson_variance(n_samples: int, dim: int = 8, points: int = 64, seed: int = 0) -> list:
    """Variance of Hutchinson's estimate of ``div f`` on a fixed random field, per probe count,
    next to the theory for ``k`` probes with ``S = (J + J^T) / 2``: ``2 |S|_F^2 / k``
    (Gaussian) and ``2 (|S|_F^2 - sum_i S_ii^2) / k`` (Rademacher)."""
    torch.manual_seed(seed)
    field = VectorField(dim, 64).double()
    with torch.no_grad():  # larger weights than at initialisation: a Jacobian of order 1
        for p in field.parameters():
            p.mul_(2)
    z = torch.randn(points, dim, dtype=torch.float64)
    f = lambda x: field(0.5, x)  # noqa: E731
    exact = divergence_exact(f, z, create_graph=False)
    J = jacobian(f, z)
    theory = {noise: hutchinson_variance_theory(J, noise) for noise in ("gaussian", "rademacher")}
    rows = []
    for noise in ("gaussian", "rademacher"):
        for n_probes in (1, 2, 4, 8, 16):
            g = torch.Generator().manual_seed(seed)
            draws = torch.stack([divergence_hutchinson(f, z, n_probes, noise, generator=g,
                                                       create_graph=False)
                                 for _ in range(n_samples)])
            bias = (draws.mean(0) - exact).abs().mean().item()
            rows.append([noise, n_probes, bias, draws.var(0).mean().item(),
                         theory[noise].mean().item() / n_probes])
    return rows


def run(quick: bool = False) -> str:
    torch.set_num_threads(1)
    seconds = QUICK_BUDGET if quick else BUDGET
    n_test = 2000 if quick else TEST_SAMPLES
    rows = [
        _density_row("flow matching", lambda: models.cnf(2), flow_matching_loss, 1e-3, 512,
                     seconds, n_test),
        _density_row("FFJORD, rk4 h=0.2",
                     lambda: models.cnf(2, **FFJORD, method="rk4", options={"step_size": 0.2}),
                     None, 3e-3, 256, seconds, n_test),
        _density_row("FFJORD, dopri5 tol 1e-3",
                     lambda: models.cnf(2, **FFJORD, rtol=1e-3, atol=1e-3),
                     None, 3e-3, 256, seconds, n_test),
    ]
    density = table(["model", "steps", "ms/step (CPU)", "train wall s", "eval s", "test NLL",
                     "entropy", "gap (nats)", "KL ± s.e."], rows)
    variance = table(["noise", "probes", "|mean - exact|", "variance", "theory"],
                     hutchinson_variance(50 if quick else 1000))
    return (f"{DATASET}, {seconds:.0f} s of CPU time per model on one thread (models.cnf(2): "
            f"VectorField 64x3), evaluated on "
            f"{n_test} held-out samples (exact trace, dopri5, rtol = atol = 1e-5)\n{density}\n\n"
            f"Hutchinson's estimate of div f on a fixed 8-dimensional field (64 points):\n"
            f"{variance}")

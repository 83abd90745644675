"""Checks of worksheet 10: a CNF written on torchdiffeq by hand."""
from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal

from ..jacobian import divergence_exact
from .core import Fail, Handle, as_tensor, call, check, fresh_generator, require

WS = "10_continuous_flows"



def _field(g, d=2):
    W = torch.randn(d, d, generator=g, dtype=torch.float64)
    return lambda t, z: torch.tanh(z @ W.T) * (1 + t) - 0.2 * z


def _linear(g):
    A = 0.6 * torch.randn(2, 2, generator=g, dtype=torch.float64)
    return A, (lambda t, z: z @ A.T)


def _pushed_gaussian(A):
    M = torch.linalg.matrix_exp(A)
    return M, MultivariateNormal(torch.zeros(2, dtype=torch.float64), M @ M.T)


@check("ex10_1", WS, "the augmented dynamics")
def ex10_1(augmented_dynamics):
    g = fresh_generator()
    for d in (int(torch.randint(1, 3, (1,), generator=g)), int(torch.randint(3, 6, (1,), generator=g))):
        f = _field(g, d)
        func = call(augmented_dynamics, f, label=f"a {d}D field")
        require(isinstance(func, Handle), "augmented_dynamics(f) should return a function of (t, y)")
        y = torch.randn(6, d + 1, generator=g, dtype=torch.float64)
        t = torch.rand((), generator=g, dtype=torch.float64)
        out = as_tensor(call(func, t, y.clone(), label=f"y of shape (6, {d + 1})"), "func(t, y)", (6, d + 1))
        z = y[:, :d]
        dz = f(t, z)
        div = divergence_exact(lambda v: f(t, v), z).detach()
        require(torch.allclose(out[:, :d], dz, atol=1e-8), "the first columns should be dz/dt = f(t, z), with z "
                                                           f"the first d columns of y (here d = {d})")
        require(not torch.allclose(out[:, d], div, atol=1e-8), "the log-density column has the wrong sign: "
                                                               "d/dt log p = -div f")
        require(torch.allclose(out[:, d], -div, atol=1e-8), "the last column should be d/dt log p = -tr(df/dz)")
    return "correct: [f(t, z), -tr(df/dz)]"


@check("ex10_2", WS, "Hutchinson's estimator with given probes")
def ex10_2(hutchinson):
    g = fresh_generator()
    for d, k in ((int(torch.randint(2, 6, (1,), generator=g)), int(torch.randint(1, 3, (1,), generator=g))),
                 (int(torch.randint(2, 6, (1,), generator=g)), int(torch.randint(4, 7, (1,), generator=g)))):
        W = torch.randn(d, d, generator=g, dtype=torch.float64)
        f = lambda z: torch.tanh(z @ W.T)
        z = torch.randn(5, d, generator=g, dtype=torch.float64)
        eps = torch.randn(k, 5, d, generator=g, dtype=torch.float64)
        got = as_tensor(call(hutchinson, f, z.clone(), eps.clone(), label=f"{k} probe(s) in {d} dimensions"),
                        "hutchinson(f, z, eps)", (5,))
        J = torch.func.vmap(torch.func.jacrev(lambda v: f(v[None])[0]))(z)
        quad = torch.einsum("kbi,bij,kbj->kb", eps, J, eps)
        if torch.allclose(got, quad.mean(0), atol=1e-8):
            continue
        require(k == 1 or not torch.allclose(got, quad.sum(0), atol=1e-8),
                "you summed over the probes: the estimate is their mean")
        require(not torch.allclose(got, torch.einsum("bij,kbj->kb", J, eps).sum(-1).mean(0), atol=1e-8),
                "you summed J eps without multiplying by eps again: the estimator is eps^T (J eps)")
        raise Fail(f"with {k} probe(s) in {d} dimensions your estimate differs from mean_k eps_k^T J eps_k "
                   "(one vector-Jacobian product per probe)")
    return "correct: the mean of eps^T J eps over the probes"


@check("ex10_3", WS, "log p(x) by integrating from data back to the base")
def ex10_3(cnf_log_prob):
    g = fresh_generator()
    A, f = _linear(g)
    M, pushed = _pushed_gaussian(A)
    x = pushed.sample((8,))
    got = as_tensor(call(cnf_log_prob, f, x.clone(), label="a linear field dz/dt = A z"),
                    "cnf_log_prob(f, x)", (8,))
    want = pushed.log_prob(x)
    if torch.allclose(got, want, atol=1e-4):
        return "correct: matches the closed form N(0, e^A e^(A^T)) to 1e-4"
    trace = torch.trace(A).item()
    require(not torch.allclose(got, want + 2 * trace, atol=1e-3),
            "the log-density change enters with the wrong sign: integrating back to t = 0 gives "
            "delta = log p_0(z_0) - log p_1(x)")
    z_wrong = x @ M.T  # integrating forward from x instead of backward
    base = -0.5 * (z_wrong ** 2).sum(1) - math.log(2 * math.pi)
    require(not torch.allclose(got, base + trace, atol=1e-3) and not torch.allclose(got, base - trace, atol=1e-3),
            "you integrated in the wrong direction: the base lives at t = 0 and data at t = 1, so the time "
            "span for a likelihood is [1, 0]")
    raise Fail("your log-density differs from the closed form; solve from t = 1 to t = 0 with y0 = [x, 0] and "
               "evaluate the standard normal at the z you arrive at")


@check("ex10_4", WS, "sampling forward with the log-density")
def ex10_4(cnf_sample_and_log_prob):
    g = fresh_generator()
    A, f = _linear(g)
    M, pushed = _pushed_gaussian(A)
    z0 = torch.randn(8, 2, generator=g, dtype=torch.float64)
    out = call(cnf_sample_and_log_prob, f, z0.clone(), label="a linear field dz/dt = A z")
    require(isinstance(out, tuple) and len(out) == 2, "return the pair (x, log_p)")
    x, log_p = as_tensor(out[0], "x", (8, 2)), as_tensor(out[1], "log_p", (8,))
    require(not torch.allclose(x, z0 @ torch.linalg.inv(M).T, atol=1e-4),
            "your samples went backward in time: sampling integrates from t = 0 (base) to t = 1 (data)")
    require(torch.allclose(x, z0 @ M.T, atol=1e-4), "your samples are not z_1 of the ODE started at z_0")
    require(torch.allclose(log_p, pushed.log_prob(x), atol=1e-4),
            "the samples are right but their log-density is not: log p_1(x) = log p_0(z_0) + delta with "
            "delta the integral of -div f from 0 to 1")
    return "correct"

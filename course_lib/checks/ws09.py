"""Checks of worksheet 09: the continuity equation, the log-density ODE, Euler's method, flux."""
from __future__ import annotations

import math

import sympy as sp
import torch

from ..continuity import divergence_integral, outward_flux
from ..jacobian import divergence_exact
from .core import Fail, as_tensor, call, check, fresh_generator, require

WS = "09_continuity_equation"



def _field(g, d):
    W = torch.randn(d, d, generator=g, dtype=torch.float64)
    c = torch.randn(d, generator=g, dtype=torch.float64)
    return lambda z: torch.tanh(z @ W.T + c) - 0.3 * z


@check("ex09_1", WS, "d log p / dt along a trajectory")
def ex09_1(dlogp_dt):
    g = fresh_generator()
    for d in (2, 4):
        f = _field(g, d)
        z = torch.randn(7, d, generator=g, dtype=torch.float64)
        got = as_tensor(call(dlogp_dt, f, z.clone(), label=f"d = {d}"), "dlogp_dt(f, z)", (7,))
        div = divergence_exact(f, z).detach()
        if torch.allclose(got, -div, atol=1e-8):
            continue
        require(not torch.allclose(got, div, atol=1e-8),
                "your value has the wrong sign: where the flow spreads out (positive divergence) the "
                "density along a trajectory goes down")
        zz = z.detach().requires_grad_(True)
        total = torch.autograd.grad(f(zz).sum(), zz)[0].sum(1)
        require(not torch.allclose(got.abs(), total.abs(), atol=1e-8),
                "you summed every entry of the Jacobian: only the diagonal (the trace) enters")
        raise Fail(f"for d = {d} your values differ from -tr(df/dz)")
    return "correct: d/dt log p(z_t) = -div f"


@check("ex09_2", WS, "the log-density under dz/dt = a z")
def ex09_2(log_density_along):
    g = fresh_generator()
    for _ in range(3):
        a = (torch.rand(1, generator=g).item() - 0.5) * 3
        t = torch.rand(1, generator=g).item() * 2
        z0 = torch.randn(9, generator=g, dtype=torch.float64)
        got = as_tensor(call(log_density_along, z0.clone(), a, t, label=f"a = {a:.2f}, t = {t:.2f}"),
                        "log_density_along(z0, a, t)", (9,))
        base = -0.5 * z0 ** 2 - 0.5 * math.log(2 * math.pi)
        want = base - a * t
        if torch.allclose(got, want, atol=1e-8):
            continue
        require(not torch.allclose(got, base + a * t, atol=1e-8),
                f"for a = {a:.2f} the sign is wrong: dz/dt = a z with a > 0 spreads the points apart")
        zt = z0 * math.exp(a * t)
        require(not torch.allclose(got, -0.5 * zt ** 2 - 0.5 * math.log(2 * math.pi), atol=1e-8),
                "you evaluated the standard normal at z_t: the density itself changes with time")
        raise Fail(f"for a = {a:.2f}, t = {t:.2f} your log-density differs; integrate d/dt log p = -div f "
                   "from 0 to t")
    return "correct: log p_t(z_t) = log p_0(z_0) - a t"


@check("ex09_3", WS, "Euler's method")
def ex09_3(euler):
    g = fresh_generator()
    for n in (1, 7, 40):
        a = (torch.rand(1, generator=g).item() - 0.5) * 2
        t1 = 0.5 + torch.rand(1, generator=g).item()
        f = lambda t, z: a * z + torch.sin(torch.as_tensor(t, dtype=torch.float64)) * torch.ones_like(z)
        z0 = torch.randn(5, 2, generator=g, dtype=torch.float64)
        got = as_tensor(call(euler, f, z0.clone(), t1, n, label=f"{n} steps"), f"euler(f, z0, {t1:.2f}, {n})",
                        (5, 2))
        h, z, t = t1 / n, z0.clone(), 0.0
        for _ in range(n):
            z, t = z + h * f(t, z), t + h
        if torch.allclose(got, z, atol=1e-10):
            continue
        z_short, t = z0.clone(), 0.0
        for _ in range(max(n - 1, 0)):
            z_short, t = z_short + h * f(t, z_short), t + h
        require(not torch.allclose(got, z_short, atol=1e-10), f"with {n} steps you took one step too few")
        raise Fail(f"with {n} steps your result differs from z_(k+1) = z_k + h f(t_k, z_k), h = t1 / n, "
                   "t_k = k h; evaluate f at the start of each step")
    return "correct"


@check("ex09_4", WS, "net outflow through a box")
def ex09_4(net_outflow):
    g = fresh_generator()
    A = torch.randn(2, 2, generator=g, dtype=torch.float64)
    p = lambda z: torch.exp(-0.5 * (z ** 2).sum(1)) / (2 * math.pi)
    f = lambda z: torch.tanh(z @ A.T) + 0.5 * z
    box = (-1.0 + 0.3 * torch.rand(1, generator=g).item(), 1.2, -0.8, 0.5 + torch.rand(1, generator=g).item())
    got = as_tensor(call(net_outflow, p, f, box, label=f"box {tuple(round(b, 2) for b in box)}"),
                    "net_outflow(p, f, box)")
    flux = lambda z: p(z)[:, None] * f(z)
    want = divergence_integral(flux, box)
    require(got.numel() == 1, "return one number")
    if abs(got.item() - want) < 1e-4:
        return "correct: the outflow equals the volume integral of div(p f)"
    require(abs(got.item() + want) > 1e-4, "your outflow has the wrong sign: use the outward normal on every "
                                           "side (-e_1 on the left, -e_2 at the bottom)")
    require(abs(got.item() - outward_flux(f, box)) > 1e-4, "you integrated f alone: the flux of probability "
                                                           "is p f")
    raise Fail("your net outflow differs from the volume integral of the divergence of p f over the box")


def _values_at(points, t, x):
    """In the probe: the answer's sympy expression evaluated at the judge's points (plain floats)."""
    def convert(expr):
        if not isinstance(expr, sp.Basic):
            return f"not a sympy expression: {type(expr).__name__}"
        try:
            return [complex(sp.N(expr.subs({t: tv, x: xv}))).real for tv, xv in points]
        except (TypeError, ValueError):
            free = sorted(str(s) for s in getattr(expr, "free_symbols", ()) if s not in (t, x))
            return f"an expression that is not a number at given t and x (other symbols: {free})"
    return convert


@check("ex09_5", WS, "the continuity residual in sympy")
def ex09_5(continuity_residual):
    g = fresh_generator()
    t, x = sp.symbols("t x", real=True)
    slopes = [sp.Rational(int(torch.randint(1, 4, (1,), generator=g)), 4),      # 1/4, 1/2, 3/4
              -sp.Rational(int(torch.randint(1, 5, (1,), generator=g)), 3)]     # negative: contracting
    for a in slopes:
        sigma = sp.exp(a * t)
        p_good = sp.exp(-x ** 2 / (2 * sigma ** 2)) / sp.sqrt(2 * sp.pi * sigma ** 2)
        p_bad = sp.exp(-x ** 2 / 2) / sp.sqrt(2 * sp.pi)
        f = a * x
        points = [(float(tv), float(xv)) for tv, xv in zip(torch.rand(6, generator=g, dtype=torch.float64),
                                                            2 * torch.randn(6, generator=g, dtype=torch.float64))]

        def values(p, label):
            got = call(continuity_residual, p, f, t, x, label=label, convert=_values_at(points, t, x))
            require(isinstance(got, list), f"continuity_residual should return a sympy expression in t and "
                                           f"x; for {label} it returned {got}")
            return torch.tensor(got, dtype=torch.float64)

        good = values(p_good, f"a Gaussian carried by f = {a} x")
        require(bool(good.abs().max() < 1e-9),
                f"for a Gaussian carried by f = {a} x (a solution) your residual is not 0: the equation is "
                "dp/dt + d(p f)/dx = 0; the derivative acts on the product, and the field is the f you are given")
        bad = values(p_bad, f"a density that f = {a} x does not carry")
        want = sp.lambdify((t, x), sp.diff(p_bad, t) + sp.diff(p_bad * f, x))
        want = torch.tensor([float(want(tv, xv)) for tv, xv in points], dtype=torch.float64)
        require(torch.allclose(bad, want, atol=1e-9),
                "for a density that is not carried by the field your residual is wrong; write "
                "dp/dt + d(p f)/dx with sympy's diff")
    return "correct"

"""Checks of worksheet 01: the change of variables in one dimension."""
from __future__ import annotations

import torch
from torch.distributions import Normal

from .core import as_tensor, call, check, fresh_generator, require

WS = "01_change_of_variables_1d"
STD = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))



def _close(a, b, tol=1e-6):
    return bool(torch.allclose(a, b, atol=tol, rtol=1e-5))


@check("ex01_1", WS, "density of x = a z + b")
def ex01_1(pushed_density_affine):
    g = fresh_generator()
    for a in (2.0 + torch.rand(1, generator=g).item(), -(0.5 + torch.rand(1, generator=g).item())):
        b = (torch.rand(1, generator=g).item() - 0.5) * 6
        x = b + 3 * abs(a) * torch.randn(50, generator=g, dtype=torch.float64)
        got = as_tensor(call(pushed_density_affine, x, a, b, label=f"a={a:.2f}, b={b:.2f}"),
                        f"pushed_density_affine(x, a={a:.2f}, b={b:.2f})", shape=x.shape)
        want = Normal(b, abs(a)).log_prob(x).exp()
        if _close(got, want):
            continue
        z = (x - b) / a
        require(not _close(got, -want) and not (a < 0 and _close(got.abs(), want) and (got < 0).all()),
                f"with a negative scale a={a:.2f} your density is negative: the derivative of the "
                "inverse map is 1/a < 0 there. Which part of the formula keeps densities non-negative?")
        require(not _close(got, STD.log_prob(z).exp()),
                "your values equal p_Z((x - b) / a): the base density at the pulled-back point is only "
                "half of the formula. How much does the map stretch a small interval, and how must "
                "the density compensate?")
        require(not _close(got, STD.log_prob(z).exp() * abs(a)),
                f"for a={a:.2f} your density is too large by a factor a^2: you multiplied by |a| where "
                "the map stretches space by |a|. Stretching spreads mass thinner.")
        require(False, f"for a={a:.2f}, b={b:.2f} some values differ from the density of x = a z + b. "
                       "Write z = f^-1(x) and |d f^-1/dx| first, then combine them.")
    return "correct for increasing and decreasing maps"


@check("ex01_2", WS, "the log-normal density")
def ex01_2(lognormal_pdf):
    g = fresh_generator()
    x = torch.rand(60, generator=g, dtype=torch.float64) * 6 + 0.02
    got = as_tensor(call(lognormal_pdf, x, label="x > 0"), "lognormal_pdf(x)", shape=x.shape)
    want = STD.log_prob(torch.log(x)).exp() / x
    if _close(got, want):
        return "correct: p_X(x) = p_Z(log x) / x"
    require(not _close(got, STD.log_prob(torch.log(x)).exp()),
            "your values equal p_Z(log x): the factor |d/dx log x| is missing. What is the derivative "
            "of the inverse map?")
    require(not _close(got, STD.log_prob(x).exp() / x) and not _close(got, STD.log_prob(x).exp()),
            "you evaluated the base density at x itself. Which latent z = f^-1(x) produced x = exp(z)?")
    require(not _close(got, STD.log_prob(torch.log(x)).exp() * x),
            "you multiplied by x: the inverse map log x has derivative 1/x, not x.")
    require(False, "some values differ from the log-normal density; check at x = 1, where log x = 0")


@check("ex01_3", WS, "the general 1D change of variables")
def ex01_3(pushed_density):
    g = fresh_generator()
    maps = {  # name: (f^-1, d f^-1/dx, sample of x in the range)
        "x = -2z + 1 (decreasing)": (lambda x: (1 - x) / 2, lambda x: torch.full_like(x, -0.5),
                                     lambda n: torch.randn(n, generator=g, dtype=torch.float64) * 3),
        "x = sinh(z)": (torch.asinh, lambda x: 1 / torch.sqrt(1 + x ** 2),
                        lambda n: torch.randn(n, generator=g, dtype=torch.float64) * 4),
        "x = exp(-z) (decreasing)": (lambda x: -torch.log(x), lambda x: -1 / x,
                                     lambda n: torch.rand(n, generator=g, dtype=torch.float64) * 5 + 0.05),
    }
    base_pdf = lambda z: STD.log_prob(z).exp()
    for name, (inv, dinv, draw) in maps.items():
        x = draw(40)
        got = as_tensor(call(pushed_density, x, inv, dinv, base_pdf, label=name),
                        f"pushed_density for {name}", shape=x.shape)
        want = base_pdf(inv(x)) * dinv(x).abs()
        if _close(got, want):
            continue
        require(not _close(got, -want), f"for {name} your density is negative everywhere: the derivative "
                                        "of a decreasing inverse is negative. Which absolute value is missing?")
        require(not _close(got, base_pdf(inv(x)) / dinv(x).abs()),
                f"for {name} you divided by |d f^-1/dx|. With the inverse's derivative you multiply; "
                "dividing is the form that uses df/dz at z.")
        require(False, f"for {name} your values differ from p_Z(f^-1(x)) |d f^-1/dx|")
    return "correct, including decreasing maps"


@check("ex01_4", WS, "a uniform variable through a x + b")
def ex01_4(uniform_pushed):
    g = fresh_generator()
    for a, b in ((3.0, 1.0), (2 + 3 * torch.rand(1, generator=g).item(), torch.randn(1, generator=g).item()),
                 (-(1 + torch.rand(1, generator=g).item()), 0.5)):
        lo, hi = min(b, a + b), max(b, a + b)
        inside = lo + (hi - lo) * torch.rand(30, generator=g, dtype=torch.float64).clamp(0.01, 0.99)
        outside = torch.cat([lo - 0.1 - torch.rand(10, generator=g, dtype=torch.float64),
                             hi + 0.1 + torch.rand(10, generator=g, dtype=torch.float64)])
        label = f"a={a:.2f}, b={b:.2f}"
        got_in = as_tensor(call(uniform_pushed, inside, a, b, label=label), f"uniform_pushed(x, {label})",
                           shape=inside.shape)
        got_out = as_tensor(call(uniform_pushed, outside, a, b, label=label), f"uniform_pushed(x, {label})",
                            shape=outside.shape)
        require(bool((got_out == 0).all()), f"for {label} the density should vanish outside the image "
                                             "of [0, 1]; which interval does a z + b cover?")
        require(bool((got_in != 0).any()),
                f"for {label} your density is 0 everywhere on the image of [0, 1]. When a < 0, "
                "a z + b runs from a + b up to b: which end is the smaller one?")
        require(a > 0 or not _close(got_in, torch.full_like(got_in, 1 / a)),
                f"for {label} the density inside is negative: a is negative here, and a density "
                "never is.")
        require(_close(got_in, torch.full_like(got_in, 1 / abs(a))),
                f"for {label} the density inside the interval is wrong; the interval has length |a| and "
                "holds all the mass.")
    return "correct: constant 1/|a| on the image interval, 0 elsewhere"


@check("ex01_5", WS, "probability of an interval through the base")
def ex01_5(prob_interval):
    g = fresh_generator()
    for a in (1.5, -0.7 - torch.rand(1, generator=g).item()):
        b = torch.randn(1, generator=g).item()
        lo = b + torch.randn(1, generator=g).item()
        hi = lo + 0.2 + 2 * torch.rand(1, generator=g).item()
        label = f"a={a:.2f}, b={b:.2f}, interval [{lo:.2f}, {hi:.2f}]"
        got = as_tensor(call(prob_interval, lo, hi, a, b, label=label), f"prob_interval for {label}")
        require(got.numel() == 1, f"prob_interval should return one number, got shape {tuple(got.shape)}")
        want = Normal(b, abs(a)).cdf(torch.tensor(hi)) - Normal(b, abs(a)).cdf(torch.tensor(lo))
        require(got.item() >= 0, f"for {label} you returned a negative probability: when a < 0 the "
                                 "map reverses order, so which end of the z-interval is larger?")
        require(abs(got.item() - want.item()) < 1e-6,
                f"for {label} the probability is off. Pull both ends back with z = (x - b) / a and use "
                "the base CDF; p_Z(z) dz = p_X(x) dx means the mass is the same.")
    return "correct: the same mass in z and in x"


__all__ = [n for n in dir() if n.startswith("ex01_")]

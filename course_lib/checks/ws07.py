"""Checks of worksheet 07: one bin of a rational-quadratic spline, the series log-det, fixed points."""
from __future__ import annotations

import torch

from .core import Fail, as_tensor, call, check, fresh_generator, require

WS = "07_spline_and_residual_flows"



def _bin(g):
    xk = torch.randn(1, generator=g).item()
    yk = torch.randn(1, generator=g).item()
    w, h = 0.3 + torch.rand(2, generator=g).tolist()[0], 0.3 + torch.rand(2, generator=g).tolist()[1]
    dk, dk1 = (0.2 + 2 * torch.rand(2, generator=g)).tolist()
    return xk, xk + w, yk, yk + h, dk, dk1


def _rq_bin(x, xk, xk1, yk, yk1, dk, dk1):
    """Durkan et al.'s rational-quadratic map on one bin, and its derivative."""
    w, h = xk1 - xk, yk1 - yk
    s, xi = h / w, (x - xk) / w
    denom = s + (dk1 + dk - 2 * s) * xi * (1 - xi)
    y = yk + h * (s * xi ** 2 + dk * xi * (1 - xi)) / denom
    dy = s ** 2 * (dk1 * xi ** 2 + 2 * s * xi * (1 - xi) + dk * (1 - xi) ** 2) / denom ** 2
    return y, dy


@check("ex07_1", WS, "a spline bin")
def ex07_1(rq_bin):
    g = fresh_generator()
    for _ in range(3):
        knots = _bin(g)
        x = knots[0] + (knots[1] - knots[0]) * torch.rand(20, generator=g, dtype=torch.float64)
        x = torch.cat([torch.tensor(knots[:2], dtype=torch.float64), x])
        got = as_tensor(call(rq_bin, x.clone(), *knots, label="a random bin"), "rq_bin(x, ...)", x.shape)
        want, _ = _rq_bin(x, *knots)
        if torch.allclose(got, want, atol=1e-9):
            continue
        require(abs(got[0].item() - knots[2]) < 1e-9 and abs(got[1].item() - knots[3]) < 1e-9,
                "the bin must pass through its knots: y(x_k) = y_k and y(x_{k+1}) = y_{k+1}; did you "
                "normalise xi = (x - x_k) / (x_{k+1} - x_k)?")
        swapped, _ = _rq_bin(x, *knots[:4], knots[5], knots[4])
        require(not torch.allclose(got, swapped, atol=1e-9), "d_k and d_{k+1} are swapped: the slope at the "
                                                            "left knot is d_k")
        raise Fail("your spline differs inside the bin; compare with the formula term by term at xi = 1/2")
    return "correct: through the knots and between them"


@check("ex07_2", WS, "the slope of a spline bin")
def ex07_2(rq_bin_derivative):
    g = fresh_generator()
    for _ in range(3):
        knots = _bin(g)
        x = knots[0] + (knots[1] - knots[0]) * torch.rand(20, generator=g, dtype=torch.float64)
        got = as_tensor(call(rq_bin_derivative, x.clone(), *knots, label="a random bin"),
                        "rq_bin_derivative(x, ...)", x.shape)
        xx = x.clone().requires_grad_(True)
        y, _ = _rq_bin(xx, *knots)
        want = torch.autograd.grad(y.sum(), xx)[0]
        if torch.allclose(got, want, atol=1e-8):
            continue
        ends = as_tensor(call(rq_bin_derivative, torch.tensor(knots[:2], dtype=torch.float64), *knots),
                         "rq_bin_derivative at the knots", (2,))
        require(torch.allclose(ends, torch.tensor(knots[4:], dtype=torch.float64), atol=1e-8),
                "at the knots the slope must equal the given derivatives d_k and d_{k+1}")
        require(bool((got > 0).all()), "a monotone spline has a positive slope everywhere")
        raise Fail("your slope differs from the derivative of the bin's map (check it against autograd)")
    return "correct: matches autograd and the knot slopes"


@check("ex07_3", WS, "the power-series log-det")
def ex07_3(series_log_det):
    g = fresh_generator()
    d = 4
    A = torch.randn(3, d, d, generator=g, dtype=torch.float64)
    J = 0.7 * A / torch.linalg.matrix_norm(A, ord=2)[:, None, None]  # spectral norm 0.7 < 1
    for n in (1, 3, 40):
        got = as_tensor(call(series_log_det, J.clone(), n, label=f"{n} terms"), f"series_log_det(J, {n})", (3,))
        powers, P, want = [], torch.eye(d, dtype=torch.float64).expand(3, d, d), 0
        for k in range(1, n + 1):
            P = P @ J
            want = want + (-1) ** (k + 1) / k * P.diagonal(dim1=1, dim2=2).sum(-1)
        if torch.allclose(got, want, atol=1e-10):
            continue
        P, no_sign = torch.eye(d, dtype=torch.float64).expand(3, d, d), 0
        for k in range(1, n + 1):
            P = P @ J
            no_sign = no_sign + P.diagonal(dim1=1, dim2=2).sum(-1) / k
        require(not torch.allclose(got, no_sign, atol=1e-10), "the signs must alternate: log(1 + x) = x - x^2/2 "
                                                              "+ x^3/3 - ...")
        raise Fail(f"with {n} terms your series differs from sum_k (-1)^(k+1) tr(J^k) / k")
    exact = torch.linalg.slogdet(torch.eye(d, dtype=torch.float64) + J)[1]
    got = as_tensor(call(series_log_det, J.clone(), 60), "series_log_det(J, 60)", (3,))
    require(torch.allclose(got, exact, atol=1e-8), "with 60 terms the series should reach log det(I + J)")
    return "correct: the truncated series, converging to log det(I + J_g)"


@check("ex07_4", WS, "inverting a residual block by fixed points")
def ex07_4(fixed_point_inverse):
    g = fresh_generator()
    W = torch.randn(3, 3, generator=g, dtype=torch.float64)
    W = 0.8 * W / torch.linalg.matrix_norm(W, ord=2)
    res = lambda z: torch.tanh(z @ W.T)  # Lipschitz constant at most 0.8
    x = torch.randn(10, 3, generator=g, dtype=torch.float64)
    z = as_tensor(call(fixed_point_inverse, res, x.clone(), 200, label="a block with Lip(g) = 0.8"),
                  "fixed_point_inverse(g, x, 200)", (10, 3))
    error = (z + res(z) - x).abs().max().item()
    if error < 1e-10:
        return "correct: z + g(z) = x"
    wrong = x.clone()
    for _ in range(200):
        wrong = x + res(wrong)
    require(not torch.allclose(z, wrong, atol=1e-8), "you iterated z <- x + g(z): solving z + g(z) = x for z "
                                                     "gives z = x - g(z)")
    raise Fail(f"z + g(z) misses x by {error:.2e}; iterate z <- x - g(z) starting from z = x")

"""Typical mistakes in worksheet 09, each with the hint its check must give."""
import math

import sympy as sp
import torch

from course_lib.continuity import divergence_integral, outward_flux
from course_lib.jacobian import divergence_exact


def _sum_all(f, z):
    z = z.detach().requires_grad_(True)
    return -torch.autograd.grad(f(z).sum(), z)[0].sum(1)


def _euler_short(f, z0, t1, n):
    h, z = t1 / n, z0
    for k in range(n - 1):
        z = z + h * f(k * h, z)
    return z


def _euler_implicit_time(f, z0, t1, n):
    h, z = t1 / n, z0
    for k in range(n):
        z = z + h * f((k + 1) * h, z)
    return z


WRONG = {
    "ex09_1": [(lambda f, z: divergence_exact(f, z).detach(), "wrong sign"), (_sum_all, "every entry")],
    "ex09_2": [(lambda z0, a, t: -0.5 * z0 ** 2 - 0.5 * math.log(2 * math.pi) + a * t, "sign is wrong"),
               (lambda z0, a, t: -0.5 * (z0 * math.exp(a * t)) ** 2 - 0.5 * math.log(2 * math.pi), "at z_t")],
    "ex09_3": [(_euler_short, "one step too few"), (_euler_implicit_time, "start of each step")],
    "ex09_4": [(lambda p, f, box: -divergence_integral(lambda z: p(z)[:, None] * f(z), box), "outward normal"),
               (lambda p, f, box: outward_flux(f, box), "f alone")],
    "ex09_5": [(lambda p, f, t, x: sp.diff(p, t) + p * sp.diff(f, x), "product"),
               (lambda p, f, t, x: sp.diff(p, t) + sp.diff(p * x / 2, x), "field is the f you are given"),
               (lambda p, f, t, x: "dp/dt", "sympy expression")],
}

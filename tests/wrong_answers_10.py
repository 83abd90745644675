"""Typical mistakes in worksheet 10, each with the hint its check must give."""
import math

import torch
from torchdiffeq import odeint

from course_lib.jacobian import divergence_exact


def _dynamics(sign):
    def make(f):
        def func(t, y):
            z = y[:, :-1]
            div = divergence_exact(lambda v: f(t, v), z).detach()
            return torch.cat([f(t, z), sign * div[:, None]], dim=1)
        return func
    return make


def _trace_of_first_two(f):
    """Right in one and two dimensions only: the trace of the first two diagonal entries."""
    def func(t, y):
        z = y[:, :-1]
        J = torch.func.vmap(torch.func.jacrev(lambda v: f(t, v[None])[0]))(z)
        return torch.cat([f(t, z), -J.diagonal(dim1=1, dim2=2)[:, :2].sum(1, keepdim=True)], 1)
    return func


def _hutch_sum(f, z, eps):
    z = z.detach().requires_grad_(True)
    out = f(z)
    return sum((torch.autograd.grad(out, z, e, retain_graph=True)[0] * e).sum(1) for e in eps)


def _log_prob(span, sign):
    def answer(f, x):
        y0 = torch.cat([x, torch.zeros(x.shape[0], 1, dtype=x.dtype)], 1)
        y = odeint(_dynamics(-1)(f), y0, torch.tensor(span, dtype=x.dtype), rtol=1e-7, atol=1e-7)[-1]
        z0, delta = y[:, :-1], y[:, -1]
        return -0.5 * (z0 ** 2).sum(1) - math.log(2 * math.pi) + sign * delta
    return answer


def _sample_backward(f, z0):
    y0 = torch.cat([z0, torch.zeros(z0.shape[0], 1, dtype=z0.dtype)], 1)
    y = odeint(_dynamics(-1)(f), y0, torch.tensor([1.0, 0.0], dtype=z0.dtype), rtol=1e-7, atol=1e-7)[-1]
    return y[:, :-1], -0.5 * (z0 ** 2).sum(1) - math.log(2 * math.pi) + y[:, -1]


def _sample_wrong_sign(f, z0):
    y0 = torch.cat([z0, torch.zeros(z0.shape[0], 1, dtype=z0.dtype)], 1)
    y = odeint(_dynamics(-1)(f), y0, torch.tensor([0.0, 1.0], dtype=z0.dtype), rtol=1e-7, atol=1e-7)[-1]
    return y[:, :-1], -0.5 * (z0 ** 2).sum(1) - math.log(2 * math.pi) - y[:, -1]


WRONG = {
    "ex10_1": [(_dynamics(+1), "wrong sign"), (lambda f: (lambda t, y: torch.cat([f(t, y[:, :-1]), y[:, -1:]], 1)),
                                              "-tr"),
               (_trace_of_first_two, "-tr\\(df/dz\\)")],
    "ex10_2": [(_hutch_sum, "summed over the probes"),
               (lambda f, z, eps: _hutch_sum(f, z, eps[:3]) / 3, "differs from mean_k")],
    "ex10_3": [(_log_prob([1.0, 0.0], +1), "wrong sign"), (_log_prob([0.0, 1.0], -1), "wrong direction")],
    "ex10_4": [(_sample_backward, "backward in time"), (_sample_wrong_sign, "log-density is not")],
}

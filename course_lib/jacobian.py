"""Jacobians by autograd: the brute-force oracles every formula in the course is checked against.

All functions take ``f`` mapping a batch ``(batch, *shape)`` to a batch of the same
number of samples, where sample ``b`` of the output depends on sample ``b`` of the
input only. A flow (returning ``(output, logdet)``) can be passed directly.

Example:
    >>> x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    >>> jacobian(lambda v: v ** 2, x)   # diag(2 x)
    tensor([[[2., 0.],
             [0., 4.]]], dtype=torch.float64)
    >>> divergence_exact(lambda v: v ** 2, x, create_graph=False)
    tensor([6.], dtype=torch.float64)
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .validation import CourseValueError, check_finite, positive_int

__all__ = ["jacobian", "log_abs_det_bruteforce", "divergence_exact", "divergence_hutchinson",
           "probes", "hutchinson_variance_theory"]

NOISES = ("gaussian", "rademacher")


def _check(x: Tensor, where: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        got = (f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, Tensor)
               else type(x).__name__)
        raise CourseValueError(f"{where}: expected x to be a float tensor of shape (batch, ...), "
                               f"got {got}")
    check_finite(x, "x", where)


def _output(f: Callable, x: Tensor, where: str, square: bool = False) -> Tensor:
    """``f(x)`` (the first element when ``f`` returns a tuple, as a flow does), flattened per
    sample to ``(batch, m)``; with ``square``, ``m`` must be the number of inputs per sample."""
    out = f(x)
    out = out[0] if isinstance(out, tuple) else out
    if not isinstance(out, Tensor) or out.dim() < 1 or out.shape[0] != x.shape[0]:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise CourseValueError(f"{where}: expected f to map a batch of {x.shape[0]} inputs to "
                               f"{x.shape[0]} outputs, got output {got}")
    out = out.flatten(1) if out.dim() > 1 else out[:, None]
    n = math.prod(x.shape[1:])
    if square and out.shape[1] != n:
        raise CourseValueError(f"{where}: the divergence needs a map from R^n to R^n (a square "
                               f"Jacobian); x has n = {n} coordinates per sample but f(x) has "
                               f"{out.shape[1]}")
    check_finite(out, "the output f(x)", where)
    return out


def jacobian(f: Callable, x: Tensor, create_graph: bool = False) -> Tensor:
    """Per-sample Jacobian ``J[b, i, j] = d f(x)_{b,i} / d x_{b,j}``, shape ``(batch, m, n)``.

    Inputs and outputs with several trailing dimensions are flattened. One backward
    pass per output coordinate.
    """
    _check(x, "jacobian")
    x = x.detach().requires_grad_(True)
    batch = x.shape[0]
    with torch.enable_grad():
        y = _output(f, x, "jacobian")
        rows = []
        for i in range(y.shape[1] if y.requires_grad else 0):
            (g,) = torch.autograd.grad(y[:, i].sum(), x, retain_graph=True,
                                       create_graph=create_graph, allow_unused=True)
            rows.append(torch.zeros_like(x) if g is None else g)
    if not rows:   # no outputs, or none that depends on x
        return x.new_zeros(batch, y.shape[1], math.prod(x.shape[1:]))
    return torch.stack([r.flatten(1) for r in rows], dim=1)


def log_abs_det_bruteforce(f: Callable, x: Tensor) -> Tensor:
    """``log|det J_f(x)|`` per sample, from the full autograd Jacobian (O(d^3))."""
    J = jacobian(f, x)
    if J.shape[1] != J.shape[2]:
        raise CourseValueError(f"log_abs_det_bruteforce: a determinant needs a square Jacobian; "
                               f"f maps {J.shape[2]} coordinates per sample to {J.shape[1]}")
    return torch.linalg.slogdet(J)[1]


def divergence_exact(f: Callable, x: Tensor, create_graph: bool = True) -> Tensor:
    """``div f = tr(df/dx)`` per sample, one backward pass per dimension (O(d) passes).

    ``f`` must map each sample to as many coordinates as it has (a square Jacobian). Keeps the
    graph by default so the result can be trained through.
    """
    _check(x, "divergence_exact")
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        y = _output(f, x, "divergence_exact", square=True)
        div = x.new_zeros(x.shape[0])
        for i in range(y.shape[1] if y.requires_grad else 0):
            (g,) = torch.autograd.grad(y[:, i].sum(), x, retain_graph=True,
                                       create_graph=create_graph, allow_unused=True)
            if g is not None:
                div = div + g.flatten(1)[:, i]
    return div


def _noise(noise: str, where: str) -> str:
    if noise not in NOISES:
        raise CourseValueError(f"{where}: expected noise to be 'gaussian' or 'rademacher', "
                               f"got {noise!r}")
    return noise


def probes(shape: torch.Size | tuple, noise: str = "rademacher", n_probes: int = 1,
           dtype: torch.dtype | None = None, generator: torch.Generator | None = None,
           device: torch.device | str | None = None) -> Tensor:
    """Probe vectors ``eps`` with ``E[eps eps^T] = I``: shape ``(n_probes, *shape)``.

    Drawn on the generator's device (the CPU by default), then moved to ``device``.
    """
    _noise(noise, "probes")
    n_probes = positive_int(n_probes, "n_probes", "probes")
    dtype = dtype or torch.get_default_dtype()
    where = generator.device if generator is not None else device
    if noise == "gaussian":
        eps = torch.randn((n_probes, *shape), dtype=dtype, generator=generator, device=where)
    else:
        bits = torch.randint(0, 2, (n_probes, *shape), generator=generator, device=where)
        eps = (2 * bits - 1).to(dtype)
    return eps.to(device) if device is not None else eps


def divergence_hutchinson(f: Callable, x: Tensor, n_probes: int = 1, noise: str = "rademacher",
                          eps: Tensor | None = None, generator: torch.Generator | None = None,
                          create_graph: bool = True) -> Tensor:
    """Hutchinson's unbiased estimate ``tr(J) ~ mean_k eps_k^T J eps_k``, ``E[eps eps^T] = I``.

    Each probe costs one vector-Jacobian product instead of d backward passes.
    Pass ``eps`` of shape ``(n_probes, *x.shape)`` to reuse fixed probes (as a CNF
    does within one solve).
    """
    _check(x, "divergence_hutchinson")
    if eps is None:
        eps = probes(x.shape, _noise(noise, "divergence_hutchinson"),
                     positive_int(n_probes, "n_probes", "divergence_hutchinson"), x.dtype,
                     generator, x.device)
    elif not isinstance(eps, Tensor) or eps.dim() != x.dim() + 1 or eps.shape[1:] != x.shape:
        got = tuple(eps.shape) if isinstance(eps, Tensor) else type(eps).__name__
        raise CourseValueError(f"divergence_hutchinson: expected eps of shape (n_probes, "
                               f"{', '.join(map(str, x.shape))}), got {got}")
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        y = _output(f, x, "divergence_hutchinson", square=True).reshape(x.shape)
        total = x.new_zeros(x.shape[0])
        for k in range(eps.shape[0] if y.requires_grad else 0):
            (vjp,) = torch.autograd.grad(y, x, eps[k], retain_graph=True,
                                         create_graph=create_graph, allow_unused=True)
            if vjp is not None:
                total = total + (vjp * eps[k]).flatten(1).sum(dim=1)
    return total / eps.shape[0]


def hutchinson_variance_theory(J: Tensor, noise: str) -> Tensor:
    """Variance of one probe's ``eps^T J eps`` for a square ``J`` (or a batch ``(..., d, d)``):
    ``2 |S|_F^2`` for Gaussian ``eps`` and ``2 (|S|_F^2 - sum_i S_ii^2)`` for Rademacher ``eps``,
    where ``S = (J + J^T) / 2`` (only the symmetric part of ``J`` enters ``eps^T J eps``).
    With ``k`` probes averaged, divide by ``k``.

    Example:
        >>> hutchinson_variance_theory(torch.eye(3), "rademacher")   # Rademacher: exact on I
        tensor(0.)
    """
    _noise(noise, "hutchinson_variance_theory")
    if not isinstance(J, Tensor) or J.dim() < 2 or J.shape[-1] != J.shape[-2]:
        got = tuple(J.shape) if isinstance(J, Tensor) else type(J).__name__
        raise CourseValueError(f"hutchinson_variance_theory: expected a square matrix J of shape "
                               f"(..., d, d), got {got}")
    S = 0.5 * (J + J.transpose(-1, -2))
    frobenius = S.pow(2).sum(dim=(-2, -1))
    if noise == "gaussian":
        return 2 * frobenius
    return 2 * (frobenius - S.diagonal(dim1=-2, dim2=-1).pow(2).sum(-1))

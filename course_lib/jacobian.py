"""Jacobians by autograd: the brute-force oracles every formula in the course is checked against.

All functions take ``f`` mapping a batch ``(batch, *shape)`` to a batch of the same
number of samples, where sample ``b`` of the output depends on sample ``b`` of the
input only. A flow (returning ``(output, logdet)``) can be passed directly.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["jacobian", "log_abs_det_bruteforce", "divergence_exact", "divergence_hutchinson"]


def _output(f: Callable, x: Tensor) -> Tensor:
    out = f(x)
    return out[0] if isinstance(out, tuple) else out


def _check(x: Tensor, where: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{where}: expected a float tensor of shape (batch, ...), got {got}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: x contains non-finite values")


def jacobian(f: Callable, x: Tensor, create_graph: bool = False) -> Tensor:
    """Per-sample Jacobian ``J[b, i, j] = d f(x)_{b,i} / d x_{b,j}``, shape ``(batch, m, n)``.

    Inputs and outputs with several trailing dimensions are flattened. One backward
    pass per output coordinate.
    """
    _check(x, "jacobian")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = _output(f, x)
        batch = x.shape[0]
        y = y.reshape(batch, -1)
        rows = []
        for i in range(y.shape[1]):
            (g,) = torch.autograd.grad(y[:, i].sum(), x, retain_graph=True,
                                       create_graph=create_graph, allow_unused=True)
            rows.append(torch.zeros_like(x) if g is None else g)
    return torch.stack([r.reshape(batch, -1) for r in rows], dim=1)


def log_abs_det_bruteforce(f: Callable, x: Tensor) -> Tensor:
    """``log|det J_f(x)|`` per sample, from the full autograd Jacobian (O(d^3))."""
    return torch.linalg.slogdet(jacobian(f, x))[1]


def divergence_exact(f: Callable, x: Tensor, create_graph: bool = True) -> Tensor:
    """``div f = tr(df/dx)`` per sample, one backward pass per dimension (O(d) passes).

    Keeps the graph by default so the result can be trained through.
    """
    _check(x, "divergence_exact")
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        y = _output(f, x)
        flat_x_shape = x.shape
        y = y.reshape(x.shape[0], -1)
        div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(y.shape[1]):
            (g,) = torch.autograd.grad(y[:, i].sum(), x, retain_graph=True,
                                       create_graph=create_graph)
            div = div + g.reshape(flat_x_shape[0], -1)[:, i]
    return div


def probes(shape: torch.Size | tuple, noise: str = "rademacher", n_probes: int = 1,
           dtype: torch.dtype | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Probe vectors ``eps`` with ``E[eps eps^T] = I``: shape ``(n_probes, *shape)``."""
    if noise == "gaussian":
        return torch.randn((n_probes, *shape), dtype=dtype, generator=generator)
    if noise == "rademacher":
        bits = torch.randint(0, 2, (n_probes, *shape), generator=generator)
        return (2 * bits - 1).to(dtype or torch.get_default_dtype())
    raise ValueError(f"noise must be 'gaussian' or 'rademacher', got {noise!r}")


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
        if not isinstance(n_probes, int) or n_probes < 1:
            raise ValueError(f"n_probes must be a positive integer, got {n_probes!r}")
        eps = probes(x.shape, noise, n_probes, x.dtype, generator).to(x.device)
    elif eps.shape[1:] != x.shape:
        raise ValueError(f"eps must have shape (n_probes, {', '.join(map(str, x.shape))}), "
                         f"got {tuple(eps.shape)}")
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        y = _output(f, x)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for k in range(eps.shape[0]):
            (vjp,) = torch.autograd.grad(y, x, eps[k], retain_graph=True, create_graph=create_graph)
            total = total + (vjp * eps[k]).reshape(x.shape[0], -1).sum(dim=1)
    return total / eps.shape[0]

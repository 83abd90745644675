"""Euler's method on ``dz/dt = a z``: the residual-network view of an ODE.

A residual block ``z + h f(z)`` is one Euler step of ``dz/dt = f(z)`` with step ``h``; ``T / h``
blocks integrate from 0 to ``T``. On the linear field ``f(z) = a z`` the exact solution
``z_0 e^{at}`` is known, so the error of the method can be measured: it is first order,
halving ``h`` halves it.

Example:
    >>> t, z = euler_path(1.0, 0.5, t_end=1.0)   # two steps: z_k = (1 + h a)^k
    >>> t.tolist(), z.tolist()
    ([0.0, 0.5, 1.0], [1.0, 1.5, 2.25])
"""
from __future__ import annotations

import numpy as np
import torch
from torchdiffeq import odeint

from .validation import CourseValueError, finite_float, positive_float

__all__ = ["euler_path"]


def euler_path(a: float, step: float, t_end: float = 2.0,
               z0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Euler's method for ``dz/dt = a z``, ``z(0) = z0``: ``z_{k+1} = z_k + h a z_k``.

    Returns the times ``t_k = k h`` from 0 to ``t_end`` and the ``z_k`` (torchdiffeq's fixed-step
    ``euler``, in float64). ``t_end`` must be a whole number of steps.
    """
    a = finite_float(a, "a", "euler_path")
    z0 = finite_float(z0, "z0", "euler_path")
    step = positive_float(step, "the step h", "euler_path")
    t_end = positive_float(t_end, "t_end", "euler_path")
    n = round(t_end / step)
    if n < 1 or abs(n * step - t_end) > 1e-9 * max(t_end, 1.0):
        raise CourseValueError(f"euler_path: expected t_end to be a positive whole number of "
                               f"steps h, got t_end={t_end!r}, h={step!r}")
    times = torch.arange(n + 1, dtype=torch.float64) * step
    z = odeint(lambda t, z: a * z, torch.tensor([z0], dtype=torch.float64), times,
               method="euler", options={"step_size": step})
    return times.numpy(), z[:, 0].numpy()

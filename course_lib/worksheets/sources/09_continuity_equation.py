# %% [markdown] slide=slide
# # Worksheet 09: the continuity equation
#
# Companion to lecture `09_continuity_equation`. Fill in each `# YOUR CODE HERE`, run the cell, then its
# check.
#
# A density $p(z, t)$ carried by a velocity field $f$ conserves mass: $\partial_t p + \nabla\cdot(p f) = 0$.
# Along a trajectory $dz/dt = f(z)$ it follows that
# $$\frac{d}{dt}\log p(z_t, t) = -\nabla\cdot f(z_t) = -\operatorname{tr}\frac{\partial f}{\partial z}.$$

# %% slide=skip
import math

import sympy as sp
import torch

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: the log-density ODE
#
# Write `dlogp_dt(f, z)` returning $\frac{d}{dt}\log p$ along the trajectories through the points `z`
# (shape `(batch, d)`) of the time-independent field `f` (a function of `(batch, d)` tensors), shape
# `(batch,)`, with autograd (not `course_lib.jacobian`).

# %%
def dlogp_dt(f, z):
    ### BEGIN SOLUTION
    z = z.detach().requires_grad_(True)
    out = f(z)
    trace = torch.zeros(z.shape[0], dtype=z.dtype)
    for i in range(z.shape[1]):
        trace = trace + torch.autograd.grad(out[:, i].sum(), z, retain_graph=True)[0][:, i]
    return -trace
    ### END SOLUTION

# %%
checks.ex09_1(dlogp_dt)

# %% [markdown] slide=slide
# ## Exercise 2: the 1D example $dz/dt = a z$
#
# With $p_0 = \mathcal N(0, 1)$, write `log_density_along(z0, a, t)` returning $\log p_t(z_t)$ for the
# trajectories that start at the points `z0` (a 1D tensor).

# %%
def log_density_along(z0, a, t):
    ### BEGIN SOLUTION
    log_p0 = -0.5 * z0 ** 2 - 0.5 * math.log(2 * math.pi)
    return log_p0 - a * t
    ### END SOLUTION

# %%
checks.ex09_2(log_density_along)

# %% [markdown] slide=slide
# ## Exercise 3: Euler's method
#
# Write `euler(f, z0, t1, n_steps)` integrating $dz/dt = f(t, z)$ from $t = 0$ to `t1` in `n_steps` equal
# steps, $z_{k+1} = z_k + h f(t_k, z_k)$. A residual network $z + h f(z)$ is one such step per layer.

# %%
def euler(f, z0, t1, n_steps):
    ### BEGIN SOLUTION
    h, z = t1 / n_steps, z0
    for k in range(n_steps):
        z = z + h * f(k * h, z)
    return z
    ### END SOLUTION

# %%
checks.ex09_3(euler)

# %% [markdown] slide=slide
# ## Exercise 4: net outflow through a box
#
# For a density `p(z)` (returns `(batch,)`) and a field `f(z)` (returns `(batch, 2)`), write
# `net_outflow(p, f, box)` returning the net outflow of probability $\oint_{\partial V} p\, f \cdot n\, dS$
# through the boundary of `box = (x_lo, x_hi, y_lo, y_hi)`, as a float, by numerical quadrature along the
# four sides (e.g. the trapezoid rule with a few thousand points per side). The divergence theorem says it
# equals the volume integral of $\nabla\cdot(p f)$.

# %%
def net_outflow(p, f, box):
    ### BEGIN SOLUTION
    x_lo, x_hi, y_lo, y_hi = box
    n = 4001

    def side(points, normal, length):
        flux = p(points)[:, None] * f(points)
        values = flux @ torch.tensor(normal, dtype=torch.float64)
        return torch.trapezoid(values, dx=length / (n - 1)).item()

    xs = torch.linspace(x_lo, x_hi, n, dtype=torch.float64)
    ys = torch.linspace(y_lo, y_hi, n, dtype=torch.float64)
    full = lambda v: torch.full((n,), v, dtype=torch.float64)
    return (side(torch.stack([full(x_hi), ys], 1), [1.0, 0.0], y_hi - y_lo)
            + side(torch.stack([full(x_lo), ys], 1), [-1.0, 0.0], y_hi - y_lo)
            + side(torch.stack([xs, full(y_hi)], 1), [0.0, 1.0], x_hi - x_lo)
            + side(torch.stack([xs, full(y_lo)], 1), [0.0, -1.0], x_hi - x_lo))
    ### END SOLUTION

# %%
checks.ex09_4(net_outflow)

# %% [markdown] slide=slide
# ## Exercise 5: the continuity residual in sympy
#
# Write `continuity_residual(p, f, t, x)` returning the sympy expression
# $\partial_t p + \partial_x (p f)$ for a 1D density `p` and field `f` (sympy expressions in the symbols
# `t` and `x`). The check feeds it a Gaussian carried by $f = x/2$, whose residual must simplify to 0.

# %%
def continuity_residual(p, f, t, x):
    ### BEGIN SOLUTION
    return sp.diff(p, t) + sp.diff(p * f, x)
    ### END SOLUTION

# %%
checks.ex09_5(continuity_residual)

# %% [markdown] slide=slide
# ## Before you go
#
# - Why does a CNF need only the trace of $\partial f / \partial z$, while a discrete flow needs a
#   determinant?
# - In Exercise 2 the log-density falls linearly in time for $a > 0$. Where does the mass go?

# %% [markdown] slide=slide
# # Worksheet 10: continuous flows on torchdiffeq
#
# Companion to lecture `10_continuous_flows`. Fill in each `# YOUR CODE HERE`, run the cell, then its check.
#
# A CNF moves points by $dz/dt = f(t, z)$; the base sits at $t = 0$, the data at $t = 1$. Its density
# follows $\frac{d}{dt}\log p = -\operatorname{tr}\frac{\partial f}{\partial z}$, so one ODE solve on the
# *augmented state* $y = [z, \ell]$ gives both the point and its log-density change. Here you write it
# with `torchdiffeq.odeint` yourself (not `course_lib.continuous`).

# %% slide=skip
import math

import torch
from torchdiffeq import odeint

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] slide=slide
# ## Exercise 1: the augmented dynamics
#
# Write `augmented_dynamics(f)` returning a function `func(t, y)` for `odeint`: `y` has shape
# `(batch, d + 1)` (the point `z` in the first `d` columns, $\ell$ in the last), and `func` returns
# $[f(t, z),\; -\operatorname{tr}(\partial f/\partial z)]$ of the same shape, the trace by autograd.

# %%
def augmented_dynamics(f):
    ### BEGIN SOLUTION
    def func(t, y):
        with torch.enable_grad():
            z = y[:, :-1].detach().requires_grad_(True)
            dz = f(t, z)
            trace = torch.zeros(z.shape[0], dtype=z.dtype)
            for i in range(z.shape[1]):
                trace = trace + torch.autograd.grad(dz[:, i].sum(), z, retain_graph=True)[0][:, i]
        return torch.cat([dz.detach(), -trace[:, None]], dim=1)
    return func
    ### END SOLUTION

# %%
checks.ex10_1(augmented_dynamics)

# %% [markdown] slide=slide
# ## Exercise 2: Hutchinson's estimator
#
# For large $d$ the exact trace costs $d$ backward passes. Write `hutchinson(f, z, eps)` returning the
# estimate $\frac1K\sum_k \epsilon_k^\top J \epsilon_k$ per sample, shape `(batch,)`, for probes `eps` of
# shape `(K, batch, d)`, with one vector-Jacobian product per probe (`torch.autograd.grad` with
# `grad_outputs`).

# %%
def hutchinson(f, z, eps):
    ### BEGIN SOLUTION
    z = z.detach().requires_grad_(True)
    out = f(z)
    total = torch.zeros(z.shape[0], dtype=z.dtype)
    for k in range(eps.shape[0]):
        vjp = torch.autograd.grad(out, z, eps[k], retain_graph=True)[0]
        total = total + (vjp * eps[k]).sum(dim=1)
    return total / eps.shape[0]
    ### END SOLUTION

# %%
checks.ex10_2(hutchinson)

# %% [markdown] slide=slide
# ## Exercise 3: the likelihood direction
#
# Write `cnf_log_prob(f, x)` returning $\log p_1(x)$ for a batch `x` of shape `(batch, 2)`, with a standard
# normal base: solve the augmented ODE with `odeint(func, y0, torch.tensor([t_start, t_end]), rtol=1e-7,
# atol=1e-7)`, slice $z_0$ and $\ell$ out of the final state, and combine them. Choose the time span.

# %%
def cnf_log_prob(f, x):
    ### BEGIN SOLUTION
    y0 = torch.cat([x, torch.zeros(x.shape[0], 1)], dim=1)
    y1 = odeint(augmented_dynamics(f), y0, torch.tensor([1.0, 0.0]), rtol=1e-7, atol=1e-7)[-1]
    z0, delta = y1[:, :-1], y1[:, -1]
    log_base = -0.5 * (z0 ** 2).sum(dim=1) - 0.5 * z0.shape[1] * math.log(2 * math.pi)
    return log_base - delta
    ### END SOLUTION

# %%
checks.ex10_3(cnf_log_prob)

# %% [markdown] slide=slide
# ## Exercise 4: the sampling direction
#
# Write `cnf_sample_and_log_prob(f, z0)` returning `(x, log_p)`: the samples at $t = 1$ of the trajectories
# starting at the base samples `z0`, and $\log p_1$ at them, from the same single solve.

# %%
def cnf_sample_and_log_prob(f, z0):
    ### BEGIN SOLUTION
    y0 = torch.cat([z0, torch.zeros(z0.shape[0], 1)], dim=1)
    y1 = odeint(augmented_dynamics(f), y0, torch.tensor([0.0, 1.0]), rtol=1e-7, atol=1e-7)[-1]
    log_base = -0.5 * (z0 ** 2).sum(dim=1) - 0.5 * z0.shape[1] * math.log(2 * math.pi)
    return y1[:, :-1], log_base + y1[:, -1]
    ### END SOLUTION

# %%
checks.ex10_4(cnf_sample_and_log_prob)

# %% [markdown] slide=slide
# ## Before you go
#
# - Hutchinson's estimate is unbiased, yet FFJORD draws the probes once per solve. What would go wrong if
#   `eps` changed at every evaluation of `func` inside one adaptive solve?
# - Why can the adjoint method train a CNF with memory that does not grow with the number of solver steps?

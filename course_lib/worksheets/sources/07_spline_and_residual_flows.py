# %% [markdown] slide=slide
# # Worksheet 07: spline and residual flows
#
# Companion to lecture `07_spline_and_residual_flows`. Fill in each `# YOUR CODE HERE`, run the cell, then
# its check.
#
# In one bin $[x_k, x_{k+1}]$ a rational-quadratic spline with knot values $y_k, y_{k+1}$ and knot slopes
# $d_k, d_{k+1}$ is, with $w = x_{k+1} - x_k$, $s = (y_{k+1} - y_k)/w$ and $\xi = (x - x_k)/w$,
# $$y = y_k + \frac{(y_{k+1} - y_k)\,\big[s\,\xi^2 + d_k\,\xi(1 - \xi)\big]}{s + (d_{k+1} + d_k - 2s)\,\xi(1 - \xi)}.$$

# %% slide=skip
import torch

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] slide=slide
# ## Exercise 1: evaluate a bin
#
# Write `rq_bin(x, x_k, x_k1, y_k, y_k1, d_k, d_k1)` for a tensor `x` inside the bin (numbers for the rest).

# %%
def rq_bin(x, x_k, x_k1, y_k, y_k1, d_k, d_k1):
    ### BEGIN SOLUTION
    width, height = x_k1 - x_k, y_k1 - y_k
    slope, xi = height / width, (x - x_k) / width
    mix = xi * (1 - xi)
    return y_k + height * (slope * xi ** 2 + d_k * mix) / (slope + (d_k1 + d_k - 2 * slope) * mix)
    ### END SOLUTION

# %%
checks.ex07_1(rq_bin)

# %% [markdown] slide=slide
# ## Exercise 2: its slope
#
# The log-det of a spline flow is the log of this slope. Write `rq_bin_derivative(x, ...)` (same arguments)
# in closed form, not by autograd:
# $$\frac{dy}{dx} = \frac{s^2\,\big[d_{k+1}\xi^2 + 2s\,\xi(1-\xi) + d_k(1-\xi)^2\big]}{\big[s + (d_{k+1} + d_k - 2s)\,\xi(1-\xi)\big]^2}.$$

# %%
def rq_bin_derivative(x, x_k, x_k1, y_k, y_k1, d_k, d_k1):
    ### BEGIN SOLUTION
    width = x_k1 - x_k
    slope, xi = (y_k1 - y_k) / width, (x - x_k) / width
    mix = xi * (1 - xi)
    numerator = slope ** 2 * (d_k1 * xi ** 2 + 2 * slope * mix + d_k * (1 - xi) ** 2)
    return numerator / (slope + (d_k1 + d_k - 2 * slope) * mix) ** 2
    ### END SOLUTION

# %%
checks.ex07_2(rq_bin_derivative)

# %% [markdown] slide=slide
# ## Exercise 3: the power-series log-det of a residual block
#
# For $x = z + g(z)$ with $\mathrm{Lip}(g) < 1$, $\log\det(I + J_g) = \sum_{k \ge 1} \frac{(-1)^{k+1}}{k}
# \operatorname{tr}(J_g^k)$. Write `series_log_det(J, n_terms)` for a batch of matrices `J`
# (shape `(batch, d, d)`), truncated after `n_terms` terms, shape `(batch,)`.

# %%
def series_log_det(J, n_terms):
    ### BEGIN SOLUTION
    power = torch.eye(J.shape[-1]).expand_as(J)
    total = torch.zeros(J.shape[0])
    for k in range(1, n_terms + 1):
        power = power @ J
        total = total + (-1) ** (k + 1) / k * power.diagonal(dim1=1, dim2=2).sum(-1)
    return total
    ### END SOLUTION

# %%
checks.ex07_3(series_log_det)

# %% [markdown] slide=slide
# ## Exercise 4: the inverse by fixed points
#
# Write `fixed_point_inverse(g, x, n_iter)` returning $z$ with $z + g(z) = x$ for a batch `x`, by
# `n_iter` fixed-point iterations. Banach's theorem guarantees convergence when $\mathrm{Lip}(g) < 1$.

# %%
def fixed_point_inverse(g, x, n_iter):
    ### BEGIN SOLUTION
    z = x.clone()
    for _ in range(n_iter):
        z = x - g(z)
    return z
    ### END SOLUTION

# %%
checks.ex07_4(fixed_point_inverse)

# %% [markdown] slide=slide
# ## Before you go
#
# - What goes wrong with the fixed-point iteration when $\mathrm{Lip}(g) \ge 1$, and what does the map
#   $z + g(z)$ itself do then?
# - Why does a spline flow keep the identity outside $[-B, B]$, and what does that mean for the log-det there?

# %% [markdown] slide=slide
# # Worksheet 01: the change of variables in one dimension
#
# Companion to lecture `01_change_of_variables_1d`. Fill in every cell marked `# YOUR CODE HERE`
# (delete the `raise NotImplementedError()` line), run it, then run the check below it. A check tries
# your function on fresh random inputs and tells you what is wrong and how to think about it; it never
# shows the answer. "Run All" works at any time: unfinished exercises report "not attempted".
#
# Throughout, $z \sim \mathcal N(0, 1)$ is the latent variable and $x = f(z)$ the data. For a strictly
# monotone, differentiable $f$,
#
# $$p_X(x) = p_Z\big(f^{-1}(x)\big)\,\Big|\frac{d f^{-1}}{dx}(x)\Big| = \frac{p_Z(z)}{|f'(z)|}\Big|_{z = f^{-1}(x)}.$$

# %% slide=skip
import math

import torch
from torch.distributions import Normal

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)
std_normal = Normal(0.0, 1.0)

# %% [markdown] slide=slide
# ## Exercise 1: the density of $x = a z + b$
#
# Write `pushed_density_affine(x, a, b)` returning $p_X(x)$ for $x = a z + b$ as a tensor of the
# same shape as `x`. `a` can be any non-zero number, **negative ones included**. Use
# `std_normal.log_prob(...).exp()` for $p_Z$; do not use a `Normal(b, ...)` shortcut.

# %%
def pushed_density_affine(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    z = (x - b) / a
    return std_normal.log_prob(z).exp() / abs(a)
    ### END SOLUTION

# %%
checks.ex01_1(pushed_density_affine)

# %% [markdown] slide=slide
# ## Exercise 2: the log-normal
#
# For $x = \exp(z)$, derive $p_X$ and write `lognormal_pdf(x)` for $x > 0$ (a tensor in, a tensor of
# the same shape out). At $x = 1$ your function should give $1/\sqrt{2\pi} \approx 0.3989$.

# %%
def lognormal_pdf(x: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    z = torch.log(x)
    return std_normal.log_prob(z).exp() / x
    ### END SOLUTION

# %%
checks.ex01_2(lognormal_pdf)

# %% [markdown] slide=slide
# ## Exercise 3: any monotone map
#
# Write `pushed_density(x, f_inv, df_inv_dx, base_pdf)` for a general strictly monotone map, given
# its inverse `f_inv(x)`, the derivative of the inverse `df_inv_dx(x)` and the base density
# `base_pdf(z)` (all three are functions of tensors). The check uses increasing **and decreasing** maps.

# %%
def pushed_density(x, f_inv, df_inv_dx, base_pdf):
    ### BEGIN SOLUTION
    return base_pdf(f_inv(x)) * df_inv_dx(x).abs()
    ### END SOLUTION

# %%
checks.ex01_3(pushed_density)

# %% [markdown] slide=slide
# ## Exercise 4: a uniform variable through $a z + b$
#
# Now $z \sim \mathrm{Uniform}(0, 1)$. Write `uniform_pushed(x, a, b)`: the density of $x = a z + b$ at
# every entry of `x` (zero outside the image of $[0, 1]$). The cheat sheet's example $3z + 1$ has density
# $1/3$ on $[1, 4]$.

# %%
def uniform_pushed(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    lo, hi = min(b, a + b), max(b, a + b)
    inside = (x >= lo) & (x <= hi)
    return torch.where(inside, 1.0 / abs(a), 0.0).to(x.dtype)
    ### END SOLUTION

# %%
checks.ex01_4(uniform_pushed)

# %% [markdown] slide=slide
# ## Exercise 5: the same mass on both sides
#
# $p_Z(z)\,dz = p_X(x)\,dx$: an interval of $x$ holds as much probability as the interval of $z$ that
# maps onto it. Write `prob_interval(lo, hi, a, b)` returning $P(lo \le X \le hi)$ for $x = a z + b$ as a
# float, using only the base CDF `std_normal.cdf` (no integration, no `Normal(b, ...)`). Careful when
# $a < 0$.

# %%
def prob_interval(lo: float, hi: float, a: float, b: float) -> float:
    ### BEGIN SOLUTION
    z_lo, z_hi = sorted(((lo - b) / a, (hi - b) / a))
    return (std_normal.cdf(torch.tensor(z_hi)) - std_normal.cdf(torch.tensor(z_lo))).item()
    ### END SOLUTION

# %%
checks.ex01_5(prob_interval)

# %% [markdown] slide=slide
# ## Before you go
#
# - Why can dropping the absolute value give a negative "density"? Which of your functions would
#   have done so?
# - The two forms of the formula, $p_Z(f^{-1}(x))\,|d f^{-1}/dx|$ and $p_Z(z)/|f'(z)|$, are the same
#   identity: $d f^{-1}/dx = 1 / f'(z)$. Pick whichever is cheaper to compute.

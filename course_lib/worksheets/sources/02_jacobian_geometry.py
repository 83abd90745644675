# %% [markdown] slide=slide
# # Worksheet 02: Jacobian geometry
#
# Companion to lecture `02_jacobian_geometry`. Fill in each `# YOUR CODE HERE`, run the cell, then run
# its check. Checks use fresh random inputs and explain what is wrong without showing the answer.
#
# For $f: \mathbb{R}^d \to \mathbb{R}^d$ the Jacobian is $J_f(z)_{ij} = \partial f_i / \partial z_j$
# (row $i$ belongs to output $f_i$); $|\det J_f(z)|$ is the factor by which $f$ scales small volumes near $z$.

# %% slide=skip
import torch
from torch.distributions import MultivariateNormal

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)
torch.set_default_dtype(torch.float64)

# %% [markdown] slide=slide
# ## Exercise 1: a Jacobian by hand
#
# For $f(z_1, z_2) = \big(z_1 + \tfrac12 \sin z_2,\; z_2\, e^{0.3 z_1}\big)$ write `jacobian_by_hand(z)`,
# taking a batch `z` of shape `(batch, 2)` and returning the Jacobians, shape `(batch, 2, 2)`, from your
# own derivatives (no autograd).

# %%
def jacobian_by_hand(z: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    z1, z2 = z[:, 0], z[:, 1]
    e = torch.exp(0.3 * z1)
    row1 = torch.stack([torch.ones_like(z1), 0.5 * torch.cos(z2)], dim=1)
    row2 = torch.stack([0.3 * z2 * e, e], dim=1)
    return torch.stack([row1, row2], dim=1)
    ### END SOLUTION

# %%
checks.ex02_1(jacobian_by_hand)

# %% [markdown] slide=slide
# ## Exercise 2: a Jacobian by autograd
#
# Write `jacobian_autograd(f, z)` for any `f` mapping `(batch, d)` to `(batch, d)` sample by sample,
# using `torch.autograd.grad` (not `course_lib.jacobian`, not `torch.autograd.functional`). Hint: the
# gradient of `f(z)[:, i].sum()` with respect to `z` gives row `i` of every sample's Jacobian at once.

# %%
def jacobian_autograd(f, z: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    z = z.detach().requires_grad_(True)
    out = f(z)
    rows = [torch.autograd.grad(out[:, i].sum(), z, retain_graph=True)[0] for i in range(out.shape[1])]
    return torch.stack(rows, dim=1)
    ### END SOLUTION

# %%
checks.ex02_2(jacobian_autograd)

# %% [markdown] slide=slide
# ## Exercise 3: how a linear map scales area
#
# A region of area `area` is mapped by the $2\times 2$ matrix `A`. Write `image_area(A, area)` returning
# the area of its image as a float. ($J = [[3, 1], [0, 2]]$ maps the unit square to a parallelogram of
# area 6.)

# %%
def image_area(A: torch.Tensor, area: float) -> float:
    ### BEGIN SOLUTION
    return abs(torch.linalg.det(A).item()) * area
    ### END SOLUTION

# %%
checks.ex02_3(image_area)

# %% [markdown] slide=slide
# ## Exercise 4: the density of a linear map of a Gaussian
#
# With $z \sim \mathcal N(0, I_2)$ and $x = A z$ for an invertible `A`, write `log_density_linear(x, A)`
# returning $\log p_X(x)$ for a batch `x` of shape `(batch, 2)`, by the change of variables (use a
# standard normal for $z$, not `MultivariateNormal(0, A A^T)`).

# %%
def log_density_linear(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    z = torch.linalg.solve(A, x.T).T
    log_base = -0.5 * (z ** 2).sum(dim=1) - torch.log(torch.tensor(2 * torch.pi))
    return log_base - torch.log(torch.linalg.det(A).abs())
    ### END SOLUTION

# %%
checks.ex02_4(log_density_linear)

# %% [markdown] slide=slide
# ## Exercise 5: where a map stops being invertible
#
# The map $f_k(z) = z + k \sin z$ acts on each coordinate separately. Write `is_invertible(k)` returning
# `True` when $f_k$ is a bijection of the real line and `False` otherwise. Think about the sign of
# $f_k'(z)$ for every $z$.

# %%
def is_invertible(k: float) -> bool:
    ### BEGIN SOLUTION
    return abs(k) <= 1
    ### END SOLUTION

# %%
checks.ex02_5(is_invertible)

# %% [markdown] slide=slide
# ## Before you go
#
# - Why does $|\det J|$, not $\det J$, scale areas, and why does a density need the absolute value too?
# - At $|k| = 1$ the derivative of $z + k \sin z$ touches zero at isolated points, yet the map is still
#   a bijection. Is its inverse differentiable everywhere?

# %% [markdown] slide=slide
# # Worksheet 06: autoregressive flows
#
# Companion to lecture `06_autoregressive_flows`. Fill in each `# YOUR CODE HERE`, run the cell, then
# its check.
#
# In an affine autoregressive flow each coordinate is scaled and shifted by parameters that depend only
# on the coordinates before it. For MAF, with latent $z$ and data $x$:
# $$x_i = z_i\,\exp\big(s_i(x_{<i})\big) + \mu_i(x_{<i}), \qquad \log|\det J_f| = \textstyle\sum_i s_i.$$
# A *conditioner* `cond(x)` returns `(mu, s)`, each of shape `(batch, d)`, where column `i` depends only on
# `x[:, :i]`.

# %% slide=skip
import torch

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: MADE masks
#
# MADE gives every unit a degree: input $i$ has degree equal to its position in the order (1..d), each
# hidden unit a degree in 1..d-1, each output the degree of the input it predicts. Write
# `made_masks(degrees)`: `degrees` is a list of integer tensors (inputs, hidden layers..., outputs);
# return one float mask per weight matrix, shape `(out_features, in_features)` like `nn.Linear.weight`, so
# that output $i$ depends only on inputs of smaller degree.

# %%
def made_masks(degrees):
    ### BEGIN SOLUTION
    masks = []
    for k in range(len(degrees) - 1):
        d_in, d_out = degrees[k], degrees[k + 1]
        allowed = d_out[:, None] > d_in[None, :] if k == len(degrees) - 2 else d_out[:, None] >= d_in[None, :]
        masks.append(allowed.double())
    return masks
    ### END SOLUTION

# %%
checks.ex06_1(made_masks)

# %% [markdown] slide=slide
# ## Exercise 2: MAF's density direction
#
# Write `maf_inverse(x, cond)` returning `(z, log_det)` with `log_det` $= \log|\det J_{f^{-1}}(x)|$. The
# check counts how often you call `cond`.

# %%
def maf_inverse(x, cond):
    ### BEGIN SOLUTION
    mu, s = cond(x)
    return (x - mu) * torch.exp(-s), -s.sum(dim=1)
    ### END SOLUTION

# %%
checks.ex06_2(maf_inverse)

# %% [markdown] slide=slide
# ## Exercise 3: MAF's sampling direction
#
# Write `maf_forward(z, cond)` returning `(x, log_det)` with `log_det` $= \log|\det J_f(z)|$. How many
# calls of `cond` do you need, and why?

# %%
def maf_forward(z, cond):
    ### BEGIN SOLUTION
    x = torch.zeros_like(z)
    for i in range(z.shape[1]):
        mu, s = cond(x)
        x = x.clone()
        x[:, i] = z[:, i] * torch.exp(s[:, i]) + mu[:, i]
    mu, s = cond(x)
    return x, s.sum(dim=1)
    ### END SOLUTION

# %%
checks.ex06_3(maf_forward)

# %% [markdown] slide=slide
# ## Exercise 4: what is fast
#
# IAF is the mirror image of MAF: $x_i = z_i \exp(s_i(z_{<i})) + \mu_i(z_{<i})$. Write
# `passes_needed(flow, operation, d)` returning the number of sequential conditioner passes that
# `flow` (`"MAF"` or `"IAF"`) needs for `operation` (`"density"` of given data, or `"sampling"`) in
# dimension `d`.

# %%
def passes_needed(flow, operation, d):
    ### BEGIN SOLUTION
    one_pass = (flow, operation) in (("MAF", "density"), ("IAF", "sampling"))
    return 1 if one_pass else d
    ### END SOLUTION

# %%
checks.ex06_4(passes_needed)

# %% [markdown] slide=slide
# ## Before you go
#
# - A VAE's posterior is sampled and then evaluated at its own samples. Which of MAF and IAF fits, and why
#   can it avoid the slow direction altogether?
# - A coupling layer is an autoregressive flow with two blocks. What does it give up, and what does it gain?

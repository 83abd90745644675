# %% [markdown] slide=slide
# # Worksheet 04: coupling layers
#
# Companion to lecture `04_coupling_layers`. Fill in each `# YOUR CODE HERE`, run the cell, then its check.
#
# An affine coupling layer splits $z$ with a boolean `mask` (True marks $z_b$, the part that is
# transformed; False marks $z_a$, the part that is copied):
# $$x_a = z_a, \qquad x_b = z_b \odot \exp\big(s(z_a)\big) + t(z_a), \qquad \log|\det J| = \textstyle\sum_{i \in b} s_i(z_a).$$
# Here the networks `s_net` and `t_net` take a full-length vector in which the $z_b$ entries are zeroed,
# `z * ~mask`, and return a full-length output of which only the $z_b$ entries are used.

# %% slide=skip
import torch

from course_lib import checks, datasets, models
from course_lib.training import fit
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: the forward map
#
# Write `coupling_forward(z, mask, s_net, t_net)` returning `(x, log_det)` for a batch `z` of shape
# `(batch, d)`; `log_det` has shape `(batch,)`. The seed example: $z = (1, 3)$, $s = 0.5$, $t = 2$ gives
# $x = (1, 6.946)$ and log-det $0.5$.

# %%
def coupling_forward(z, mask, s_net, t_net):
    ### BEGIN SOLUTION
    conditioner_input = z * ~mask
    s, t = s_net(conditioner_input), t_net(conditioner_input)
    x = torch.where(mask, z * torch.exp(s) + t, z)
    return x, (s * mask).sum(dim=1)
    ### END SOLUTION

# %%
checks.ex04_1(coupling_forward)

# %% [markdown] slide=slide
# ## Exercise 2: the inverse map
#
# Write `coupling_inverse(x, mask, s_net, t_net)` returning `(z, log_det_inverse)`. You never need the
# inverse of `s_net` or `t_net`: why?

# %%
def coupling_inverse(x, mask, s_net, t_net):
    ### BEGIN SOLUTION
    known = x * ~mask
    s, t = s_net(known), t_net(known)
    z = torch.where(mask, (x - t) * torch.exp(-s), x)
    return z, -(s * mask).sum(dim=1)
    ### END SOLUTION

# %%
checks.ex04_2(coupling_inverse)

# %% [markdown] slide=slide
# ## Exercise 3: alternating masks
#
# One coupling layer leaves half the coordinates untouched. Write `alternating_masks(dim, n_layers)`
# returning a list of `n_layers` boolean masks of shape `(dim,)` that split the coordinates in halves
# and alternate, so that each layer transforms what the previous one copied.

# %%
def alternating_masks(dim, n_layers):
    ### BEGIN SOLUTION
    first = torch.arange(dim) % 2 == 1
    return [first if k % 2 == 0 else ~first for k in range(n_layers)]
    ### END SOLUTION

# %%
checks.ex04_3(alternating_masks)

# %% [markdown] slide=slide
# ## Exercise 4: train RealNVP and look at it
#
# Write `train_realnvp()` that builds `models.realnvp(2, n_layers, hidden)` (choose the sizes), trains it
# on `datasets.get("two_moons")` with `fit` (forward KL) and returns it. The check measures the NLL on fresh
# samples; below 2.1 nats passes. Then plot the model's density next to the data: where does it put mass
# that the data do not have, and why would a flow have to?

# %%
def train_realnvp():
    ### BEGIN SOLUTION
    torch.manual_seed(0)
    model = models.realnvp(2, 6, 32)
    fit(model, datasets.get("two_moons"), steps=800, batch_size=256, lr=5e-3, clip_grad=1.0)
    return model
    ### END SOLUTION

# %%
checks.ex04_4(train_realnvp)

# %% [markdown] slide=slide
# ## Before you go
#
# - With a raw multiplicative scale, $x_b = s \odot z_b + t$, what goes wrong when some $s_i = 0$? How does
#   $\exp(s)$ avoid it?
# - An additive coupling (NICE) has log-det 0. What can a stack of them never change about a density?

# %% [markdown] slide=slide
# # Worksheet 03: composing flows
#
# Companion to lecture `03_composing_flows`. Fill in each `# YOUR CODE HERE`, run the cell, then its check.
#
# A flow is a chain $x = f_K(\cdots f_1(z))$. Every `course_lib` flow returns its output **and** the log
# absolute determinant of the map it applied: `flow(z) -> (x, log|det J_f|)`,
# `flow.inverse(x) -> (z, log|det J_{f^{-1}}|)`. So
# $$\log p_X(x) = \log p_Z(z_0) + \sum_{k=1}^{K} \log\big|\det J_{f_k^{-1}}(z_k)\big|, \qquad z_K = x.$$

# %% slide=skip
import torch
from torch.distributions import Normal

from course_lib import checks
from course_lib.checks.ws03 import banana_log_prob
from course_lib.flows import Affine, Planar
from course_lib.model import NormalizingFlow
from course_lib.training import fit
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: the log-likelihood of a composed flow
#
# Write `composed_log_prob(x, flows, base_log_prob)`: `flows` is a list of flows in the order they are
# applied to a latent sample, `base_log_prob(z)` returns $\log p_Z$ per sample. Return $\log p_X(x)$,
# shape `(batch,)`, using each flow's `inverse` (not `NormalizingFlow`).

# %%
def composed_log_prob(x, flows, base_log_prob):
    ### BEGIN SOLUTION
    total = torch.zeros(x.shape[0], dtype=x.dtype)
    for flow in reversed(flows):
        x, log_det = flow.inverse(x)
        total = total + log_det
    return base_log_prob(x) + total
    ### END SOLUTION

# %%
checks.ex03_1(composed_log_prob)

# %% [markdown] slide=slide
# ## Exercise 2: the planar log-determinant
#
# The planar map $f(z) = z + u\,h(w^\top z + b)$ with $h = \tanh$ has $J = I + h'(w^\top z + b)\, u\, w^\top$.
# Use the matrix determinant lemma $\det(I + u\psi^\top) = 1 + \psi^\top u$ to write
# `planar_log_det(z, u, w, b)`, returning $\log|\det J|$ per sample (shape `(batch,)`) in $O(d)$.
# The worked example $u = (1, 0)$, $w = (1, 2)$, $b = 0$, $z = (0.5, -0.5)$ gives $0.580$.

# %%
def planar_log_det(z, u, w, b):
    ### BEGIN SOLUTION
    h_prime = 1 - torch.tanh(z @ w + b) ** 2
    return torch.log((1 + h_prime * torch.dot(w, u)).abs())
    ### END SOLUTION

# %%
checks.ex03_2(planar_log_det)

# %% [markdown] slide=slide
# ## Exercise 3: one maximum-likelihood step
#
# Training by maximum likelihood minimises the mean negative log-likelihood, which is the forward KL to
# the data up to a constant. Write `mle_step(model, optimizer, batch)`: one optimisation step on `batch`
# that returns the loss *before* the step as a float.

# %%
def mle_step(model, optimizer, batch):
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    loss = -model.log_prob(batch).mean()
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION

# %%
checks.ex03_3(mle_step)

# %% [markdown] slide=slide
# ## Exercise 4: train a planar flow
#
# `banana_log_prob(x)` is a normalised density shaped like a banana. Write `train_planar_flow(log_target)`
# that builds a `NormalizingFlow` with `Planar` layers (an `Affine` first helps), trains it by **reverse
# KL** with `course_lib.training.fit(..., objective="reverse_kl", log_target=log_target)`, and returns it.
# The check estimates $\mathrm{KL}(q\,\|\,p)$ of your model; it passes below 0.15 nats. Keep training
# under half a minute.

# %%
def train_planar_flow(log_target):
    ### BEGIN SOLUTION
    torch.manual_seed(0)
    model = NormalizingFlow(2, [Affine(2)] + [Planar(2) for _ in range(8)])
    fit(model, objective="reverse_kl", log_target=log_target, steps=400, batch_size=256, lr=1e-2)
    return model
    ### END SOLUTION

# %%
checks.ex03_4(train_planar_flow)

# %% [markdown] slide=slide
# ## Before you go
#
# - Why is $\det J_f = 1 / \det J_{f^{-1}}$, and what does it mean for the signs of the two log-dets?
# - Sampling needs only the forward direction and one draw from the base. Which direction does
#   maximum-likelihood training need, and which does reverse-KL training need?

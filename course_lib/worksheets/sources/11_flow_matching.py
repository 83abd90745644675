# %% [markdown] slide=slide
# # Worksheet 11: flow matching
#
# Companion to lecture `11_flow_matching`. Fill in each `# YOUR CODE HERE`, run the cell, then its check.
#
# Flow matching trains the vector field of a CNF by regression onto the velocity of straight paths
# $x_t = (1 - t)\,x_0 + t\,x_1$ from a base sample $x_0$ to a data sample $x_1$:
# $$\mathcal L = \mathbb E_{t, x_0, x_1}\,\big\|f(t, x_t) - (x_1 - x_0)\big\|^2 .$$
# No ODE is solved during training; the exact likelihood is still available afterwards.

# %% slide=skip
import torch

from course_lib import checks, models
from course_lib.checks.ws11 import gaussian_data
from course_lib.continuous import flow_matching_loss
from course_lib.training import fit
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: the loss
#
# Write `fm_loss(field, x1, x0, t)` for a batch of data `x1` and base samples `x0` (shape `(batch, d)`) and
# times `t` (shape `(batch,)`); `field(t, x)` takes the times and the points. Return the loss as a scalar
# tensor: the mean over the batch of the squared norm.

# %%
def fm_loss(field, x1, x0, t):
    ### BEGIN SOLUTION
    tt = t[:, None]
    xt = (1 - tt) * x0 + tt * x1
    return (field(t, xt) - (x1 - x0)).pow(2).sum(dim=1).mean()
    ### END SOLUTION

# %%
checks.ex11_1(fm_loss)

# %% [markdown] slide=slide
# ## Exercise 2: train a CNF without a solver
#
# Write `train_flow_matching(sample)` (where `sample(n)` draws `n` data points) that builds
# `models.cnf(2, ...)` (a `NormalizingFlow` whose only flow is a CNF), trains it with
# `fit(model, sample, loss_fn=flow_matching_loss, ...)` and returns the model.
# The check measures the gap between its exact test NLL and the data's entropy: below 0.1 nats passes.
# A few seconds of training suffice.

# %%
def train_flow_matching(sample):
    ### BEGIN SOLUTION
    torch.manual_seed(0)
    model = models.cnf(2, hidden=32, n_hidden=2)
    fit(model, sample, loss_fn=flow_matching_loss, steps=400, batch_size=256, lr=3e-3)
    return model
    ### END SOLUTION

# %%
checks.ex11_2(train_flow_matching)

# %% [markdown] slide=slide
# ## Exercise 3: what a training step costs
#
# Write `count_evaluations(model, x)` returning `(n_flow_matching, n_likelihood)`: how many times the
# vector field is evaluated by one `flow_matching_loss(model, x)` and by one `model.log_prob(x)`. The
# model's CNF is `model.flows[0]`, and its field `model.flows[0].vector_field` is a module: count its
# calls with `register_forward_hook` (and remove the hook afterwards).

# %%
def count_evaluations(model, x):
    ### BEGIN SOLUTION
    calls = [0]

    def count(module, inputs, output):
        calls[0] += 1

    hook = model.flows[0].vector_field.register_forward_hook(count)
    try:
        flow_matching_loss(model, x)
        n_fm = calls[0]
        calls[0] = 0
        with torch.no_grad():
            model.log_prob(x)
        n_ml = calls[0]
    finally:
        hook.remove()
    return n_fm, n_ml
    ### END SOLUTION

# %%
checks.ex11_3(count_evaluations)

# %% [markdown] slide=slide
# ## Exercise 4: the gap to the entropy
#
# For data with a known entropy $H$, the test NLL of a model minus $H$ is $\mathrm{KL}(p_\text{data}\,\|\,q)$.
# Write `gap_to_entropy(model, data, n)` estimating it from `n` fresh samples of `data` (a torch distribution
# with `sample` and `entropy()`), as a float.

# %%
def gap_to_entropy(model, data, n):
    ### BEGIN SOLUTION
    x = data.sample((n,))
    with torch.no_grad():
        nll = -model.log_prob(x).mean().item()
    return nll - data.entropy().item()
    ### END SOLUTION

# %%
checks.ex11_4(gap_to_entropy)

# %% [markdown] slide=slide
# ## Before you go
#
# - Each conditional path is straight, yet the learned field's trajectories are not always straight. Why?
# - Which training method would you use for a 1000-dimensional CNF, and what would you still need the
#   ODE solver for?

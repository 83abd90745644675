# %% [markdown] slide=slide
# # Worksheet 08: forward and reverse KL
#
# Companion to lecture `08_forward_vs_reverse_kl`. Fill in each `# YOUR CODE HERE`, run the cell, then its
# check.
#
# Forward KL, $\mathrm{KL}(p\,\|\,q)$, needs samples of the target and trains density estimation. Reverse
# KL, $\mathrm{KL}(q\,\|\,\tilde p/Z) = \mathbb E_q[\log q - \log \tilde p] + \log Z$, needs only values of an
# unnormalised $\tilde p$ and trains a sampler. Importance weights $w = \tilde p(x)/q(x)$, $x \sim q$, tell
# how good that sampler is.

# %% slide=skip
import math

import torch

from course_lib import checks, models
from course_lib.targets import banana_log_prob
from course_lib.training import fit
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: the reverse-KL loss
#
# Write `reverse_kl_loss(model, log_target, n)` returning the Monte Carlo estimate of
# $\mathbb E_q[\log q(x) - \log\tilde p(x)]$ from `n` samples of the `NormalizingFlow` `model`, as a scalar
# tensor that can be backpropagated to the model's parameters (not `model.reverse_kl`).

# %%
def reverse_kl_loss(model, log_target, n):
    ### BEGIN SOLUTION
    x, log_q = model.sample_and_log_prob(n)
    return (log_q - log_target(x)).mean()
    ### END SOLUTION

# %%
checks.ex08_1(reverse_kl_loss)

# %% [markdown] slide=slide
# ## Exercise 2: effective sample size
#
# Write `effective_sample_size(log_w)` returning $(\sum_i w_i)^2 / \sum_i w_i^2$ from the log-weights, as a
# float. It must work for log-weights around 1000.

# %%
def effective_sample_size(log_w):
    ### BEGIN SOLUTION
    w = torch.softmax(log_w, dim=0)
    return 1.0 / (w ** 2).sum().item()
    ### END SOLUTION

# %%
checks.ex08_2(effective_sample_size)

# %% [markdown] slide=slide
# ## Exercise 3: estimating the normalising constant
#
# $Z = \mathbb E_q[\tilde p(x)/q(x)]$. Write `log_normaliser(log_w)` returning the estimate of $\log Z$ from
# the log-weights, as a float, stable for large log-weights.

# %%
def log_normaliser(log_w):
    ### BEGIN SOLUTION
    return (torch.logsumexp(log_w, dim=0) - math.log(len(log_w))).item()
    ### END SOLUTION

# %%
checks.ex08_3(log_normaliser)

# %% [markdown] slide=slide
# ## Exercise 4: train a sampler
#
# Write `train_sampler(log_target)` that builds a flow (e.g. `models.realnvp(2, 6, 32)`), trains it by
# reverse KL and returns it. The check passes when the effective sample size exceeds half the samples.

# %%
def train_sampler(log_target):
    ### BEGIN SOLUTION
    torch.manual_seed(0)
    model = models.realnvp(2, 6, 32)
    fit(model, objective="reverse_kl", log_target=log_target, steps=500, batch_size=256, lr=3e-3)
    return model
    ### END SOLUTION

# %%
checks.ex08_4(train_sampler)

# %% [markdown] slide=slide
# ## Exercise 5: which objective
#
# Write `which_objective(have_samples, have_unnormalised_density)` returning `"forward"` or `"reverse"`:
# the objective you can train with when you have only samples of the target, or only values of an
# unnormalised density.

# %%
def which_objective(have_samples, have_unnormalised_density):
    ### BEGIN SOLUTION
    return "forward" if have_samples else "reverse"
    ### END SOLUTION

# %%
checks.ex08_5(which_objective)

# %% [markdown] slide=slide
# ## Before you go
#
# - A sampler trained by reverse KL on a two-mode target may cover only one mode. What would its ESS look
#   like, and would the log Z estimate notice?
# - Why can a negative log-likelihood be negative, and why does that not make the model "better than
#   perfect"?

# %% [markdown] slide=slide
# # Worksheet 12: applications
#
# Companion to lecture `12_applications`. Fill in each `# YOUR CODE HERE`, run the cell, then its check.
#
# A flow gives an exact $\log p(x)$, which is what anomaly detection needs; and a flow applied to a simple
# posterior sample keeps track of its density, which is what a VAE with a flow posterior needs.

# %% slide=skip
import torch

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: anomaly scores
#
# Write `anomaly_scores(model, x)` returning one score per sample (shape `(batch,)`), larger for points the
# `NormalizingFlow` `model` finds less likely, without gradients.

# %%
def anomaly_scores(model, x):
    ### BEGIN SOLUTION
    with torch.no_grad():
        return -model.log_prob(x)
    ### END SOLUTION

# %%
checks.ex12_1(anomaly_scores)

# %% [markdown] slide=slide
# ## Exercise 2: AUROC
#
# Write `auroc(normal_scores, anomalous_scores)` returning the area under the ROC curve as a float: the
# probability that a random anomaly scores higher than a random normal point, counting ties as one half
# (no scikit-learn).

# %%
def auroc(normal_scores, anomalous_scores):
    ### BEGIN SOLUTION
    diff = anomalous_scores[:, None] - normal_scores[None, :]
    return ((diff > 0).double() + 0.5 * (diff == 0).double()).mean().item()
    ### END SOLUTION

# %%
checks.ex12_2(auroc)

# %% [markdown] slide=slide
# ## Exercise 3: choosing a threshold
#
# Flagging every point whose score exceeds a threshold flags some normal points too. Write
# `threshold_for_fpr(normal_scores, fpr)` returning the threshold that flags a fraction `fpr` of the
# normal scores, as a float.

# %%
def threshold_for_fpr(normal_scores, fpr):
    ### BEGIN SOLUTION
    return torch.quantile(normal_scores, 1 - fpr).item()
    ### END SOLUTION

# %%
checks.ex12_3(threshold_for_fpr)

# %% [markdown] slide=slide
# ## Exercise 4: a flow posterior
#
# In a VAE with a flow posterior, $z_0 \sim q_0(z \mid x)$ (a Gaussian from the encoder) is pushed through
# flows $z_K = f_K(\cdots f_1(z_0))$. Write `flow_posterior(z0, log_q0, flows)` returning `(z_K, log_q_K)`,
# where `flows` is a list of `course_lib` flows and `log_q0` the log-density of each `z0`. The ELBO then uses
# $\log q_K(z_K \mid x)$ in place of the Gaussian's.

# %%
def flow_posterior(z0, log_q0, flows):
    ### BEGIN SOLUTION
    z, log_q = z0, log_q0
    for flow in flows:
        z, log_det = flow(z)
        log_q = log_q - log_det
    return z, log_q
    ### END SOLUTION

# %%
checks.ex12_4(flow_posterior)

# %% [markdown] slide=slide
# ## Before you go
#
# - A flow trained on digits can give high likelihood to a blank image. Why does that make "low density =
#   anomaly" fragile, and what would you check before trusting the scores?
# - Which of autoregressive models, flows, VAEs, GANs and diffusion models give an exact $\log p(x)$, and
#   which sample in one pass?

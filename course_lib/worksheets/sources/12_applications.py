# %% [markdown] slide=slide
# # Worksheet 12: applications
#
# Companion to lecture `12_applications`. Fill in each `# YOUR CODE HERE`, run the cell, then its check.
#
# A flow gives an exact $\log p(x)$, which is what anomaly detection needs; a flow applied to a simple
# posterior sample keeps track of its density, which is what a VAE with a flow posterior needs; and a flow
# fitted to a VAE's codes is a prior that raises the VAE's ELBO.

# %% slide=skip
import torch

from course_lib import checks
from course_lib.models import realnvp
from course_lib.training import fit
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
# ## Exercise 5: a flow prior that raises a VAE's ELBO
#
# In lecture 12 a flow *prior* raised a VAE's ELBO, and its $\log p(x)$, by about 3 nats per image, while a flow
# posterior moved the ELBO by a tenth of a nat. Here is the reason in one line: with the encoder and decoder
# fixed, the ELBO depends on the prior only through the mean of $\log p(z)$ over the codes $z \sim q(z \mid x)$
# of the data,
#
# $$
# \text{ELBO} = \underbrace{\mathbb{E}\big[\log p(x \mid z) - \log q(z \mid x)\big]}_{\text{does not involve the prior}}
# + \mathbb{E}\big[\log p(z)\big].
# $$
#
# So the best prior is the density that fits the cloud of codes by maximum likelihood, and replacing $N(0, I)$
# by it raises the ELBO by exactly the gain in mean $\log p(z)$ at the codes.
#
# Write `fit_flow_prior(codes)`: given codes of shape `(n, 2)` (a few elongated clusters, as the codes of a VAE
# trained on several classes), return a trained `NormalizingFlow` on two dimensions; its base $N(0, I)$ and its
# flow $g$ make the prior $z = g(u)$. The check draws fresh codes from the same distribution and measures how
# much your prior raises the mean $\log p(z)$, and so the ELBO, over $N(0, I)$. `realnvp` and `fit` are
# imported above.

# %%
def fit_flow_prior(codes):
    ### BEGIN SOLUTION
    model = realnvp(2, n_layers=4, hidden=32)
    fit(model, codes, steps=600, batch_size=256, lr=5e-3, schedule="cosine", progress=False)
    return model
    ### END SOLUTION

# %%
checks.ex12_5(fit_flow_prior)

# %% [markdown] slide=slide
# ## Before you go
#
# - A flow trained on digits can give high likelihood to a blank image. Why does that make "low density =
#   anomaly" fragile, and what would you check before trusting the scores?
# - Which of autoregressive models, flows, VAEs, GANs and diffusion models give an exact $\log p(x)$, and
#   which sample in one pass?
# - A flow posterior can only move the ELBO towards $\log p(x)$; a flow prior can raise $\log p(x)$ itself.
#   Why the difference?

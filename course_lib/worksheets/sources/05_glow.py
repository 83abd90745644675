# %% [markdown] slide=slide
# # Worksheet 05: Glow
#
# Companion to lecture `05_glow`. Fill in each `# YOUR CODE HERE`, run the cell, then its check.
# Images are batches of shape `(B, C, H, W)`.

# %% slide=skip
import math

import torch

from course_lib import checks
from course_lib.utils import notebook_setup

gen = notebook_setup(seed=0)

# %% [markdown] slide=slide
# ## Exercise 1: ActNorm's initialisation
#
# ActNorm maps latent to data by $x = z \cdot \text{scale} + \text{bias}$, one scale and bias per channel.
# It is initialised from the first batch of data so that $z = (x - \text{bias}) / \text{scale}$ has zero
# mean and unit variance in every channel. Write `actnorm_init(x)` returning `(scale, bias)`, each of shape
# `(C,)`.

# %%
def actnorm_init(x):
    ### BEGIN SOLUTION
    bias = x.mean(dim=(0, 2, 3))
    scale = x.std(dim=(0, 2, 3), unbiased=False)
    return scale, bias
    ### END SOLUTION

# %%
checks.ex05_1(actnorm_init)

# %% [markdown] slide=slide
# ## Exercise 2: the log-det of a 1x1 convolution
#
# A 1x1 convolution applies the same $C \times C$ matrix $W$ at each of the $H \cdot W$ positions. Write
# `conv1x1_log_det(W, height, width)` returning its log-determinant as a float, computed from an LU
# decomposition (`torch.linalg.lu` gives `P, L, U`), not from `det` or `slogdet`. The seed example: $U$ with
# diagonal $(2, 0.5, 0.8)$ on a $32 \times 32$ image gives $-228.5$.

# %%
def conv1x1_log_det(W, height, width):
    ### BEGIN SOLUTION
    _, _, U = torch.linalg.lu(W)
    return height * width * torch.log(torch.diagonal(U).abs()).sum().item()
    ### END SOLUTION

# %%
checks.ex05_2(conv1x1_log_det)

# %% [markdown] slide=slide
# ## Exercise 3: bits per dimension
#
# A model was trained on dequantized images scaled to $[0, 1]$ by dividing by `levels` (17 for the 8x8
# digits, 256 for 8-bit images). Its negative log-likelihood per image is `nll` nats **on that scale**.
# Write `bits_per_dim(nll, num_dims, levels)` returning bits per dimension on the original pixel scale.

# %%
def bits_per_dim(nll, num_dims, levels):
    ### BEGIN SOLUTION
    return (nll + num_dims * math.log(levels)) / (num_dims * math.log(2))
    ### END SOLUTION

# %%
checks.ex05_3(bits_per_dim)

# %% [markdown] slide=slide
# ## Exercise 4: squeeze
#
# Write `squeeze(x)` turning `(B, C, H, W)` into `(B, 4C, H/2, W/2)`: each 2x2 block of pixels of a channel
# becomes four channels at one position. It changes no value, so its log-det is 0.

# %%
def squeeze(x):
    ### BEGIN SOLUTION
    B, C, H, W = x.shape
    blocks = x.reshape(B, C, H // 2, 2, W // 2, 2)
    return blocks.permute(0, 1, 3, 5, 2, 4).reshape(B, 4 * C, H // 2, W // 2)
    ### END SOLUTION

# %%
checks.ex05_4(squeeze)

# %% [markdown] slide=slide
# ## Before you go
#
# - A rotation matrix as the 1x1 convolution has log-det 0. Why is a learned $W$ more useful than a
#   fixed permutation of channels?
# - Without dequantization, a continuous density can put infinite density on the discrete pixel values.
#   What does adding uniform noise guarantee about the NLL?

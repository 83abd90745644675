"""Checks of worksheet 05: ActNorm initialisation, the LU log-det, bits per dimension, squeeze."""
from __future__ import annotations

import math

import torch

from .core import Fail, as_tensor, call, check, fresh_generator, require

WS = "05_glow"



@check("ex05_1", WS, "ActNorm's data-dependent initialisation")
def ex05_1(actnorm_init):
    g = fresh_generator()
    C = 3
    mean = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    std = torch.tensor([0.5, 3.0, 1.5], dtype=torch.float64)
    x = mean[None, :, None, None] + std[None, :, None, None] * torch.randn(16, C, 5, 5, generator=g,
                                                                           dtype=torch.float64)
    result = call(actnorm_init, x.clone(), label="a batch of shape (16, 3, 5, 5)")
    require(isinstance(result, tuple) and len(result) == 2, "actnorm_init should return (scale, bias)")
    scale, bias = result
    if isinstance(scale, torch.Tensor) and scale.shape == (C, 5, 5):
        raise Fail("your scale has shape (C, H, W): ActNorm keeps one scale per channel, so average over "
                   "the batch and both spatial dimensions")
    scale, bias = as_tensor(scale, "scale", (C,)), as_tensor(bias, "bias", (C,))
    require(bool((scale != 0).all()), "a scale of 0 is not invertible")
    z = (x - bias[None, :, None, None]) / scale[None, :, None, None]
    zm, zs = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3), unbiased=False)
    require(torch.allclose(zm, torch.zeros(C, dtype=torch.float64), atol=1e-8),
            "after your initialisation the batch does not have zero mean per channel: the bias is the "
            "per-channel mean over batch, height and width")
    if not torch.allclose(zs, torch.ones(C, dtype=torch.float64), atol=1e-6):
        emp = x.std(dim=(0, 2, 3), unbiased=False)
        require(not torch.allclose(scale, 1 / emp, rtol=1e-4),
                "your scale is 1/std: in x = z * scale + bias the scale multiplies z, so it is the std itself")
        raise Fail("after your initialisation the batch does not have unit variance per channel; compute the "
                   "standard deviation over batch, height and width, channel by channel")
    return "correct: the first batch comes out with zero mean and unit variance per channel"


@check("ex05_2", WS, "the log-det of an LU 1x1 convolution")
def ex05_2(conv1x1_log_det):
    g = fresh_generator()
    for c, h, w in ((3, 32, 32), (4, 8, 6), (5, 3, 7)):
        W = torch.randn(c, c, generator=g, dtype=torch.float64)
        got = as_tensor(call(conv1x1_log_det, W.clone(), h, w, label=f"a {c}x{c} weight on {h}x{w}"),
                        f"conv1x1_log_det(W, {h}, {w})")
        want = h * w * torch.linalg.slogdet(W)[1].item()
        require(got.numel() == 1, "return one number")
        if abs(got.item() - want) < 1e-6 * max(1, abs(want)):
            continue
        require(abs(got.item() - want / (h * w)) > 1e-6 * max(1, abs(want)),
                f"for a {c}x{c} weight on a {h}x{w} image you returned log|det W| once: the same matrix "
                "acts at every one of the H*W positions")
        raise Fail(f"for a {c}x{c} weight on a {h}x{w} image your log-det is wrong; with W = P L U, "
                   "log|det W| is the sum of log|U_ii| (the permutation and the unit-diagonal L add nothing)")
    return "correct, including weights with negative pivots"


@check("ex05_3", WS, "bits per dimension")
def ex05_3(bits_per_dim):
    g = fresh_generator()
    for levels, D in ((17, 64), (256, 3 * 32 * 32)):
        nll = (torch.rand(1, generator=g).item() - 0.8) * D  # per image, in nats, data scaled to [0, 1]
        got = as_tensor(call(bits_per_dim, nll, D, levels, label=f"{levels} levels, D = {D}"),
                        "bits_per_dim(nll, num_dims, levels)")
        want = (nll + D * math.log(levels)) / (D * math.log(2))
        if abs(got.item() - want) < 1e-8:
            continue
        require(abs(got.item() - nll / (D * math.log(2))) > 1e-8,
                f"for {levels} levels you forgot that the density was measured on data divided by {levels}: "
                "scaling each of the D coordinates by 1/levels multiplies the density by levels^D")
        require(abs(got.item() - (nll + D * math.log(levels)) / D) > 1e-8,
                "your result is in nats per dimension: bits need a division by ln 2")
        raise Fail(f"for {levels} levels and D = {D} your bits/dim are wrong; a uniform model on [0, 1] "
                   f"(NLL 0) should score log2({levels})")
    return "correct: a uniform model scores log2(levels)"


@check("ex05_4", WS, "squeeze")
def ex05_4(squeeze):
    g = fresh_generator()
    x = torch.randn(2, 3, 6, 4, generator=g, dtype=torch.float64)
    y = as_tensor(call(squeeze, x.clone(), label="a batch of shape (2, 3, 6, 4)"), "squeeze(x)", (2, 12, 3, 2))
    for b in range(2):
        for c in range(3):
            for i in range(3):
                for j in range(2):
                    block = x[b, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].flatten().sort().values
                    here = y[b, :, i, j]
                    found = sum(int(torch.isclose(here, v).any()) for v in block)
                    require(found == 4, f"output position ({i}, {j}) does not hold the four pixels of the 2x2 "
                                        f"block at rows {2 * i}-{2 * i + 1}, columns {2 * j}-{2 * j + 1}: a plain "
                                        "reshape mixes pixels from different blocks; reshape to "
                                        "(B, C, H/2, 2, W/2, 2) and move the two 2s next to C")
    require(torch.equal(y.flatten().sort().values, x.flatten().sort().values), "squeeze must only move values")
    return "correct: every 2x2 block becomes 4 channels at one position"

"""Checks of worksheet 04: affine coupling forward and inverse, masks, and training RealNVP."""
from __future__ import annotations

import torch
from torch import nn

from .. import datasets
from ..jacobian import log_abs_det_bruteforce
from ..model import NormalizingFlow
from .core import Fail, answer_pair, as_tensor, call, check, fresh_generator, require

WS = "04_coupling_layers"



def _nets(d, g):
    """Small random conditioner networks s and t (fed z * ~mask, as in the worksheet)."""
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    s = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, d)).double()
    t = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, d)).double()
    return s, t


def _mask(d, g):
    mask = torch.zeros(d, dtype=torch.bool)
    mask[torch.randperm(d, generator=g)[: d // 2]] = True
    return mask


def _coupling_reference(z, mask, s_net, t_net):
    z_a = z * ~mask
    s, t = s_net(z_a), t_net(z_a)
    x = torch.where(mask, z * torch.exp(s) + t, z)
    return x, (s * mask).sum(dim=1)



@check("ex04_1", WS, "affine coupling, forward")
def ex04_1(coupling_forward):
    g = fresh_generator()
    for d in (2, 5):
        s_net, t_net, mask = *_nets(d, g), _mask(d, g)
        z = torch.randn(8, d, generator=g, dtype=torch.float64)
        x, log_det = answer_pair(call(coupling_forward, z, mask, s_net, t_net, label=f"d = {d}"),
                           "coupling_forward", (8, d))
        want_x, want_ld = (v.detach() for v in _coupling_reference(z, mask, s_net, t_net))
        require(torch.allclose(x[:, ~mask], z[:, ~mask]), f"for d = {d} the coordinates where mask is False "
                "(z_a) must be copied unchanged")
        s_full = s_net(z).detach()
        require(not torch.allclose(x, torch.where(mask, z * s_full.exp() + t_net(z).detach(), z), atol=1e-8)
                or torch.allclose(x, want_x, atol=1e-8),
                f"for d = {d} the conditioner saw z_b itself: feed it z * ~mask, otherwise the Jacobian "
                "is no longer triangular and the inverse cannot recover z_b.")
        require(torch.allclose(x, want_x, atol=1e-8), f"for d = {d} the transformed coordinates are wrong: "
                                                       "x_b = z_b * exp(s) + t")
        require(not torch.allclose(log_det, s_net(z * ~mask).detach().sum(1), atol=1e-8),
                f"for d = {d} your log-det sums s over every coordinate; only the transformed ones "
                "(mask True) are scaled.")
        auto = log_abs_det_bruteforce(lambda v: _coupling_reference(v, mask, s_net, t_net)[0], z)
        require(torch.allclose(log_det, auto, atol=1e-8), f"for d = {d} your log-det differs from "
                                                           "log|det J| computed by autograd")
    return "correct: copy z_a, scale and shift z_b, log-det = sum of s over z_b"


@check("ex04_2", WS, "affine coupling, inverse")
def ex04_2(coupling_inverse):
    g = fresh_generator()
    for d in (2, 5):
        s_net, t_net, mask = *_nets(d, g), _mask(d, g)
        z = torch.randn(8, d, generator=g, dtype=torch.float64)
        x, ld = (v.detach() for v in _coupling_reference(z, mask, s_net, t_net))
        z_back, inv_ld = answer_pair(call(coupling_inverse, x, mask, s_net, t_net, label=f"d = {d}"),
                               "coupling_inverse", (8, d))
        x_a = x * ~mask
        wrong = torch.where(mask, (x - t_net(x_a)) * torch.exp(s_net(x_a)), x).detach()
        require(not torch.allclose(z_back, wrong, atol=1e-8),
                f"for d = {d} you multiplied by exp(s) again: undoing a scale by exp(s) divides by it.")
        unmasked = torch.where(mask, (x - t_net(x)) * torch.exp(-s_net(x)), x).detach()
        require(not torch.allclose(z_back, unmasked, atol=1e-8),
                f"for d = {d} the conditioner saw all of x: feed it x * ~mask, the copied coordinates "
                "(they equal z_a), which are all the forward pass showed it.")
        swapped = torch.where(mask, x * torch.exp(-s_net(x_a)) - t_net(x_a), x).detach()
        require(not torch.allclose(z_back, swapped, atol=1e-8),
                f"for d = {d} inverse(forward(z)) is not z: subtract the shift before undoing the scale")
        require(torch.allclose(z_back, z, atol=1e-8), f"for d = {d} inverse(forward(z)) is not z: undo "
                                                      "x_b = z_b * exp(s) + t step by step")
        require(not torch.allclose(inv_ld, ld, atol=1e-8),
                f"for d = {d} your inverse log-det has the forward sign; log|det J_f^-1| = -log|det J_f|.")
        require(torch.allclose(inv_ld, -ld, atol=1e-8), f"for d = {d} your inverse log-det is wrong")
    return "correct: inverse(forward(z)) = z and the log-dets are opposite"


@check("ex04_3", WS, "alternating masks")
def ex04_3(alternating_masks):
    for d, n in ((2, 2), (5, 4), (6, 3)):
        masks = call(alternating_masks, d, n, label=f"dim = {d}, n_layers = {n}")
        require(isinstance(masks, (list, tuple)) and len(masks) == n,
                f"for dim = {d}, n_layers = {n} return a list of {n} masks, got "
                f"{len(masks) if isinstance(masks, (list, tuple)) else type(masks).__name__}")
        for k, m in enumerate(masks):
            require(isinstance(m, torch.Tensor) and m.dtype == torch.bool and m.shape == (d,),
                    f"mask {k} should be a bool tensor of shape ({d},)")
            require(0 < int(m.sum()) < d, f"for dim = {d} mask {k} transforms {int(m.sum())} of {d} "
                                          "coordinates: a coupling layer must keep some and transform some")
        for k in range(n - 1):
            require(torch.equal(masks[k + 1], ~masks[k]),
                    f"for dim = {d} layers {k} and {k + 1} are not complementary: the coordinates one layer "
                    "copies should be the ones the next layer transforms")
        require(abs(int(masks[0].sum()) - d / 2) <= 0.5, f"for dim = {d} split the coordinates in halves")
    return "correct: complementary halves, so every coordinate is transformed"


@check("ex04_4", WS, "RealNVP trained on two moons", seconds=60)
def ex04_4(train_realnvp):
    model = call(train_realnvp, label="two moons")
    require(isinstance(model, NormalizingFlow), f"train_realnvp should return a NormalizingFlow, got "
                                                f"{type(model).__name__}")
    x = datasets.get("two_moons").sample(20000, generator=torch.Generator().manual_seed(99))
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        nll = -model.log_prob(x.to(dtype)).mean().item()
    require(nll == nll, "your model gives NaN log-densities on two moons")
    # two moons is a curve blurred by Gaussian noise of std 0.2: its entropy is at least the
    # noise's, log(2 pi e 0.2^2) = -0.38 nats, and no honest model's test NLL is below it
    require(nll > -0.45, f"the test NLL of your model is {nll:.3f} nats, below the entropy of two moons: "
                         "a density that does not integrate to 1")
    if nll > 2.1:
        raise Fail(f"the test NLL of your model is {nll:.3f} nats, above 2.1: train for more steps or with "
                   "more layers; is the objective the forward KL on samples of two_moons?")
    return "the test NLL is below 2.1 nats"

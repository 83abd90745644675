"""Checks of worksheet 12: anomaly scores, AUROC, a threshold, a flow posterior's density, and a
flow prior fitted to a VAE's codes."""
from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from ..flows import Affine, Planar
from ..model import NormalizingFlow
from .core import Fail, as_tensor, call, check, fresh_generator, require

WS = "12_applications"


def _reference_auroc(normal, anomalous):
    """P(anomalous score > normal score) + half the ties: the Mann-Whitney form."""
    diff = anomalous[:, None] - normal[None, :]
    return ((diff > 0).double() + 0.5 * (diff == 0).double()).mean().item()


@check("ex12_1", WS, "anomaly scores from a density")
def ex12_1(anomaly_scores):
    g = fresh_generator()
    model = NormalizingFlow(2, [Affine(2, scale=1 + torch.rand(2, generator=g), shift=torch.randn(2, generator=g)),
                                Planar(2)]).double()
    x = 3 * torch.randn(30, 2, generator=g, dtype=torch.float64)
    got = as_tensor(call(anomaly_scores, model, x.clone(), label="a 2D flow"), "anomaly_scores(model, x)", (30,))
    want = -model.log_prob(x).detach()
    if torch.allclose(got, want, atol=1e-8):
        return "correct: the negative log-likelihood"
    require(not torch.allclose(got, -want, atol=1e-8), "your scores are highest where the density is highest: an "
                                                       "anomaly is where the model puts little density")
    require(not torch.allclose(got, want.exp(), atol=1e-8) and not torch.allclose(got, (-want).exp(), atol=1e-8),
            "use log-densities: densities underflow to 0 in 64 dimensions")
    raise Fail("your scores differ from -log p(x) under the model")


@check("ex12_2", WS, "AUROC")
def ex12_2(auroc):
    g = fresh_generator()
    cases = [(torch.randn(200, generator=g, dtype=torch.float64), torch.randn(150, generator=g, dtype=torch.float64) + 1),
             (torch.randint(0, 4, (60,), generator=g).double(), torch.randint(1, 5, (40,), generator=g).double())]
    for i, (normal, anomalous) in enumerate(cases):
        got = as_tensor(call(auroc, normal.clone(), anomalous.clone(), label=f"case {i + 1}"), "auroc(...)")
        want = _reference_auroc(normal, anomalous)
        require(got.numel() == 1, "return one number")
        if abs(got.item() - want) < 1e-9:
            continue
        require(abs(got.item() - (1 - want)) > 1e-9, "you computed the AUROC with the labels swapped: high scores "
                                                     "should mean anomalous")
        require(i == 0, "your AUROC is off when scores tie (integer scores): count a tie as half")
        raise Fail("your AUROC differs from the probability that a random anomaly scores above a random normal point")
    return "correct, ties included"


@check("ex12_3", WS, "a threshold for a false-positive rate")
def ex12_3(threshold_for_fpr):
    g = fresh_generator()
    normal = torch.randn(1000, generator=g, dtype=torch.float64)
    for fpr in (0.01, 0.05, 0.2):
        got = as_tensor(call(threshold_for_fpr, normal.clone(), fpr, label=f"fpr = {fpr}"), "threshold")
        rate = (normal > got.item()).double().mean().item()
        require(abs(rate - fpr) <= 0.002, f"with your threshold for fpr = {fpr}, {100 * rate:.1f}% of the normal "
                                          "points are flagged; the threshold is the (1 - fpr) quantile of the "
                                          "normal scores")
    return "correct"


@check("ex12_4", WS, "log q(z | x) of a flow posterior")
def ex12_4(flow_posterior):
    g = fresh_generator()
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    flows = [Planar(2).double() for _ in range(3)]
    with torch.no_grad():
        for f in flows:
            for p in f.parameters():
                p.add_(0.5 * torch.randn_like(p))
    z0 = torch.randn(12, 2, generator=g, dtype=torch.float64)
    log_q0 = -0.5 * (z0 ** 2).sum(1) - torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64))
    out = call(flow_posterior, z0.clone(), log_q0.clone(), flows, label="three planar layers")
    require(isinstance(out, tuple) and len(out) == 2, "return the pair (z_K, log_q_K)")
    zk, log_qk = as_tensor(out[0], "z_K", (12, 2)), as_tensor(out[1], "log_q_K", (12,))
    want_z, total = z0, 0
    for f in flows:
        want_z, ld = f(want_z)
        total = total + ld
    want_z, total = want_z.detach(), total.detach()
    require(torch.allclose(zk, want_z, atol=1e-8), "z_K is wrong: apply the flows in order, in the forward direction")
    require(not torch.allclose(log_qk, log_q0 + total, atol=1e-8),
            "wrong sign: stretching space (positive log-det) lowers the density, log q_K = log q_0 - sum log|det|")
    require(torch.allclose(log_qk, log_q0 - total, atol=1e-8), "log q_K is wrong")
    return "correct: log q_K = log q_0 - sum_k log|det J_k|"


def _code_cloud(g: torch.Generator) -> MixtureSameFamily:
    """Codes like those of a VAE trained on several classes: four elongated clusters at random
    angles and distances from the origin, far from a round N(0, I)."""
    k = 4
    angles = 2 * math.pi * (torch.arange(k, dtype=torch.float64) + 0.3 * torch.rand(k, generator=g, dtype=torch.float64)) / k
    radius = 2.0 + torch.rand(k, generator=g, dtype=torch.float64)
    means = torch.stack([radius * angles.cos(), radius * angles.sin()], 1)
    turn = math.pi * torch.rand(k, generator=g, dtype=torch.float64)
    rotation = torch.stack([torch.stack([turn.cos(), -turn.sin()], -1), torch.stack([turn.sin(), turn.cos()], -1)], -2)
    spread = rotation @ torch.diag(torch.tensor([0.5, 0.15], dtype=torch.float64))
    return MixtureSameFamily(Categorical(torch.full((k,), 1.0 / k, dtype=torch.float64)),
                             MultivariateNormal(means, covariance_matrix=spread @ spread.mT))


def _draw_codes(cloud: MixtureSameFamily, n: int, g: torch.Generator) -> torch.Tensor:
    component = torch.randint(0, 4, (n,), generator=g)
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    normal = cloud.component_distribution
    return normal.loc[component] + (normal.scale_tril[component] @ eps[:, :, None])[:, :, 0]


@check("ex12_5", WS, "a flow prior fitted to a VAE's codes", seconds=90)
def ex12_5(fit_flow_prior):
    g = fresh_generator()
    cloud = _code_cloud(g)
    codes = _draw_codes(cloud, 2000, g).float()
    model = call(fit_flow_prior, codes.clone(), label="2000 codes")
    require(isinstance(model, NormalizingFlow), f"fit_flow_prior should return a NormalizingFlow, got "
                                                f"{type(model).__name__}")
    require(tuple(model.event_shape) == (2,), f"the prior must be a density on two-dimensional codes, got "
                                              f"event shape {tuple(model.event_shape)}")
    held_out = _draw_codes(cloud, 20000, g)
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        log_p = model.log_prob(held_out.to(dtype)).double()
    require(bool(torch.isfinite(log_p).all()), "your prior gives NaN or infinite log-densities at some codes")
    standard = MultivariateNormal(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    gain = (log_p - standard.log_prob(held_out)).mean().item()
    best = (cloud.log_prob(held_out) - standard.log_prob(held_out)).mean().item()
    # a normalised density cannot beat the true one on average (KL >= 0), up to sampling error
    require(gain <= best + 0.1, "your prior's log-density is higher at the codes than any density that integrates "
                                "to 1 can be: is log_prob the change of variables of a normalised base?")
    if gain < 0.05:
        raise Fail(f"your prior does no better than N(0, I) at fresh codes (mean log p(z) {gain:+.2f} nats): it does "
                   "not put its mass where the codes are. Fit the model to the codes themselves by maximum "
                   "likelihood (the forward KL), not to rescaled codes or to samples of N(0, I)")
    if gain < 0.6 * best:
        raise Fail(f"your prior raises the mean log p(z) at fresh codes, and so the ELBO, by {gain:.2f} nats over "
                   "N(0, I): less than 60 % of what the best prior for these codes gains. Train for more steps or "
                   "with more layers; is the objective the forward KL on the codes?")
    return ("your prior fits the codes: it raises the mean log p(z), and so the ELBO, over N(0, I) by more than "
            "60 % of what the best prior for these codes gains")

"""Checks of worksheet 08: the reverse-KL loss, importance weights, and a trained sampler."""
from __future__ import annotations

import math

import torch

from ..flows import Affine
from ..model import NormalizingFlow
from ..targets import banana_log_prob
from .core import Fail, as_tensor, call, check, fresh_generator, require

WS = "08_forward_vs_reverse_kl"



@check("ex08_1", WS, "the reverse-KL loss")
def ex08_1(reverse_kl_loss):
    g = fresh_generator()
    scale, shift = 0.5 + torch.rand(2, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64)
    model = NormalizingFlow(2, [Affine(2, scale=scale, shift=shift)]).double()
    log_z = 3.0 * torch.rand(1, generator=g).item()
    own = torch.distributions.Independent(torch.distributions.Normal(shift, scale), 1)
    target = lambda x: own.log_prob(x) + log_z  # q itself, unnormalised by e^{log_z}
    loss, differentiable = call(reverse_kl_loss, model, target, 256,
                                label="a target equal to q times a constant",
                                convert=lambda out: (out, getattr(out, "requires_grad", None) is True))
    require(isinstance(loss, torch.Tensor) and loss.numel() == 1,
            f"return the loss as a scalar tensor, got {type(loss).__name__}")
    require(differentiable, "the loss carries no gradient: draw samples with the reparametrised "
                                "model.sample_and_log_prob, not model.sample, so the parameters can be trained")
    require(not abs(loss.item() - log_z) < 1e-6, "wrong sign: the loss is E_q[log q(x) - log p~(x)]")
    require(abs(loss.item() + log_z) < 1e-6,
            f"for a target equal to q times e^{log_z:.2f} the loss should be -log Z exactly; evaluate log q at the "
            "model's own samples and subtract the target's log-density there")
    return "correct: it equals KL(q || p) - log Z"


@check("ex08_2", WS, "effective sample size")
def ex08_2(effective_sample_size):
    g = fresh_generator()
    for shift in (0.0, 1000.0):
        log_w = 2 * torch.randn(500, generator=g, dtype=torch.float64) + shift
        got = as_tensor(call(effective_sample_size, log_w.clone(), label=f"log-weights around {shift:.0f}"),
                        "effective_sample_size(log_w)")
        w = torch.softmax(log_w, 0)
        want = 1 / (w ** 2).sum().item()
        require(got.numel() == 1, "return one number")
        if abs(got.item() - want) < 1e-6 * want:
            continue
        require(shift == 0.0 or got.item() == got.item(), "NaN for log-weights near 1000: exp overflows; "
                                                          "normalise the weights first (softmax)")
        require(abs(got.item() - want / len(log_w)) > 1e-9, "you returned the fraction ESS / n; return the ESS")
        raise Fail(f"for log-weights around {shift:.0f} your ESS differs from (sum w)^2 / sum w^2"
                   + ("; exp(1000) overflows: subtract the largest log-weight first" if shift else ""))
    return "correct and stable for large log-weights"


@check("ex08_3", WS, "estimating log Z")
def ex08_3(log_normaliser):
    g = fresh_generator()
    for shift in (0.3, 800.0):
        log_w = torch.randn(400, generator=g, dtype=torch.float64) + shift
        got = as_tensor(call(log_normaliser, log_w.clone(), label=f"log-weights around {shift:.0f}"),
                        "log_normaliser(log_w)")
        want = torch.logsumexp(log_w, 0).item() - math.log(len(log_w))
        if abs(got.item() - want) < 1e-8:
            continue
        require(abs(got.item() - log_w.mean().item()) > 1e-8,
                "you averaged the log-weights: log of a mean is not a mean of logs (that gives a lower bound)")
        require(got.item() == got.item() and abs(got.item()) != float("inf"),
                "overflow: use torch.logsumexp rather than exponentiating the log-weights")
        raise Fail("your estimate differs from log( mean of exp(log_w) )")
    return "correct: log of the mean importance weight"


@check("ex08_4", WS, "a sampler for the banana by reverse KL", seconds=90)
def ex08_4(train_sampler):
    model = call(train_sampler, banana_log_prob, label="the banana")
    require(isinstance(model, NormalizingFlow), f"return a NormalizingFlow, got {type(model).__name__}")
    with torch.no_grad():
        x, log_q = model.sample_and_log_prob(20000)
        log_w = banana_log_prob(x.double()) - log_q.double()
    w = torch.softmax(log_w, 0)
    ess = 1 / (w ** 2).sum().item() / len(w)
    require(ess > 0.5, f"the effective sample size is {100 * ess:.0f}% of the samples, below 50%: train longer or "
                       "with a larger model, with objective='reverse_kl'")
    return "the effective sample size is above half the samples"


@check("ex08_5", WS, "which objective")
def ex08_5(which_objective):
    cases = {(True, False): "forward", (False, True): "reverse"}
    for (samples, density), want in cases.items():
        got = call(which_objective, samples, density, label=f"samples={samples}, density={density}")
        require(got in ("forward", "reverse"), f"return 'forward' or 'reverse', got {got!r}")
        require(got == want, f"wrong when samples={samples} and an unnormalised density={density}: which KL "
                             "can be estimated from what you have?")
    return "correct"

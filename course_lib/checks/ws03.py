"""Checks of worksheet 03: composing flows, the planar log-det, a maximum-likelihood step, training."""
from __future__ import annotations

import copy

import torch
from torch.distributions import Normal

from ..flows import Affine, Compose, Planar, Radial
from ..jacobian import log_abs_det_bruteforce
from ..model import NormalizingFlow
from ..targets import banana_log_prob  # the worksheet's target, importable from here too
from .core import Fail, as_tensor, call, check, fresh_generator, require

WS = "03_composing_flows"



def _random_stack(g):
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    flows = [Affine(2, scale=torch.tensor([1.5, -0.7]), shift=torch.randn(2)), Planar(2), Radial(2), Planar(2)]
    with torch.no_grad():
        for f in flows[1:]:
            for p in f.parameters():
                p.add_(0.5 * torch.randn_like(p))
    return [f.double() for f in flows]


@check("ex03_1", WS, "log-likelihood of a composed flow")
def ex03_1(composed_log_prob):
    g = fresh_generator()
    flows = _random_stack(g)
    base = lambda z: Normal(0.0, 1.0).log_prob(z).sum(dim=1)
    model = NormalizingFlow(2, flows).double()
    x = model.sample(20).detach()
    got = as_tensor(call(composed_log_prob, x, flows, base, label="a stack Affine, Planar, Radial, Planar"),
                    "composed_log_prob(x, flows, base_log_prob)", shape=(20,))
    want = model.log_prob(x).detach()
    if torch.allclose(got, want, atol=1e-8):
        return "correct for a stack of four different flows"
    z, total = x, 0
    for f in flows:  # the classic slip: undoing the layers in the order they were applied
        z, ld = f.inverse(z)
        total = total + ld
    require(not torch.allclose(got, (base(z) + total).detach(), atol=1e-8),
            "you undid the layers in the order they were applied: x = f_K(...f_1(z)), so going back from x "
            "starts with the last layer.")
    z, inv_ld = Compose(*flows).inverse(x)
    require(not torch.allclose(got, (base(z) - inv_ld).detach(), atol=1e-8),
            "the log-determinants enter with the wrong sign: each inverse returns log|det J_{f^-1}|, which "
            "is added (it equals minus the forward one).")
    require(not torch.allclose(got, base(x), atol=1e-8),
            "you evaluated the base density at x: map x back to z first.")
    raise Fail("your log-likelihood differs from the change of variables for a composed flow")


@check("ex03_2", WS, "planar log-det by the matrix determinant lemma")
def ex03_2(planar_log_det):
    g = fresh_generator()
    for trial in range(3):
        d = (2, 3, 5)[trial]
        w = torch.randn(d, generator=g, dtype=torch.float64)
        u = torch.randn(d, generator=g, dtype=torch.float64)
        if trial == 0:  # w^T u close to -1, where the determinant nearly vanishes
            u = u - (torch.dot(w, u) + 0.95) * w / torch.dot(w, w)
        elif torch.dot(w, u) < -1:
            u = u - (torch.dot(w, u) + 0.5) * w / torch.dot(w, w)
        b = torch.randn((), generator=g, dtype=torch.float64)
        z = torch.randn(12, d, generator=g, dtype=torch.float64)
        f = lambda t: t + u * torch.tanh(t @ w + b)[:, None]
        got = as_tensor(call(planar_log_det, z, u, w, b, label=f"d = {d}"), "planar_log_det(z, u, w, b)",
                        shape=(12,))
        want = log_abs_det_bruteforce(f, z)
        if torch.allclose(got, want, atol=1e-8):
            continue
        h = torch.tanh(z @ w + b)
        require(not torch.allclose(got, torch.log((1 + h * torch.dot(w, u)).abs()), atol=1e-8),
                f"for d = {d} you used h(w^T z + b) where the derivative h' = 1 - tanh^2 belongs.")
        require(not torch.allclose(got, torch.log((1 + (1 - h ** 2) * torch.dot(w, w)).abs()), atol=1e-8),
                f"for d = {d} you used w^T w: the lemma gives det(I + u psi^T) = 1 + psi^T u with "
                "psi = h'(w^T z + b) w.")
        raise Fail(f"for d = {d} your log-det differs from autograd's log|det J|")
    return "correct, including w^T u close to -1"


@check("ex03_3", WS, "one maximum-likelihood step")
def ex03_3(mle_step):
    g = fresh_generator()
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    model = NormalizingFlow(2, [Affine(2), Planar(2), Planar(2)]).double()
    batch = 1.5 * torch.randn(64, 2, generator=g, dtype=torch.float64) + 1
    reference = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.01)
    for step in range(2):  # twice, so gradients left over from the first step would show
        expected_loss = -reference.log_prob(batch).mean()
        ref_opt.zero_grad()
        expected_loss.backward()
        ref_opt.step()
        before = [p.detach().clone() for p in model.parameters()]
        got = call(mle_step, model, opt, batch, label=f"step {step + 1}", mutates=(model,))
        got = as_tensor(got, "the returned loss")
        require(got.numel() == 1, f"mle_step should return the loss as one number, got shape {tuple(got.shape)}")
        require(abs(got.item() - expected_loss.item()) < 1e-8,
                "the returned loss is not the mean negative log-likelihood of the batch before the step")
        moved = [p for p, q in zip(model.parameters(), reference.parameters()) if not torch.allclose(p, q, atol=1e-10)]
        if moved:
            got_step = torch.cat([(p - b).flatten() for p, b in zip(model.parameters(), before)]).detach()
            want_step = torch.cat([(q - b).flatten() for q, b in zip(reference.parameters(), before)]).detach()
            require(bool(got_step.abs().max() > 0),
                    f"at step {step + 1} the parameters did not change: call optimizer.step() after "
                    "loss.backward(), and do not clear the gradients between backward and step")
            require(not torch.allclose(got_step, -want_step, atol=1e-10),
                    "after your step the negative log-likelihood went up: are you minimising -log p or log p?")
            require(not torch.allclose(got_step, len(batch) * want_step, rtol=1e-6, atol=1e-10),
                    "your step is as many times too large as the batch has samples: take the mean, not the "
                    "sum, of -log p")
            after = -model.log_prob(batch).mean().item()
            require(after < expected_loss.item() + 1e-9 or step == 1,
                    "after your step the negative log-likelihood went up: are you minimising -log p or log p?")
            raise Fail("your parameters after the step differ from one SGD step on the mean NLL "
                       + ("(gradients from the previous step were not cleared before backward?)" if step == 1
                          else "(zero the gradients, backpropagate the mean NLL, then step)"))
    return "correct: zero the gradients, backpropagate the mean NLL, step"


@check("ex03_4", WS, "a planar flow trained on the banana", seconds=60)
def ex03_4(train_planar_flow):
    model = call(train_planar_flow, banana_log_prob, label="the banana target")
    require(isinstance(model, NormalizingFlow), f"train_planar_flow should return a NormalizingFlow, "
                                                f"got {type(model).__name__}")
    require(any(isinstance(f, Planar) for f in model.flows), "the model should contain Planar layers")
    with torch.no_grad():
        x, log_q = model.sample_and_log_prob(20000)
        x, log_q = x.double(), log_q.double()
        kl = (log_q - banana_log_prob(x)).mean().item()
    require(kl == kl, "the trained model gives NaN log-densities")
    require(kl > -0.05, f"KL(q || p) of your model is {kl:.3f} nats: a divergence is never negative, so this "
                        "model's density does not integrate to 1")
    require(kl < 0.15, f"KL(q || p) of your model is {kl:.3f} nats, above 0.15: train longer, with more "
                       "layers or a larger learning rate, and check that you minimise the reverse KL")
    return "KL(q || p) is below 0.15 nats"

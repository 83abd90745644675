"""Checks of worksheet 11: the flow-matching loss, training without a solver, and its cost."""
from __future__ import annotations

import torch
from torch.distributions import MultivariateNormal

from ..continuous import CNF
from ..model import NormalizingFlow
from .core import Fail, as_tensor, call, check, fresh_generator, require

WS = "11_flow_matching"



def gaussian_data() -> MultivariateNormal:
    """The worksheet's data: a correlated 2D Gaussian, whose entropy is known exactly."""
    return MultivariateNormal(torch.tensor([1.0, -0.5]), torch.tensor([[1.0, 0.6], [0.6, 0.8]]))


@check("ex11_1", WS, "the conditional flow-matching loss")
def ex11_1(fm_loss):
    g = fresh_generator()
    W = torch.randn(2, 3, generator=g, dtype=torch.float64)
    field = lambda t, x: torch.tanh(torch.cat([x, t[:, None]], 1) @ W.T)
    x1, x0 = (torch.randn(16, 2, generator=g, dtype=torch.float64) for _ in range(2))
    t = torch.rand(16, generator=g, dtype=torch.float64)
    got = as_tensor(call(fm_loss, field, x1.clone(), x0.clone(), t.clone(), label="a batch of 16"),
                    "fm_loss(field, x1, x0, t)")
    require(got.numel() == 1, "the loss is one number (a mean over the batch)")
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    want = (field(t, xt) - (x1 - x0)).pow(2).sum(1).mean()
    if abs(got.item() - want.item()) < 1e-8:
        return "correct"
    require(abs(got.item() - (field(t, xt) - x1).pow(2).sum(1).mean().item()) > 1e-8,
            "the regression target is the velocity of the straight path, d x_t / dt, not its end point")
    x_rev = t[:, None] * x0 + (1 - t[:, None]) * x1
    require(abs(got.item() - (field(t, x_rev) - (x1 - x0)).pow(2).sum(1).mean().item()) > 1e-8,
            "your path runs backwards: at t = 0 it must sit at the base sample x0, at t = 1 at the data x1")
    require(abs(got.item() - (field(t, xt) - (x1 - x0)).pow(2).mean().item()) > 1e-8,
            "you averaged over coordinates too: take the squared norm per sample, then the mean over the batch")
    raise Fail("your loss differs from the mean over the batch of |f(t, x_t) - (x1 - x0)|^2")


@check("ex11_2", WS, "a CNF trained by flow matching", seconds=90)
def ex11_2(train_flow_matching):
    data = gaussian_data()
    model = call(train_flow_matching, lambda n: data.sample((n,)), label="the Gaussian data")
    require(isinstance(model, NormalizingFlow) and any(isinstance(f, CNF) for f in model.flows),
            f"return the trained model, a NormalizingFlow around a CNF as models.cnf builds, got "
            f"{type(model).__name__}")
    torch.manual_seed(7)
    dtype = next(model.parameters()).dtype
    x = data.sample((4000,)).to(dtype)
    with torch.no_grad():
        nll = -model.log_prob(x)
    gap = nll.mean().item() - data.entropy().item()
    se = nll.std().item() / 4000 ** 0.5
    require(gap == gap, "the model's log-densities are NaN")
    require(gap > -(0.02 + 4 * se), f"the test NLL is {-gap:.3f} nats below the data's entropy: a density that "
                                   "does not integrate to 1")
    require(gap < 0.1 + 3 * se, f"the gap to the entropy is {gap:.3f} nats, above 0.1: train longer or with a "
                                "larger learning rate; is the loss the flow-matching loss?")
    return "the gap to the entropy is below 0.1 nats (exact ODE likelihood)"


@check("ex11_3", WS, "counting vector-field evaluations")
def ex11_3(count_evaluations):
    from .. import models
    g = fresh_generator()
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    model = models.cnf(2, hidden=16, n_hidden=2).double()
    x = gaussian_data().sample((64,)).double()
    out = call(count_evaluations, model, x.clone(), label="a small CNF model")
    require(isinstance(out, tuple) and len(out) == 2, "return the pair (n_flow_matching, n_likelihood)")
    n_fm, n_ml = out
    require(n_fm == 1, f"one flow-matching loss evaluates the field once (you counted {n_fm})")
    calls = [0]
    field = model.flows[0].vector_field
    hook = field.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    try:
        with torch.no_grad():
            model.log_prob(x)
    finally:
        hook.remove()
    require(n_ml == calls[0], f"for the likelihood you counted {n_ml} evaluations; count every call the "
                              "solver makes during one model.log_prob")
    return "correct: one evaluation against one per solver stage for a likelihood"


@check("ex11_4", WS, "the gap to the entropy")
def ex11_4(gap_to_entropy):
    from .. import models
    g = fresh_generator()
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    model = models.cnf(2, hidden=16, n_hidden=2)
    with torch.no_grad():  # a random field of random strength, so no printed value passes
        for p in model.parameters():
            p.mul_(0.5 + torch.rand((), generator=g))
    data = gaussian_data()
    got = as_tensor(call(gap_to_entropy, model, data, 3000, label="an untrained CNF model"),
                    "gap_to_entropy")
    require(got.numel() == 1, "return one number")
    x = data.sample((20000,))
    with torch.no_grad():
        nll = -model.log_prob(x)
    want = nll.mean().item() - data.entropy().item()
    require(not abs(got.item() + want) < 0.1, "wrong sign: the gap is the test NLL minus the entropy (never "
                                              "negative in expectation, since it is a KL divergence)")
    require(abs(got.item() - want) < 5 * nll.std().item() / 3000 ** 0.5 + 0.01,
            "your gap differs from the mean of -log p(x) over fresh data minus the data's entropy")
    return "correct"

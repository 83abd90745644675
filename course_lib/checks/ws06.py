"""Checks of worksheet 06: MADE masks, MAF's two directions, and what is fast."""
from __future__ import annotations

import torch

from ..flows import MADE
from .core import Fail, answer_pair, as_tensor, call, check, fresh_generator, require

WS = "06_autoregressive_flows"



def _made_masks(degrees: list[torch.Tensor]) -> list[torch.Tensor]:
    """Hidden units see inputs of degree <= their own; outputs see hidden units of strictly smaller degree."""
    masks = [(d_out[:, None] >= d_in[None, :]) for d_in, d_out in zip(degrees[:-2], degrees[1:-1])]
    masks.append(degrees[-1][:, None] > degrees[-2][None, :])
    return [m.to(torch.float64) for m in masks]


def random_conditioner(d, g):
    """An autoregressive conditioner x -> (mu, log_scale), each (batch, d): a MADE with random weights."""
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
    made = MADE(d, hidden=(16, 16), params_per_dim=2, order="sequential").double()
    with torch.no_grad():
        for p in made.parameters():
            p.add_(0.3 * torch.randn_like(p))

    def conditioner(x):
        conditioner.calls += 1
        out = made(x)
        return out[..., 0], 0.5 * torch.tanh(out[..., 1])
    conditioner.calls = 0
    return conditioner



@check("ex06_1", WS, "MADE masks from degrees")
def ex06_1(made_masks):
    g = fresh_generator()
    for d, hidden in ((3, (4,)), (5, (8, 6))):
        order = torch.randperm(d, generator=g)
        inputs = torch.empty(d, dtype=torch.long)
        inputs[order] = torch.arange(1, d + 1)
        degrees = [inputs] + [torch.randint(1, d, (h,), generator=g) for h in hidden] + [inputs.clone()]
        got = call(made_masks, [t.clone() for t in degrees], label=f"d = {d}, hidden = {hidden}")
        want = _made_masks(degrees)
        require(isinstance(got, (list, tuple)) and len(got) == len(want),
                f"for {len(hidden)} hidden layer(s) return {len(want)} masks (one per weight matrix)")
        for k, (m, w) in enumerate(zip(got, want)):
            m = as_tensor(m, f"mask {k}", tuple(w.shape))
            if torch.equal(m, w):
                continue
            last = k == len(want) - 1
            if last:
                require(not torch.equal(m, (degrees[-1][:, None] >= degrees[-2][None, :]).double()),
                        "in the output layer use a strict inequality: with >= output i could depend on "
                        "input i itself, and the Jacobian would not be triangular with the right diagonal")
            else:
                require(not torch.equal(m, (degrees[k + 1][:, None] > degrees[k][None, :]).double()),
                        f"mask {k} uses a strict inequality: hidden units may see inputs up to and including "
                        "their own degree (>=); only the output layer is strict")
            require(not torch.equal(m.T, w), f"mask {k} is transposed: shape (out_features, in_features), "
                                             "like nn.Linear's weight")
            raise Fail(f"mask {k} is wrong for d = {d}, hidden = {hidden}")
    return "correct: >= between hidden layers, > into the outputs"


@check("ex06_2", WS, "MAF density direction in one pass")
def ex06_2(maf_inverse):
    g = fresh_generator()
    d = 4
    cond = random_conditioner(d, g)
    x = torch.randn(10, d, generator=g, dtype=torch.float64)
    mu, s = (v.detach() for v in cond(x))
    cond.calls = 0
    out, calls = call(maf_inverse, x.clone(), cond, label="d = 4", convert=lambda out: (out, cond.calls))
    z, ld = answer_pair(out, "maf_inverse", (10, d))
    require(calls == 1, f"your inverse called the conditioner {calls} times: all of x is known, so one "
                             "pass gives every mu_i(x_<i) and s_i(x_<i) at once")
    require(not torch.allclose(z, (x - mu) * torch.exp(s), atol=1e-8),
            "you multiplied by exp(s): the forward map scales z by exp(s), so the inverse divides")
    require(torch.allclose(z, (x - mu) * torch.exp(-s), atol=1e-8), "your z is wrong: z = (x - mu) * exp(-s)")
    require(not torch.allclose(ld, s.sum(1), atol=1e-8), "your log-det has the forward sign; the inverse "
                                                         "map's log|det| is -sum s")
    require(torch.allclose(ld, -s.sum(1), atol=1e-8), "your log-det is wrong")
    return "correct: density in one pass"


@check("ex06_3", WS, "MAF sampling direction in d passes")
def ex06_3(maf_forward):
    g = fresh_generator()
    d = 5
    cond = random_conditioner(d, g)
    z = torch.randn(10, d, generator=g, dtype=torch.float64)
    out, calls = call(maf_forward, z.clone(), cond, label="d = 5", convert=lambda out: (out, cond.calls))
    x, ld = answer_pair(out, "maf_forward", (10, d))
    mu, s = (v.detach() for v in cond(x))
    z_back = (x - mu) * torch.exp(-s)
    if not torch.allclose(z_back, z, atol=1e-8):
        require(calls >= d, f"your sampler called the conditioner {calls} time(s): mu_i and s_i depend on "
                            "x_<i, which exist only after generating them, so it takes one pass per dimension")
        raise Fail("inverting your samples does not give back z: compute x_i = z_i * exp(s_i) + mu_i with "
                   "mu_i, s_i from the x generated so far")
    require(torch.allclose(ld, s.sum(1), atol=1e-8), "x is right but the log-det is not: log|det J_f| = sum s")
    return "correct: one pass per dimension"


@check("ex06_4", WS, "which direction is fast")
def ex06_4(passes_needed):
    g = fresh_generator()
    d = int(torch.randint(3, 50, (1,), generator=g))
    want = {("MAF", "density"): 1, ("MAF", "sampling"): d, ("IAF", "density"): d, ("IAF", "sampling"): 1}
    for (flow, op), n in want.items():
        got = call(passes_needed, flow, op, d, label=f"{flow} {op}")
        require(isinstance(got, int) and not isinstance(got, bool),
                f"passes_needed should return an int, got {type(got).__name__}")
        require(got == n, f"wrong for {flow} {op} with d = {d}: ask which variables the conditioner needs and "
                          "whether they are all known before you start")
    return "correct: MAF is fast for density, IAF for sampling"

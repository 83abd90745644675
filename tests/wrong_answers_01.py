"""Typical mistakes in worksheet 01, each with the hint its check must give."""
import torch
from torch.distributions import Normal

N = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
pdf = lambda z: N.log_prob(z).exp()

WRONG = {
    "ex01_1": [
        (lambda x, a, b: pdf((x - b) / a) / a, "absolute value|non-negative"),
        (lambda x, a, b: pdf((x - b) / a), "only\\s+half"),
        (lambda x, a, b: pdf((x - b) / a) * abs(a), "stretch"),
        (lambda x, a, b: pdf((x - a) / b) / abs(b), "differ"),
    ],
    "ex01_2": [
        (lambda x: pdf(torch.log(x)), "missing"),
        (lambda x: pdf(x) / x, "base density at x"),
        (lambda x: pdf(torch.log(x)) * x, "1/x"),
    ],
    "ex01_3": [
        (lambda x, inv, dinv, base: base(inv(x)) * dinv(x), "absolute value|negative"),
        (lambda x, inv, dinv, base: base(inv(x)) / dinv(x).abs(), "divided"),
        (lambda x, inv, dinv, base: base(x) * dinv(x).abs(), "differ"),
    ],
    "ex01_4": [
        (lambda x, a, b: torch.full_like(x, 1 / abs(a)), "vanish outside"),
        (lambda x, a, b: torch.where((x >= b) & (x <= a + b), 1 / a, 0.0).to(x.dtype), "smaller one"),
        (lambda x, a, b: torch.where((x >= min(b, a + b)) & (x <= max(b, a + b)), abs(a), 0.0).to(x.dtype),
         "length"),
    ],
    "ex01_5": [
        (lambda lo, hi, a, b: (N.cdf(torch.tensor((hi - b) / a)) - N.cdf(torch.tensor((lo - b) / a))).item(),
         "negative probability"),
        (lambda lo, hi, a, b: (N.cdf(torch.tensor(hi)) - N.cdf(torch.tensor(lo))).item(), "pull both ends|off|negative"),
    ],
}

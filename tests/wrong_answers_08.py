"""Typical mistakes in worksheet 08, each with the hint its check must give."""
import math

import torch

from course_lib.flows import Affine
from course_lib.model import NormalizingFlow


def _no_reparam(model, log_target, n):
    x = model.sample(n)
    return (model.log_prob(x) - log_target(x)).mean().detach()


def _wrong_sign(model, log_target, n):
    x, log_q = model.sample_and_log_prob(n)
    return (log_target(x) - log_q).mean()


WRONG = {
    "ex08_1": [(_no_reparam, "reparametrised"), (_wrong_sign, "wrong sign")],
    "ex08_2": [(lambda lw: (lw.exp().sum() ** 2 / (lw.exp() ** 2).sum()).item(), "overflow|NaN"),
               (lambda lw: (1 / (torch.softmax(lw, 0) ** 2).sum() / len(lw)).item(), "fraction")],
    "ex08_3": [(lambda lw: lw.mean().item(), "mean of logs"),
               (lambda lw: math.log(lw.exp().mean().item()) if lw.max() < 700 else float("inf"), "overflow")],
    "ex08_4": [(lambda t: NormalizingFlow(2, [Affine(2)]), "below 50%")],
    "ex08_5": [(lambda s, d: "reverse" if s else "forward", "wrong when"), (lambda s, d: "both", "return")],
}

"""Typical mistakes in worksheet 03, each with the hint its check must give."""
import torch

from course_lib.flows import Affine, Planar
from course_lib.model import NormalizingFlow
from course_lib.training import fit


def _wrong_order(x, flows, base):
    total = 0
    for f in flows:
        x, ld = f.inverse(x)
        total = total + ld
    return base(x) + total


def _wrong_sign(x, flows, base):
    total = 0
    for f in reversed(flows):
        x, ld = f.inverse(x)
        total = total - ld
    return base(x) + total


def _no_zero_grad(model, opt, batch):
    loss = -model.log_prob(batch).mean()
    loss.backward()
    opt.step()
    return loss.item()


def _ascent(model, opt, batch):
    opt.zero_grad()
    loss = -model.log_prob(batch).mean()
    (-loss).backward()
    opt.step()
    return loss.item()


def _no_step(model, opt, batch):
    opt.zero_grad()
    loss = -model.log_prob(batch).mean()
    loss.backward()
    return loss.item()


def _zero_grad_between(model, opt, batch):
    opt.zero_grad()
    loss = -model.log_prob(batch).mean()
    loss.backward()
    opt.zero_grad()
    opt.step()
    return loss.item()


def _sum_not_mean(model, opt, batch):
    opt.zero_grad()
    loss = -model.log_prob(batch).sum()
    loss.backward()
    opt.step()
    return loss.item() / len(batch)


def _untrained(log_target):
    return NormalizingFlow(2, [Affine(2), Planar(2)])


WRONG = {
    "ex03_1": [(_wrong_order, "order they were applied"), (_wrong_sign, "wrong sign"),
               (lambda x, flows, base: base(x), "base density at x")],
    "ex03_2": [(lambda z, u, w, b: torch.log((1 + torch.tanh(z @ w + b) * torch.dot(w, u)).abs()), "derivative"),
               (lambda z, u, w, b: torch.log((1 + (1 - torch.tanh(z @ w + b) ** 2) * torch.dot(w, w)).abs()), "w\\^T w")],
    "ex03_3": [(_no_zero_grad, "cleared"), (_ascent, "went up"),
               (_no_step, "did not change.*optimizer.step"), (_zero_grad_between, "between backward and step"),
               (_sum_not_mean, "mean, not the sum")],
    "ex03_4": [(_untrained, "above 0.15"), (lambda t: "model", "NormalizingFlow")],
}

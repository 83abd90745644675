"""Typical mistakes in worksheet 12, each with the hint its check must give."""
import torch


def _flow_posterior_plus(z0, log_q0, flows):
    z, lq = z0, log_q0
    for f in flows:
        z, ld = f(z)
        lq = lq + ld
    return z, lq


def _flow_posterior_inverse(z0, log_q0, flows):
    z, lq = z0, log_q0
    for f in flows:
        z, ld = f.inverse(z)
        lq = lq + ld
    return z, lq


WRONG = {
    "ex12_1": [(lambda model, x: model.log_prob(x).detach(), "highest where"),
               (lambda model, x: model.log_prob(x).exp().detach(), "underflow|highest")],
    "ex12_2": [(lambda n, a: ((n[:, None] - a[None, :]) > 0).double().mean().item(), "swapped"),
               (lambda n, a: ((a[:, None] - n[None, :]) > 0).double().mean().item(), "tie")],
    "ex12_3": [(lambda s, fpr: torch.quantile(s, fpr).item(), "quantile")],
    "ex12_4": [(_flow_posterior_plus, "wrong sign"), (_flow_posterior_inverse, "forward direction")],
}

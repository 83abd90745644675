"""Typical mistakes in worksheet 12, each with the hint its check must give."""
import torch

from course_lib.flows import Affine
from course_lib.model import NormalizingFlow
from course_lib.models import realnvp
from course_lib.training import fit


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


def _prior_on_standardised_codes(codes):
    """Fitted to standardised codes and returned without undoing the standardisation."""
    model = realnvp(2, n_layers=4, hidden=32)
    fit(model, (codes - codes.mean(0)) / codes.std(0), steps=300, batch_size=256, lr=5e-3, progress=False)
    return model


def _prior_barely_trained(codes):
    model = realnvp(2, n_layers=4, hidden=32)
    fit(model, codes, steps=5, batch_size=256, lr=1e-3, progress=False)
    return model


WRONG = {
    "ex12_1": [(lambda model, x: model.log_prob(x).detach(), "highest where"),
               (lambda model, x: model.log_prob(x).exp().detach(), "underflow|highest")],
    "ex12_2": [(lambda n, a: ((n[:, None] - a[None, :]) > 0).double().mean().item(), "swapped"),
               (lambda n, a: ((a[:, None] - n[None, :]) > 0).double().mean().item(), "tie")],
    "ex12_3": [(lambda s, fpr: torch.quantile(s, fpr).item(), "quantile")],
    "ex12_4": [(_flow_posterior_plus, "wrong sign"), (_flow_posterior_inverse, "forward direction")],
    "ex12_5": [(lambda codes: NormalizingFlow(2, [Affine(2)]), "no better than N\\(0, I\\)"),
               (_prior_on_standardised_codes, "mass where the codes are|no better"),
               (_prior_barely_trained, "less than 60 %|no better"),
               (lambda codes: None, "NormalizingFlow")],
}

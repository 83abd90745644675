"""models.nsf: spline couplings and an elementwise spline, all on the normalizing side."""
import math

import torch

from course_lib import flows as F
from course_lib import models
from course_lib.jacobian import log_abs_det_bruteforce


def test_every_spline_sits_on_the_normalizing_side():
    model = models.nsf(3, n_layers=3, hidden=8, bins=4)
    assert all(isinstance(f, F.Inverse) for f in model.flows)
    assert [type(f.flow) for f in model.flows] == [F.RQSCoupling] * 3 + [F.RQSpline]


def test_a_new_model_is_the_standard_normal():
    torch.manual_seed(0)
    model = models.nsf(2, n_layers=2, hidden=8, bins=4).double()
    x = 3 * torch.randn(50, 2, dtype=torch.float64)
    expected = -0.5 * (x ** 2).sum(1) - math.log(2 * math.pi)
    torch.testing.assert_close(model.log_prob(x), expected, atol=1e-12, rtol=0)


def test_moved_off_the_identity_it_inverts_and_its_log_det_is_the_jacobian():
    torch.manual_seed(1)
    model = models.nsf(2, n_layers=2, hidden=8, bins=4, tail_bound=3.0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    z = torch.randn(20, 2, dtype=torch.float64)
    x, logdet = model.flow(z)
    z_back, inv_logdet = model.flow.inverse(x)
    torch.testing.assert_close(z_back, z, atol=1e-9, rtol=0)
    torch.testing.assert_close(inv_logdet, -logdet, atol=1e-9, rtol=0)
    torch.testing.assert_close(logdet, log_abs_det_bruteforce(lambda v: model.flow(v)[0], z),
                               atol=1e-9, rtol=0)

"""NormalizingFlow densities against independent oracles (scipy.stats, quadrature). Runs on the
device given by ``--device`` (values go to the CPU only to meet scipy)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import Independent, Normal

from course_lib.flows import Affine, Exp, Sigmoid
from course_lib.model import NormalizingFlow


def lognormal_model():
    return NormalizingFlow(1, [Exp(1)])


def test_log_prob_of_exp_of_standard_normal_is_the_lognormal():
    x = torch.linspace(0.05, 6.0, 50)[:, None]
    expected = stats.lognorm(s=1.0).logpdf(x.cpu().numpy()[:, 0])
    np.testing.assert_allclose(lognormal_model().log_prob(x).detach().cpu().numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("scale", [2.0, -2.0])
def test_log_prob_of_affine_map_is_normal_with_mean_b_and_std_abs_a(scale):
    model = NormalizingFlow(1, [Affine(1, scale=scale, shift=3.0)])
    x = torch.linspace(-5, 11, 40)[:, None]
    expected = stats.norm(loc=3.0, scale=2.0).logpdf(x.cpu().numpy()[:, 0])
    np.testing.assert_allclose(model.log_prob(x).detach().cpu().numpy(), expected, atol=1e-12)


def test_two_dimensional_model_density_integrates_to_one_on_a_grid():
    # a standard normal squashed onto the unit square: a logit-normal with correlated-free axes
    model = NormalizingFlow(2, [Affine(2, scale=torch.tensor([0.8, -1.3]), shift=torch.tensor([0.4, -0.2])),
                                Sigmoid(2)])
    n = 800
    t = (torch.arange(n) + 0.5) / n  # midpoints of (0, 1)
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    with torch.no_grad():
        p = model.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp()
    assert abs(p.sum().item() / n**2 - 1.0) < 1e-4


def test_sample_and_log_prob_agrees_with_log_prob_of_the_samples():
    model = NormalizingFlow(2, [Affine(2, scale=torch.tensor([0.5, 2.0])), Sigmoid(2)])
    x, log_q = model.sample_and_log_prob(100)
    torch.testing.assert_close(log_q, model.log_prob(x), atol=1e-10, rtol=0)


def test_samples_have_the_pushed_mean_and_standard_deviation():
    torch.manual_seed(0)
    model = NormalizingFlow(1, [Affine(1, scale=2.0, shift=3.0)])
    x = model.sample(40000)[:, 0]
    assert x.shape == (40000,) and not x.requires_grad
    assert abs(x.mean().item() - 3.0) < 4 * 2.0 / math.sqrt(40000)
    assert abs(x.std().item() - 2.0) < 0.05


def test_forward_kl_is_the_mean_negative_log_likelihood():
    model = lognormal_model()
    x = torch.rand(30, 1) * 3 + 0.1
    torch.testing.assert_close(model.forward_kl(x), -model.log_prob(x).mean())


def test_reverse_kl_to_an_unnormalised_copy_of_itself_is_minus_log_z():
    model = NormalizingFlow(1, [Affine(1, scale=2.0, shift=3.0)])
    log_z = 1.7
    target = lambda x: torch.distributions.Normal(3.0, 2.0).log_prob(x[:, 0]) + log_z
    torch.testing.assert_close(model.reverse_kl(target, 64), torch.tensor(-log_z), atol=1e-10, rtol=0)


def test_reverse_kl_gradient_is_the_closed_form_one():
    # q = N(b, a^2), target N(0, 1) up to a constant: KL(q || p) = -log|a| + (a^2 + b^2 - 1) / 2,
    # so dKL/db = b and dKL/da = a - 1/a; the Monte Carlo gradient is unbiased
    torch.manual_seed(0)
    a, b, n = 2.0, 3.0, 200_000
    model = NormalizingFlow(1, [Affine(1, scale=a, shift=b)])
    model.reverse_kl(lambda x: -0.5 * (x[:, 0] ** 2), n).backward()
    flow = model.flows[0]
    # standard errors: sd(a z + b) / sqrt(n) and sd((a z + b) z) / sqrt(n)
    assert abs(flow.shift.grad.item() - b) < 4 * a / math.sqrt(n)
    assert abs(flow.scale.grad.item() - (a - 1 / a)) < 4 * math.sqrt(2 * a**2 + b**2) / math.sqrt(n)


def test_a_given_torch_distribution_is_used_as_the_base():
    base = Independent(Normal(torch.tensor([1.0]), torch.tensor([0.5])), 1)
    model = NormalizingFlow(base, [Affine(1, scale=2.0)])
    x = torch.linspace(-3, 5, 9)[:, None]
    expected = stats.norm(loc=2.0, scale=1.0).logpdf(x.cpu().numpy()[:, 0])
    np.testing.assert_allclose(model.log_prob(x).detach().cpu().numpy(), expected, atol=1e-12)


def test_converting_the_model_converts_its_standard_normal_base():
    model = NormalizingFlow(2, [Affine(2)]).to(torch.float32)
    assert model.sample(3).dtype == torch.float32
    assert model.double().sample(3).dtype == torch.float64

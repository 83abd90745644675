"""The adapters between course flows and torch transforms, against torch's own
``TransformedDistribution`` and against autograd."""
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.distributions import Independent, Normal, TransformedDistribution, constraints
from torch.distributions.transforms import (AbsTransform, AffineTransform, ComposeTransform,
                                            CumulativeDistributionTransform, ExpTransform,
                                            IndependentTransform, PowerTransform,
                                            SigmoidTransform, SoftplusTransform,
                                            StickBreakingTransform, TanhTransform)

import course_lib
from course_lib.flows import (MAF, Affine, AffineCoupling, Compose, Exp, FlowInputError, Inverse,
                              LULinear, RQSCoupling, Sigmoid)
from course_lib.jacobian import log_abs_det_bruteforce
from course_lib.model import NormalizingFlow
from course_lib.transforms import FlowTransform, as_transform, from_transform
from course_lib.validation import CourseValueError
from flow_cases import randomise

DIM = 3
FLOWS = {
    "Affine": lambda: Affine(DIM, scale=torch.tensor([0.5, -2.0, 1.5]), shift=torch.ones(DIM)),
    "Exp": lambda: Exp(DIM),
    "Sigmoid": lambda: Sigmoid(DIM),
    "AffineCoupling": lambda: randomise(AffineCoupling(DIM, hidden=8), 0.3),
    "MAF": lambda: randomise(MAF(DIM, hidden=(8, 8)), 0.3),
    "LULinear": lambda: randomise(LULinear(DIM), 0.3),
    "RQSCoupling": lambda: randomise(RQSCoupling(DIM, 4, 3.0, 8), 0.3),
    "Compose": lambda: Compose(randomise(LULinear(DIM), 0.3), randomise(AffineCoupling(DIM), 0.3),
                               Sigmoid(DIM)),
}


def standard_normal():
    return Independent(Normal(torch.zeros(DIM), torch.ones(DIM)), 1)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_flow_in_a_transformed_distribution_gives_the_models_density_and_samples(name):
    flow = FLOWS[name]()
    ours = NormalizingFlow(DIM, [flow])
    torchs = TransformedDistribution(standard_normal(), [as_transform(flow)])
    torch.manual_seed(5)
    x = ours.sample((2, 4))
    torch.manual_seed(5)
    torch.testing.assert_close(torchs.sample((2, 4)), x, atol=1e-12, rtol=0)
    assert torchs.event_shape == ours.event_shape and torchs.batch_shape == ours.batch_shape
    torch.testing.assert_close(torchs.log_prob(x), ours.log_prob(x), atol=1e-10, rtol=0)
    x = torchs.rsample((5,))
    torch.testing.assert_close(torchs.log_prob(x), ours.log_prob(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_the_transform_is_a_bijection_with_the_autograd_log_determinant(name):
    flow = FLOWS[name]()
    t = as_transform(flow)
    assert t.bijective and t.domain.event_dim == t.codomain.event_dim == 1
    assert t.inv.inv is t
    z = torch.randn(6, DIM)
    x = t(z)
    torch.testing.assert_close(t.inv(x), z, atol=1e-9, rtol=0)
    expected = log_abs_det_bruteforce(lambda u: flow(u)[0], z)
    torch.testing.assert_close(t.log_abs_det_jacobian(z, x), expected, atol=1e-9, rtol=0)
    # fresh tensors, not the remembered pair
    torch.testing.assert_close(t.log_abs_det_jacobian(z.clone(), x.clone()), expected,
                               atol=1e-9, rtol=0)
    torch.testing.assert_close(t.inv.log_abs_det_jacobian(x, z), -expected, atol=1e-9, rtol=0)
    # one sample, no batch dimension
    torch.testing.assert_close(t(z[0]), x[0], atol=1e-12, rtol=0)
    assert t.log_abs_det_jacobian(z[0], x[0]).shape == ()


def test_a_torch_normal_pushed_through_exp_is_the_lognormal():
    q = TransformedDistribution(Normal(torch.zeros(1), 1.0), [as_transform(Exp(1))])
    x = torch.linspace(0.05, 6.0, 40)[:, None]
    np.testing.assert_allclose(q.log_prob(x).numpy(), stats.lognorm(s=1.0).logpdf(x[:, 0].numpy()),
                               atol=1e-12)
    assert type(q.support.base_constraint) is type(constraints.positive)


@pytest.mark.parametrize("flow,domain,codomain", [
    (Exp(2), constraints.real, constraints.positive),
    (Sigmoid(2), constraints.real, constraints.unit_interval),
    (Inverse(Sigmoid(2)), constraints.unit_interval, constraints.real),
    (Compose(Exp(2), Affine(2)), constraints.real, constraints.real),
    (Compose(Inverse(Exp(2)), Sigmoid(2)), constraints.positive, constraints.unit_interval),
])
def test_domain_and_codomain(flow, domain, codomain):
    t = as_transform(flow)
    assert type(t.domain.base_constraint) is type(domain)
    assert type(t.codomain.base_constraint) is type(codomain)


TORCH_TRANSFORMS = {
    "Exp": lambda: ExpTransform(),
    "Sigmoid": lambda: SigmoidTransform(),
    "Tanh": lambda: TanhTransform(),
    "Softplus": lambda: SoftplusTransform(),
    "Affine (elementwise)": lambda: AffineTransform(torch.tensor([1.0, -2.0, 0.5]),
                                                    torch.tensor([2.0, -0.5, 3.0])),
    "Affine (event_dim 1)": lambda: AffineTransform(0.5, 3.0, event_dim=1),
    "Independent(Exp)": lambda: IndependentTransform(ExpTransform(), 1),
    "Normal CDF": lambda: CumulativeDistributionTransform(Normal(0.5, 2.0)),
    "Compose": lambda: ComposeTransform([AffineTransform(0.3, 1.7), SigmoidTransform()]),
    "Compose (power of exp)": lambda: ComposeTransform([ExpTransform(), PowerTransform(2.5)]),
}


@pytest.mark.parametrize("name", sorted(TORCH_TRANSFORMS))
def test_a_torch_transform_as_a_flow_gives_torchs_density_and_samples(name):
    t = TORCH_TRANSFORMS[name]()
    ours = NormalizingFlow(DIM, [from_transform(t, DIM)])
    torchs = TransformedDistribution(standard_normal(), [t])
    torch.manual_seed(2)
    x = ours.sample((2, 5))
    torch.manual_seed(2)
    torch.testing.assert_close(torchs.sample((2, 5)), x, atol=1e-12, rtol=0)
    torch.testing.assert_close(ours.log_prob(x), torchs.log_prob(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", sorted(TORCH_TRANSFORMS))
def test_a_torch_transform_as_a_flow_meets_the_flow_contract(name):
    flow = from_transform(TORCH_TRANSFORMS[name](), DIM)
    z = torch.randn(6, DIM)
    x, logdet = flow(z)
    z_back, inv_logdet = flow.inverse(x)
    torch.testing.assert_close(z_back, z, atol=1e-9, rtol=0)
    torch.testing.assert_close(logdet, log_abs_det_bruteforce(lambda u: flow(u)[0], z),
                               atol=1e-9, rtol=0)
    torch.testing.assert_close(inv_logdet, -logdet, atol=1e-9, rtol=0)


def test_exp_transform_in_a_model_is_the_lognormal():
    model = NormalizingFlow(1, [from_transform(ExpTransform(), 1)])
    x = torch.linspace(0.05, 6.0, 40)[:, None]
    np.testing.assert_allclose(model.log_prob(x).detach().numpy(),
                               stats.lognorm(s=1.0).logpdf(x[:, 0].numpy()), atol=1e-12)


def test_the_adapters_undo_each_other():
    flow = FLOWS["Compose"]()
    back = from_transform(as_transform(flow), DIM)
    z = torch.randn(5, DIM)
    for (a, la), (b, lb) in [(flow(z), back(z)), (flow.inverse(flow(z)[0]), back.inverse(flow(z)[0]))]:
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
        torch.testing.assert_close(la, lb, atol=1e-12, rtol=0)
    assert isinstance(as_transform(back), FlowTransform)


def test_from_transform_checks_the_domain_while_validating():
    flow = from_transform(ExpTransform(), 2)
    x = torch.tensor([[1.0, -1.0]])
    with pytest.raises(FlowInputError, match=r"ExpTransform \(as a flow\): expected x inside"):
        flow.inverse(x)
    with course_lib.validation(False):
        assert torch.isnan(flow.inverse(x)[0]).any()


@pytest.mark.parametrize("make,dim,message", [
    (lambda: StickBreakingTransform(), 3, r"keeps the shape \(3,\) of a sample, got one mapping "
                                          r"it to \(4,\)"),
    (lambda: AbsTransform(), 2, "expected a bijective transform"),
    (lambda: nn.Linear(2, 2), 2, "expected a torch.distributions Transform, got Linear"),
    (lambda: ExpTransform(), 0, "expected dim to be an integer >= 1"),
    (lambda: AffineTransform(0.0, 1.0, event_dim=2), 3, "acts on events of 2 dimensions"),
])
def test_from_transform_refuses(make, dim, message):
    with pytest.raises(CourseValueError, match=message):
        from_transform(make(), dim)


def test_as_transform_refuses_what_is_not_a_flow():
    with pytest.raises(CourseValueError, match="expected a course Flow, got Linear"):
        as_transform(nn.Linear(2, 2))

"""NormalizingFlow as a torch Distribution: shapes, gradients and bases against torch's own
semantics and distributions. Runs on the device given by ``--device``."""
import math

import pytest
import torch
from torch import nn
from torch.distributions import (Distribution, Independent, LowRankMultivariateNormal,
                                 MultivariateNormal, Normal, StudentT, TransformedDistribution,
                                 Uniform, constraints)
from torch.distributions.transforms import AffineTransform

import course_lib
from course_lib.flows import Affine, AffineCoupling, Exp, FlowInputError, Inverse, Sigmoid
from course_lib.model import NormalizingFlow, dtype_device
from course_lib.validation import CourseValueError



def SCALE():  # built when called, so on the device of the test
    return torch.tensor([0.5, -2.0])


def SHIFT():
    return torch.tensor([1.0, -3.0])


def affine_model(base=2):
    return NormalizingFlow(base, [Affine(2, scale=SCALE(), shift=SHIFT())])


def affine_oracle(base):
    """torch's own pushforward of ``base`` through ``x = a z + b``."""
    return TransformedDistribution(base, [AffineTransform(SHIFT(), SCALE(), event_dim=1)])


def test_the_model_is_a_module_and_a_distribution_of_one_sample():
    model = affine_model()
    assert isinstance(model, Distribution) and isinstance(model, nn.Module)
    assert model.batch_shape == torch.Size() and model.event_shape == torch.Size([2])
    assert model.arg_constraints == {} and model.has_rsample and not model._validate_args
    x = torch.randn(4, 2)
    torch.testing.assert_close(model(x), model.log_prob(x))  # nn.Module.__call__ still works


@pytest.mark.parametrize("sample_shape,expected", [((), (2,)), ((3,), (3, 2)), ((2, 3), (2, 3, 2)),
                                                   (torch.Size([2, 3]), (2, 3, 2)), (3, (3, 2)),
                                                   ((0,), (0, 2))])
def test_sample_shapes_follow_torch(sample_shape, expected):
    model = affine_model()
    oracle = affine_oracle(Independent(Normal(torch.zeros(2), torch.ones(2)), 1))
    assert model.sample(sample_shape).shape == expected
    assert model.rsample(sample_shape).shape == expected
    if not isinstance(sample_shape, int):
        assert oracle.sample(sample_shape).shape == expected
    x, log_q = model.sample_and_log_prob(sample_shape)
    assert x.shape == expected and log_q.shape == expected[:-1]


def test_samples_equal_torchs_pushforward_drawn_from_the_same_seed():
    model = affine_model()
    oracle = affine_oracle(Independent(Normal(torch.zeros(2), torch.ones(2)), 1))
    torch.manual_seed(3)
    ours = model.sample((2, 3))
    torch.manual_seed(3)
    torch.testing.assert_close(ours, oracle.sample((2, 3)), atol=1e-12, rtol=0)


def test_log_prob_accepts_leading_dimensions_like_torch():
    model = affine_model()
    oracle = affine_oracle(Independent(Normal(torch.zeros(2), torch.ones(2)), 1))
    for shape in [(2,), (5, 2), (2, 3, 2)]:
        x = torch.randn(shape)
        got = model.log_prob(x)
        assert got.shape == shape[:-1]
        torch.testing.assert_close(got, oracle.log_prob(x), atol=1e-12, rtol=0)


def test_sample_has_no_gradient_and_rsample_has_the_reparameterised_one():
    model = affine_model()
    assert not model.sample((4,)).requires_grad
    x = model.rsample((2, 3))
    x.sum().backward()
    flow = model.flows[0]
    # x = a z + b: d sum(x) / d b_i = number of samples, d sum(x) / d a_i = sum of z_i
    z = (x.detach() - flow.shift.detach()) / flow.scale.detach()
    torch.testing.assert_close(flow.shift.grad, torch.full((2,), 6.0), atol=1e-12, rtol=0)
    torch.testing.assert_close(flow.scale.grad, z.sum(dim=(0, 1)), atol=1e-12, rtol=0)


def test_sample_and_log_prob_agrees_with_log_prob_for_any_sample_shape():
    model = NormalizingFlow(2, [Affine(2, scale=SCALE()), Sigmoid(2)])
    x, log_q = model.sample_and_log_prob((2, 3))
    torch.testing.assert_close(log_q, model.log_prob(x), atol=1e-10, rtol=0)


BASES = {
    "normal": lambda: Normal(torch.tensor([0.3, -0.2]), torch.tensor([1.5, 0.7])),
    "independent_normal": lambda: Independent(Normal(torch.tensor([0.3, -0.2]),
                                                     torch.tensor([1.5, 0.7])), 1),
    "mvn": lambda: MultivariateNormal(torch.tensor([0.3, -0.2]),
                                      torch.tensor([[2.0, 0.6], [0.6, 1.0]])),
    "lowrank": lambda: LowRankMultivariateNormal(torch.tensor([0.3, -0.2]),
                                                 torch.tensor([[1.0], [0.5]]),
                                                 torch.tensor([0.4, 0.9])),
    "uniform": lambda: Uniform(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 3.0])),
    "independent_uniform": lambda: Independent(Uniform(torch.tensor([-1.0, 0.0]),
                                                       torch.tensor([1.0, 3.0])), 1),
}


def as_one_sample(base):
    return Independent(base, 1) if isinstance(base, (Normal, Uniform)) else base


def inside(base, n=7):
    """Points inside the support of the pushed-forward base."""
    torch.manual_seed(1)
    return SCALE() * base.sample((n,)).reshape(n, 2) + SHIFT()


@pytest.mark.parametrize("name", sorted(BASES))
def test_an_explicit_base_gives_torchs_density(name):
    model = affine_model(BASES[name]())
    oracle = affine_oracle(as_one_sample(BASES[name]()))
    x = inside(BASES[name]())
    torch.testing.assert_close(model.log_prob(x), oracle.log_prob(x), atol=1e-12, rtol=0)
    assert model.event_shape == (2,)


@pytest.mark.parametrize("name", sorted(BASES))
def test_an_explicit_base_follows_float32_and_double(name):
    model = affine_model(BASES[name]()).float()
    assert model.sample(3).dtype == torch.float32
    assert all(b.dtype == torch.float32 for b in model.buffers())
    model = model.double()
    x = model.sample((2, 3))
    assert x.dtype == torch.float64 and model.log_prob(x).dtype == torch.float64
    oracle = affine_oracle(as_one_sample(BASES[name]()))
    x = inside(BASES[name]())
    torch.testing.assert_close(model.log_prob(x), oracle.log_prob(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", sorted(BASES))
def test_an_explicit_base_survives_a_state_dict_round_trip(name):
    model = affine_model(BASES[name]())
    state = model.state_dict()
    assert any(key.startswith("base_") for key in state)
    # a fresh model with another base of the same kind takes over the saved one
    other = NormalizingFlow(_shifted(BASES[name]()), [Affine(2)])
    x = inside(BASES[name]())
    assert not torch.allclose(other.log_prob(x), model.log_prob(x))
    other.load_state_dict(state)
    torch.testing.assert_close(other.log_prob(x), model.log_prob(x), atol=0, rtol=0)


def _shifted(base):
    inner = base.base_dist if isinstance(base, Independent) else base
    if isinstance(inner, Uniform):
        new = Uniform(inner.low - 0.5, inner.high + 0.5)
    elif isinstance(inner, Normal):
        new = Normal(inner.loc + 1.0, inner.scale * 2)
    elif isinstance(inner, LowRankMultivariateNormal):
        return LowRankMultivariateNormal(inner.loc + 1.0, inner.cov_factor * 2, inner.cov_diag)
    else:
        return MultivariateNormal(inner.loc + 1.0, scale_tril=2 * inner.scale_tril)
    return Independent(new, 1) if isinstance(base, Independent) else new


def test_the_base_moves_with_the_model_to_another_device():
    model = NormalizingFlow(BASES["mvn"](), [Sigmoid(2)]).to("meta")
    assert model.base.loc.device.type == "meta"
    with course_lib.validation(False):
        assert model.sample((3,)).device.type == "meta"


def test_a_base_of_the_wrong_event_shape_is_refused_at_construction():
    with pytest.raises(FlowInputError, match=r"base's event shape \(3,\) does not fit the first "
                                             r"flow, which takes samples of shape \(2,\)"):
        NormalizingFlow(MultivariateNormal(torch.zeros(3), torch.eye(3)), [Affine(2)])
    with pytest.raises(FlowInputError, match=r"event shape \(\) does not fit"):
        NormalizingFlow(Normal(0.0, 1.0), [Affine(1)])


def test_a_base_with_batch_dimensions_or_of_another_family_is_refused():
    with pytest.raises(CourseValueError, match=r"batch_shape \(\)\), got batch_shape \(3,\)"):
        NormalizingFlow(Independent(Normal(torch.zeros(3, 2), 1.0), 1), [Affine(2)])
    with pytest.raises(CourseValueError, match="got batch_shape"):
        NormalizingFlow(MultivariateNormal(torch.zeros(4, 2), torch.eye(2)), [Affine(2)])
    with pytest.raises(CourseValueError, match="one of the torch distributions.*StudentT"):
        NormalizingFlow(Independent(StudentT(3.0, torch.zeros(2)), 1), [Affine(2)])


@pytest.mark.parametrize("flows,message", [
    ([nn.Linear(2, 2)], "got Linear at position 0"),
    ([Affine(2), "Affine"], "got str at position 1"),
    ([], "at least one flow"),
    (nn.Linear(2, 2), "a Flow or a list of Flows, got Linear"),
])
def test_flows_that_are_not_course_flows_are_refused(flows, message):
    with pytest.raises(FlowInputError, match=message):
        NormalizingFlow(2, flows)


@pytest.mark.parametrize("base", [0, -2, 2.5, (2, 0), "2", None])
def test_a_bad_base_argument_is_refused(base):
    with pytest.raises(CourseValueError, match="NormalizingFlow: expected"):
        NormalizingFlow(base, [Affine(2)])


@pytest.mark.parametrize("bad", [-1, 2.5, (2, -1), "3", None])
def test_a_bad_sample_shape_is_refused(bad):
    with pytest.raises(CourseValueError, match="NormalizingFlow.rsample: expected"):
        affine_model().sample(bad)


def test_empty_batches_give_empty_results():
    model = affine_model()
    empty = model.log_prob(torch.zeros(0, 2))
    assert empty.shape == (0,) and empty.dtype == torch.float64
    assert model.log_prob(torch.zeros(3, 0, 2)).shape == (3, 0)
    assert model.sample(0).shape == (0, 2)
    with pytest.raises(FlowInputError, match="forward_kl: expected at least one sample"):
        model.forward_kl(torch.zeros(0, 2))


@pytest.mark.parametrize("x,message", [
    (torch.zeros(4, 3), r"expected x of shape \(\.\.\., 2\).*got \(4, 3\)"),
    (torch.zeros(4, 2, dtype=torch.int64), "floating dtype"),
    ([[0.0, 0.0]], "torch.Tensor, got list"),
])
def test_log_prob_refuses_data_of_another_shape_or_type(x, message):
    with pytest.raises(FlowInputError, match=message):
        affine_model().log_prob(x)


def test_log_prob_refuses_data_on_another_device():
    with pytest.raises(FlowInputError, match="expected x on the model's device"):
        affine_model().log_prob(torch.zeros(3, 2, device="meta"))


def test_reverse_kl_keeps_its_target_shape_check():
    with pytest.raises(FlowInputError, match=r"log_target must return a tensor of shape \(8,\)"):
        affine_model().reverse_kl(lambda x: x, 8)
    with pytest.raises(CourseValueError, match="expected the number of samples n"):
        affine_model().reverse_kl(lambda x: x[:, 0], 0)


@pytest.mark.parametrize("flows,support", [
    (lambda: [Affine(2)], constraints.real),
    (lambda: [Affine(2), Exp(2)], constraints.positive),
    (lambda: [Exp(2), Sigmoid(2)], constraints.unit_interval),
    (lambda: [Exp(2), Inverse(Exp(2))], constraints.real),
])
def test_support_is_the_codomain_of_the_last_flow(flows, support):
    model = NormalizingFlow(2, flows())
    assert isinstance(model.support, constraints.independent)
    assert type(model.support.base_constraint) is type(support)
    assert model.support.event_dim == 1
    assert bool(model.support.check(model.sample((50,))).all())


def test_a_latent_that_overflows_is_an_error_with_validation_and_inf_without():
    model = NormalizingFlow(2, [Affine(2, scale=1e-30)]).float()
    x = torch.tensor([[1e10, 0.0]], dtype=torch.float32)   # z = x / scale = 1e40 overflows float32
    with pytest.raises(FlowInputError, match="output has 1 non-finite value.*overflows torch.float32"):
        model.log_prob(x)
    with course_lib.validation(False):
        assert model.log_prob(x).item() == -math.inf


def test_a_non_finite_parameter_is_named_when_the_flows_fail():
    model = NormalizingFlow(2, [Affine(2), AffineCoupling(2), Affine(2)])
    with torch.no_grad():
        next(model.flows[1].parameters()).view(-1)[0] = math.nan
    for call in (lambda: model.log_prob(torch.randn(4, 2)), lambda: model.sample(4)):
        with pytest.raises(CourseValueError, match=r"parameter 'flow\.flows\.1\.conditioner"):
            call()


def test_runs_on_the_requested_device(device):
    """With ``--device D`` this module's tensors and models live on D."""
    assert torch.empty(()).device == device
    model = affine_model()
    assert dtype_device(model)[1] == device and model.base.mean.device == device

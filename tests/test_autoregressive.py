"""MADE, MAF and IAF: the autoregressive property, triangular Jacobians, which direction
is one pass, and the model builder. The shared flow contract covers round trips and
log-determinants."""
import math

import pytest
import torch
from torch.distributions import Normal

from course_lib import models
from course_lib.flows import IAF, MADE, MAF, FlowInputError
from course_lib.validation import CourseValueError
from course_lib.jacobian import jacobian
from course_lib.model import NormalizingFlow
from flow_cases import randomise

ORDERS = ["sequential", "random", torch.tensor([3, 0, 4, 1, 2])]
HIDDEN = [(10,), (10, 9), (8, 8, 8)]


def moved(module, scale=0.5, seed=0):
    return randomise(module, scale, seed)


def position_in_order(order):
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order))
    return position


def earlier(order):
    """``earlier[i, j]``: variable ``j`` comes strictly before variable ``i`` in ``order``."""
    pos = position_in_order(order)
    return pos[None, :] < pos[:, None]


@pytest.mark.parametrize("order", ORDERS, ids=["sequential", "random", "given"])
@pytest.mark.parametrize("hidden", HIDDEN, ids=["1 layer", "2 layers", "3 layers"])
def test_made_output_depends_exactly_on_earlier_inputs(order, hidden):
    made = moved(MADE(5, hidden=hidden, params_per_dim=3, order=order, seed=3))
    x = torch.randn(8, 5)
    jac = jacobian(made, x).reshape(8, 5, 3, 5)
    depends = jac.abs().amax(dim=(0, 2)) > 0
    assert torch.equal(depends, earlier(made.order))


@pytest.mark.parametrize("order", ORDERS, ids=["sequential", "random", "given"])
def test_made_masks_connect_each_output_only_to_earlier_inputs(order):
    made = MADE(5, hidden=(7, 6), params_per_dim=2, order=order)
    paths = made.masks[0]
    for mask in made.masks[1:]:
        paths = mask @ paths
    connected = paths.reshape(5, 2, 5).amin(dim=1) > 0
    assert torch.equal(connected, earlier(made.order))


def test_made_output_has_one_slot_per_variable_and_parameter():
    assert MADE(4, hidden=(8,), params_per_dim=5)(torch.randn(3, 4)).shape == (3, 4, 5)


def test_made_starts_with_zero_output():
    assert torch.equal(MADE(3)(torch.randn(4, 3)), torch.zeros(4, 3, 2))


def test_made_random_order_is_a_permutation_fixed_by_the_seed():
    first, again, other = (MADE(8, order="random", seed=s).order for s in (5, 5, 6))
    assert torch.equal(first.sort().values, torch.arange(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("cls", [MAF, IAF])
@pytest.mark.parametrize("order", ["sequential", "random"])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_jacobian_is_triangular_in_the_variable_order(cls, order, direction):
    flow = moved(cls(4, hidden=(12, 12), order=order, seed=1), scale=0.3)
    x = torch.randn(6, 4)
    jac = jacobian(getattr(flow, direction), x)
    permuted = jac[:, flow.order][:, :, flow.order]
    upper = torch.triu(permuted, diagonal=1)
    assert torch.equal(upper, torch.zeros_like(upper))
    assert bool((permuted.diagonal(dim1=1, dim2=2) != 0).all())


@pytest.mark.parametrize("cls", [MAF, IAF])
def test_flows_start_as_the_identity(cls):
    z = torch.randn(5, 3)
    x, logdet = cls(3)(z)
    assert torch.equal(x, z) and torch.equal(logdet, torch.zeros(5))


def count_made_passes(flow, direction, dim):
    calls = []
    handle = flow.made.register_forward_hook(lambda *_: calls.append(1))
    getattr(flow, direction)(torch.randn(4, dim))
    handle.remove()
    return len(calls)


@pytest.mark.parametrize("dim", [2, 7])
def test_maf_density_is_one_pass_and_sampling_is_d_passes(dim):
    flow = MAF(dim)
    assert count_made_passes(flow, "inverse", dim) == 1
    assert count_made_passes(flow, "forward", dim) == dim


@pytest.mark.parametrize("dim", [2, 7])
def test_iaf_sampling_is_one_pass_and_density_is_d_passes(dim):
    flow = IAF(dim)
    assert count_made_passes(flow, "forward", dim) == 1
    assert count_made_passes(flow, "inverse", dim) == dim


def test_log_scale_stays_within_its_bound():
    flow = MAF(3, scale_bound=2.0)
    with torch.no_grad():
        flow.made.net[-1].bias.fill_(1e3)
    _, logdet = flow.inverse(torch.randn(4, 3))
    assert bool((logdet.abs() <= 3 * 2.0).all()) and bool(torch.isfinite(logdet).all())


def test_maf_with_constant_parameters_has_the_gaussian_density():
    # with the last MADE layer's weights at zero, mu and s_raw are its biases and
    # x ~ N(mu, exp(s)^2) with the bounded log-scale s = 3 tanh(s_raw / 3)
    flow = MAF(3)
    with torch.no_grad():
        flow.made.net[-1].bias.copy_(torch.tensor([0.5, -0.3, -1.0, 0.2, 2.0, 0.7]))
    model = NormalizingFlow(3, [flow])
    x = torch.randn(10, 3) * 2
    mu, s = torch.tensor([0.5, -1.0, 2.0]), 3 * torch.tanh(torch.tensor([-0.3, 0.2, 0.7]) / 3)
    expected = Normal(mu, s.exp()).log_prob(x).sum(dim=1)
    torch.testing.assert_close(model.log_prob(x), expected, atol=1e-12, rtol=0)


def test_maf_model_density_integrates_to_one():
    torch.manual_seed(0)
    model = moved(models.maf(2, n_layers=2, hidden=16), scale=0.2)
    edge, n = 12.0, 300
    grid = torch.linspace(-edge, edge, n)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    with torch.no_grad():
        density = model.log_prob(points).exp()
    cell = (grid[1] - grid[0]) ** 2
    assert math.isclose(density.sum().item() * cell.item(), 1.0, abs_tol=1e-4)


def test_maf_model_alternates_the_order_between_layers():
    model = models.maf(4, n_layers=3)
    orders = [flow.order.tolist() for flow in model.flows]
    assert orders == [[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3]]


def test_maf_and_iaf_run_in_float32():
    for cls in (MAF, IAF):
        flow = moved(cls(3).float(), scale=0.3)
        z = torch.randn(5, 3, dtype=torch.float32)
        z_back, _ = flow.inverse(flow(z)[0])
        torch.testing.assert_close(z_back, z, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dim=0), "MADE: expected dim to be an integer >= 1, got 0"),
    (dict(dim=3, hidden=(8, 0)), "expected every hidden width to be an integer >= 1, got 0"),
    (dict(dim=3, hidden="64"), "expected hidden to be a width or a sequence of widths"),
    (dict(dim=3, params_per_dim=0), "expected params_per_dim to be an integer >= 1, got 0"),
    (dict(dim=3, seed=-1), "expected seed to be an integer >= 0, got -1"),
    (dict(dim=3, order="backwards"), "MADE: expected order to be 'sequential', 'random'"),
    (dict(dim=3, order=[0, 1, 1]), r"permutation of 0..2, got \[0, 1, 1\]"),
    (dict(dim=3, order=[0, 1]), r"permutation of 0..2, got \[0, 1\]"),
    (dict(dim=3, order=None), r"expected order to be .* got None"),
])
def test_made_refuses_bad_arguments(kwargs, message):
    with pytest.raises(CourseValueError, match=message):
        MADE(**kwargs)


@pytest.mark.parametrize("cls", [MAF, IAF])
@pytest.mark.parametrize("bound", [0, -1.0, math.nan, "3"])
def test_non_positive_scale_bound_is_refused(cls, bound):
    with pytest.raises(CourseValueError, match=f"{cls.__name__}: expected scale_bound to be a "
                                              "positive number"):
        cls(3, scale_bound=bound)


@pytest.mark.parametrize("cls", [MAF, IAF])
def test_wrong_input_shape_is_refused(cls):
    with pytest.raises(FlowInputError, match=r"expected x of shape \(batch, 3\), got \(4, 2\)"):
        cls(3).inverse(torch.randn(4, 2))


def test_made_refuses_wrong_input_shape():
    with pytest.raises(FlowInputError, match=r"MADE: expected x of shape \(batch, 3\), got \(4, 5\)"):
        MADE(3)(torch.randn(4, 5))


@pytest.mark.parametrize("kwargs", [dict(n_layers=0), dict(hidden=0), dict(n_hidden=0)])
def test_maf_builder_refuses_bad_sizes(kwargs):
    with pytest.raises(ValueError, match="must be a positive integer"):
        models.maf(2, **kwargs)


def test_maf_builder_spreads_the_hinges_of_every_first_masked_layer():
    torch.manual_seed(3)
    plain = models.maf(3, n_layers=2, hidden=16, activation=torch.nn.LeakyReLU)
    torch.manual_seed(3)
    spread = models.maf(3, n_layers=2, hidden=16, activation=torch.nn.LeakyReLU, hinge_gain=8.0)
    for before, after in zip(plain.flows, spread.flows):
        assert any(isinstance(m, torch.nn.LeakyReLU) for m in after.made.modules())
        first_before, first_after = before.made.net[0], after.made.net[0]
        torch.testing.assert_close(first_after.weight, 8.0 * first_before.weight)
        # unit k's hinge w_k . (u - c_k) = 0 passes through a point c_k of [-3, 3]^d:
        # |bias_k| = |w_k . c_k| <= 3 sum_j |w_kj| over the inputs the mask keeps
        kept = (first_after.weight * first_after.mask).abs().sum(dim=1)
        assert bool((first_after.bias.abs() <= 3 * kept + 1e-6).all())
        assert not torch.allclose(first_after.bias, first_before.bias)
        assert torch.equal(after.made.masks[0], before.made.masks[0])
    x = torch.randn(6, 3)
    torch.testing.assert_close(spread.log_prob(x), spread.base.log_prob(x))   # still the identity
    z = torch.randn(1, 3, dtype=torch.float64)
    layer = moved(spread.flows[0].double(), scale=0.3)
    assert bool((jacobian(layer, z)[0].triu(1) == 0).all())

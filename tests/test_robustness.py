"""Beyond the input tensor: parameters, batch size, magnitudes, boundaries, constructors and the
order of calls. Every case gives the right number (checked against an independent oracle)
or a clear ``ValueError`` that names what was expected and what was given."""
import math

import pytest
import torch

import course_lib
from course_lib.flows import (ActNorm, Affine, Compose, Exp, FlowInputError, Inverse, InvConv1x1,
                              LogitTransform, LULinear, MultiScale, Permutation, Planar, Radial,
                              ResidualFlow, Reverse, Sigmoid, Squeeze, planar, radial)
from course_lib.flows.elementwise import bounded_log_scale
from course_lib.model import NormalizingFlow
from course_lib.validation import CourseValueError


def set_(param, value):
    with torch.no_grad():
        param.fill_(value)


# -- non-finite parameters: named where they are used ----------------------------------------

@pytest.mark.parametrize("make, param, where", [
    (lambda: Affine(2), "scale", "Affine"),
    (lambda: LULinear(3), "lu.log_u", "LULinear"),
    (lambda: ActNorm(2), "log_scale", "ActNorm"),
    (lambda: Planar(2), "w", "Planar"),
    (lambda: Radial(2), "z0", "Radial"),
    (lambda: ResidualFlow(2, hidden=8), "layers.1.bias", "ResidualFlow"),
])
def test_a_nan_parameter_is_named_in_both_directions(make, param, where):
    flow = make()
    set_(flow.get_parameter(param), math.nan)
    for direction in ("forward", "inverse"):
        with pytest.raises(CourseValueError, match=rf"{where}\.{direction}: parameter '{param}' "
                                                   "contains non-finite"):
            getattr(flow, direction)(torch.randn(3, 2 if where != "LULinear" else 3))


def test_nan_parameters_in_compose_blame_the_parameter_not_an_intermediate_tensor():
    flow = Compose(Affine(2), Sigmoid(2), LULinear(2))
    set_(flow[0].shift, math.nan)
    with pytest.raises(CourseValueError, match=r"Compose.forward: parameter 'flows.0.shift'"):
        flow(torch.randn(4, 2))
    model = NormalizingFlow(2, [Affine(2), Radial(2)])
    set_(model.flows[1].a, math.inf)
    with pytest.raises(CourseValueError, match=r"parameter 'flow.flows.1.a' contains non-finite"):
        model.log_prob(torch.randn(4, 2))


@pytest.mark.parametrize("dtype, overflows", [(torch.float32, True), (torch.float64, False)])
def test_a_huge_log_u_is_refused_where_exp_overflows_and_exact_where_it_does_not(dtype, overflows):
    flow = LULinear(3).to(dtype)
    set_(flow.lu.log_u, 100.0)
    z = torch.randn(2, 3, dtype=dtype)
    if overflows:
        with pytest.raises(CourseValueError, match=r"parameter 'log_u' = 100 gives a scale "
                                                   r"exp\(100\) that is inf in torch.float32"):
            flow(z)
    else:
        x, logdet = flow(z)
        torch.testing.assert_close(x, z * math.exp(100), rtol=1e-12, atol=0)
        torch.testing.assert_close(logdet, torch.full((2,), 300.0, dtype=dtype), rtol=1e-14, atol=0)


def test_actnorm_with_log_scale_100_in_float32_is_refused_naming_log_scale():
    norm = ActNorm(2).float()
    set_(norm.log_scale, 100.0)
    with pytest.raises(CourseValueError, match="ActNorm: parameter 'log_scale' = 100"):
        norm(torch.randn(3, 2, dtype=torch.float32))


def test_an_output_that_overflows_says_so_instead_of_returning_inf():
    flow = Affine(1, scale=1e30).float()
    with pytest.raises(FlowInputError, match=r"Affine.forward: the output has 1 non-finite.*"
                                             r"overflows torch.float32"):
        flow(torch.tensor([[1e10]], dtype=torch.float32))


# -- parameters that make the map non-invertible --------------------------------------------

def test_lulinear_pivot_test_is_relative_so_a_tiny_identity_is_invertible():
    flow = LULinear(3, weight=1e-20 * torch.eye(3))
    z = torch.randn(4, 3)
    x, logdet = flow(z)
    torch.testing.assert_close(x, 1e-20 * z, rtol=1e-14, atol=0)
    torch.testing.assert_close(logdet, torch.full((4,), 3 * math.log(1e-20)), rtol=1e-14, atol=0)
    torch.testing.assert_close(flow.inverse(x)[0], z, rtol=1e-12, atol=0)
    with pytest.raises(FlowInputError, match=r"singular to float64 precision \(smallest LU pivot"):
        LULinear(2, weight=1e-20 * torch.tensor([[1.0, 2.0], [2.0, 4.0]]))


def test_a_zero_scale_set_after_construction_is_refused_when_used():
    flow = Affine(2)
    set_(flow.scale, 0.0)
    with pytest.raises(FlowInputError, match=r"scale is 0 in dimension\(s\) \[0, 1\]"):
        flow.inverse(torch.randn(2, 2))


# -- boundaries: strict ---------------------------------------------------------------------

def test_planar_on_the_boundary_w_u_minus_1_is_refused():
    with pytest.raises(FlowInputError, match=r"w\^T u = -1 puts the map on the boundary"):
        planar(torch.zeros(1, 2), torch.tensor([-0.5, 0.0]), torch.tensor([2.0, 0.0]), 0.0)


def test_radial_on_the_boundary_beta_minus_alpha_is_refused():
    with pytest.raises(FlowInputError, match=r"beta > -alpha.*alpha = 0.7, beta = -0.7"):
        radial(torch.zeros(1, 2), torch.zeros(2), 0.7, -0.7)


def test_planar_with_a_large_negative_u_stays_invertible_in_float32():
    flow = Planar(2)
    with torch.no_grad():
        flow.w.copy_(torch.tensor([1.0, 0.5]))
        flow.u.copy_(torch.tensor([-150.0, 0.0]))       # softplus(-150) underflows float32
    flow32 = flow.float()
    z = torch.tensor([[0.3, -0.6], [2.0, 1.0], [-1.0, 0.5]], dtype=torch.float32)  # s = 0 in row 0
    with torch.no_grad():
        flow32.b.fill_(0.0)
    x, logdet = flow32(z)
    assert bool(torch.isfinite(logdet).all())
    # the floor sqrt(eps): at s = 0 the Jacobian determinant is exactly 1 + w^T u_hat
    assert logdet[0].item() == pytest.approx(math.log(torch.finfo(torch.float32).eps ** 0.5),
                                             rel=1e-3)
    # the closed form of the intended map, in float64: 1 + w^T u_hat is the float32 floor
    floor = torch.finfo(torch.float32).eps ** 0.5
    t = torch.tanh(z.double() @ torch.tensor([1.0, 0.5]))
    expected = torch.log(t * t + (1 - t * t) * floor)
    torch.testing.assert_close(logdet.double(), expected, rtol=0, atol=1e-4)
    torch.testing.assert_close(flow32.inverse(x)[0], z, rtol=0, atol=1e-3)


def test_radial_with_softplus_b_underflowing_stays_invertible_in_float32():
    flow = Radial(2).float()
    set_(flow.b, -150.0)                                  # alpha + beta = softplus(-150) -> floor
    z = torch.tensor([[0.0, 0.0], [1e-3, 0.0], [3.0, -4.0]], dtype=torch.float32)
    x, logdet = flow(z)
    assert bool(torch.isfinite(logdet).all()) and bool(torch.isfinite(x).all())
    torch.testing.assert_close(flow.inverse(x)[0][2:], z[2:], rtol=1e-5, atol=0)


# -- empty batches ----------------------------------------------------------------------------

EMPTY = {
    "Affine": (lambda: Affine(2, scale=2.0), (2,)),
    "Exp": (lambda: Exp(2), (2,)),
    "Sigmoid": (lambda: Sigmoid(2), (2,)),
    "Permutation": (lambda: Permutation(3), (3,)),
    "Reverse": (lambda: Reverse(3), (3,)),
    "LULinear": (lambda: LULinear(3), (3,)),
    "Planar": (lambda: Planar(2), (2,)),
    "Radial": (lambda: Radial(2), (2,)),
    "ActNorm": (lambda: ActNorm(3), (3, 4, 4)),
    "InvConv1x1": (lambda: InvConv1x1(3), (3, 4, 4)),
    "Squeeze": (lambda: Squeeze(1), (4, 2, 2)),
    "MultiScale": (lambda: MultiScale(1, [InvConv1x1(4)]), (1, 4, 4)),
    "LogitTransform": (lambda: LogitTransform(1), (1, 4, 4)),
    "ResidualFlow": (lambda: ResidualFlow(2, hidden=8), (2,)),
    "Compose": (lambda: Compose(Affine(2), Radial(2)), (2,)),
    "Inverse": (lambda: Inverse(Sigmoid(2)), (2,)),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_an_empty_batch_gives_empty_outputs_and_leaves_the_state_alone(name):
    make, shape = EMPTY[name]
    flow = make()
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    z = torch.zeros(0, *shape)
    x, logdet = flow(z)
    assert logdet.shape == (0,) and x.shape[0] == 0
    z_back, inv_logdet = flow.inverse(torch.zeros(0, *x.shape[1:]))
    assert z_back.shape == z.shape and inv_logdet.shape == (0,)
    for key, value in flow.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_squeeze_of_an_empty_batch_has_the_squeezed_shape():
    assert Squeeze(1).inverse(torch.zeros(0, 1, 4, 6))[0].shape == (0, 4, 2, 3)
    assert Squeeze().forward(torch.zeros(0, 8, 2, 3))[0].shape == (0, 2, 4, 6)


# -- magnitudes -------------------------------------------------------------------------------

def test_exp_refuses_to_overflow_or_underflow_in_float32():
    flow = Exp(1).float()
    f32 = dict(dtype=torch.float32)
    x, logdet = flow(torch.tensor([[88.0]], **f32))
    assert x.item() == pytest.approx(math.exp(88.0), rel=1e-6) and logdet.item() == 88.0
    with pytest.raises(FlowInputError, match=r"exp\(z\) overflows in torch.float32 at z = 89"):
        flow(torch.tensor([[89.0]], **f32))
    with pytest.raises(FlowInputError, match=r"underflows to 0 in torch.float32 at z = -104"):
        flow(torch.tensor([[-104.0]], **f32))


@pytest.mark.parametrize("size", [2e19, 1e30, 3e37])
def test_radial_is_stable_for_huge_inputs_in_float32(size):
    torch.manual_seed(0)
    flow64 = Radial(3)
    with torch.no_grad():
        flow64.z0.copy_(torch.tensor([0.5, -1.0, 2.0]))
        flow64.a.fill_(0.3)
        flow64.b.fill_(-0.4)
    flow32 = Radial(3).float()
    flow32.load_state_dict(flow64.state_dict())
    z = torch.tensor([[size, -size / 3, size / 7]])
    x, logdet = flow32(z.float())
    assert bool(torch.isfinite(x).all()) and bool(torch.isfinite(logdet).all())
    x64, logdet64 = flow64(z)
    torch.testing.assert_close(x.double(), x64, rtol=1e-6, atol=0)
    torch.testing.assert_close(logdet.double(), logdet64, rtol=0, atol=1e-6)
    torch.testing.assert_close(flow32.inverse(x)[0].double(), z, rtol=1e-6, atol=0)


def test_radial_log_det_near_the_centre_matches_the_closed_form_in_float64():
    alpha, beta, d = 0.8, -0.8 + 1e-12, 3
    z = torch.tensor([[0.0, 0.0, 0.0], [1e-13, 0.0, 0.0]])
    _, logdet = radial(z, torch.zeros(3), alpha, beta)
    r = z.norm(dim=1)
    # closed form with alpha + beta = 1e-12 carried exactly
    g = 1e-12
    expected = ((d - 1) * (torch.log(g + r) - torch.log(alpha + r))
                + torch.log(r * r + 2 * alpha * r + alpha * g) - 2 * torch.log(alpha + r))
    torch.testing.assert_close(logdet, expected, rtol=1e-3, atol=0)


def test_sigmoid_refuses_inputs_where_float32_saturates_and_is_stable_elsewhere():
    flow = Sigmoid(1).float()
    with pytest.raises(FlowInputError, match=r"sigmoid\(z\) rounds to exactly 1 in torch.float32 at z = 17"):
        flow(torch.tensor([[17.0]], dtype=torch.float32))
    z = torch.tensor([[-80.0], [-15.0], [10.0]], dtype=torch.float32)
    x, logdet = flow(z)
    # log sigma'(z) = -|z| - 2 log(1 + e^-|z|), against float64
    expected = -z.double().abs() - 2 * torch.log1p(torch.exp(-z.double().abs()))
    torch.testing.assert_close(logdet.double(), expected[:, 0], rtol=1e-6, atol=0)
    torch.testing.assert_close(flow.inverse(x)[0][:2], z[:2], rtol=1e-5, atol=0)


def test_logit_transform_refuses_inputs_where_float32_saturates():
    with pytest.raises(FlowInputError, match=r"sigmoid\(y\) rounds to exactly 1 in torch.float32"):
        LogitTransform(1).float()(torch.full((1, 1, 2, 2), 20.0, dtype=torch.float32))


def test_bounded_log_scale_with_an_infinite_bound_is_the_identity_not_nan():
    s = torch.tensor([0.0, -3.0, 7.5])
    assert torch.equal(bounded_log_scale(s, math.inf), s)
    torch.testing.assert_close(bounded_log_scale(s, 2.0), 2.0 * torch.tanh(s / 2.0))
    with pytest.raises(CourseValueError, match="expected bound to be a positive number"):
        bounded_log_scale(s, -1.0)


# -- constructors: validated once with the shared helpers -------------------------------------

@pytest.mark.parametrize("build, message", [
    (lambda: Affine(-1), r"Affine: expected dim to be an integer >= 1, got -1"),
    (lambda: Affine(2.5), r"Affine: expected dim to be an integer >= 1, got 2.5 \(float\)"),
    (lambda: Affine(0), r"Affine: expected dim to be an integer >= 1, got 0"),
    (lambda: Exp(0), r"Exp: expected dim to be an integer >= 1, got 0"),
    (lambda: Sigmoid(True), r"Sigmoid: expected dim to be an integer >= 1, got True"),
    (lambda: Affine(2, scale=math.nan), r"Affine: expected a finite scale, got nan"),
    (lambda: Affine(2, shift=math.inf), r"Affine: expected a finite shift, got inf"),
    (lambda: Affine(2, scale="big"), r"Affine: expected scale to be a number or a tensor"),
    (lambda: Compose(torch.nn.Linear(2, 2)), r"Compose: expected Flow instances.*got Linear"),
    (lambda: Inverse(torch.nn.Linear(2, 2)), r"Inverse: expected a Flow, got Linear"),
    (lambda: Permutation(3, seed=-1), r"Permutation: expected seed to be an integer >= 0"),
    (lambda: LULinear(0), r"LULinear: expected dim to be an integer >= 1, got 0"),
    (lambda: Planar(2, max_iter=0), r"Planar: expected max_iter to be an integer >= 1"),
    (lambda: Radial("2"), r"Radial: expected dim to be an integer >= 1, got '2'"),
    (lambda: ActNorm(0), r"ActNorm: expected channels to be an integer >= 1, got 0"),
    (lambda: InvConv1x1(-2), r"InvConv1x1: expected channels to be an integer >= 1, got -2"),
    (lambda: LogitTransform(1, alpha=math.nan), r"LogitTransform: expected alpha to be finite"),
    (lambda: LogitTransform(1, alpha=0.5), r"LogitTransform: expected alpha in \(0, 0.5\)"),
    (lambda: MultiScale(1, inner=torch.nn.Linear(2, 2)), r"MultiScale: expected inner to be a Flow"),
    (lambda: ResidualFlow(2, lipschitz=math.nan), r"ResidualFlow: expected lipschitz to be a finite"),
])
def test_bad_constructor_arguments_are_refused_clearly(build, message):
    with pytest.raises(CourseValueError, match=message):
        build()


# -- no hidden state: ResidualFlow --------------------------------------------------------------

def test_a_new_residual_flow_gives_the_same_density_at_every_call_and_an_exact_round_trip():
    torch.manual_seed(0)
    flow = ResidualFlow(2, hidden=16)
    assert not flow.training
    model = NormalizingFlow(2, [flow])
    x = torch.tensor([[0.3, -1.2]])
    first = model.log_prob(x)
    for _ in range(3):
        assert torch.equal(model.log_prob(x), first)
    z = torch.randn(50, 2)
    torch.testing.assert_close(flow.inverse(flow(z)[0])[0], z, rtol=0, atol=1e-9)


def test_two_training_calls_before_backward_work_without_power_iterations():
    torch.manual_seed(0)
    flow = ResidualFlow(2, hidden=8, n_power_iterations=0).train()
    z = torch.randn(4, 2)
    (a, la), (b, lb) = flow(z), flow(z)
    (a.sum() + la.sum() + b.sum() + lb.sum()).backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all())
               for p in flow.parameters())


def test_two_training_calls_before_backward_work_with_power_iterations():
    torch.manual_seed(0)
    flow = ResidualFlow(2, hidden=8, n_power_iterations=3).train()
    z = torch.randn(4, 2)
    (flow(z)[1].sum() + flow(z)[1].sum()).backward()


def test_the_inverse_gradient_of_a_sample_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    flow = ResidualFlow(2, hidden=16, n_power_iterations=20)
    with torch.no_grad():   # weights far above the bound: the branch is as steep as allowed,
        for layer in flow.layers:   # so the fixed points converge slowly, by 0.9 per step
            layer.weight.mul_(10.0)
    flow.train()
    flow.branch()           # power iteration follows the new weights
    flow.eval()
    x0 = torch.tensor([[0.2, -0.4]])

    def grad_of_first(batch):
        batch = batch.clone().requires_grad_(True)
        z, logdet = flow.inverse(batch)
        (z[0].sum() + logdet[0]).backward()
        return batch.grad[0]

    alone = grad_of_first(x0)
    # a tolerance scaled by the largest |x| of the batch would be 1e-6 here, not 1e-10
    with_huge_neighbour = grad_of_first(torch.cat([x0, torch.tensor([[1e8, -5e7]])]))
    torch.testing.assert_close(with_huge_neighbour, alone, rtol=0, atol=1e-12)


def test_residual_flow_inverse_passes_gradcheck_with_the_undefined_gradient_check():
    torch.manual_seed(0)
    flow = ResidualFlow(2, hidden=8)
    x = torch.randn(3, 2, requires_grad=True)
    assert torch.autograd.gradcheck(flow.inverse, (x,), check_undefined_grad=True)
    assert torch.autograd.gradcheck(flow.forward, (x,), check_undefined_grad=True)


# -- validation off: no data-dependent branches ----------------------------------------------

VECTOR_FLOWS = {
    "Affine": lambda: Affine(2, scale=0.5, shift=1.0),
    "Exp": lambda: Exp(2),
    "Sigmoid": lambda: Sigmoid(2),
    "Permutation": lambda: Permutation(2),
    "LULinear": lambda: LULinear(2, weight=torch.tensor([[1.0, 0.5], [-0.3, 2.0]])),
    "Planar": lambda: Planar(2),
    "Radial": lambda: Radial(2),
    "ActNorm": lambda: ActNorm(2),
    "ResidualFlow": lambda: ResidualFlow(2, hidden=8),
    "Compose": lambda: Compose(Affine(2), Radial(2), Planar(2)),
    "Inverse": lambda: Inverse(Affine(2, scale=3.0)),
}


@pytest.mark.parametrize("name", sorted(VECTOR_FLOWS))
def test_forward_works_under_vmap_and_jacrev_with_validation_off(name):
    torch.manual_seed(0)
    flow = VECTOR_FLOWS[name]()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    z = torch.randn(4, 2)
    with course_lib.validation(False):
        x = torch.func.vmap(lambda t: flow(t[None])[0][0])(z)
        jac = torch.func.vmap(torch.func.jacrev(lambda t: flow(t[None])[0][0]))(z)
    torch.testing.assert_close(x, flow(z)[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.linalg.slogdet(jac)[1], flow(z)[1], rtol=1e-9, atol=1e-9)


def test_forward_and_closed_form_inverses_compile_without_graph_breaks_with_validation_off():
    torch.manual_seed(0)
    flow = Compose(Affine(2, scale=0.5), LULinear(2), Radial(2), Planar(2), ActNorm(2), Sigmoid(2))
    inverse_part = Compose(Affine(2, scale=0.5), LULinear(2), Radial(2), Exp(2))
    z = torch.randn(5, 2)
    torch._dynamo.reset()
    with course_lib.validation(False):
        x, logdet = torch.compile(flow, fullgraph=True, backend="eager")(z)
        back, inv_logdet = torch.compile(inverse_part.inverse, fullgraph=True, backend="eager")(
            inverse_part(z)[0])
    torch.testing.assert_close(x, flow(z)[0])
    torch.testing.assert_close(logdet, flow(z)[1])
    torch.testing.assert_close(back, z)

"""Coupling, autoregressive and spline flows beyond the input tensor: extreme conditioner
outputs (an outlier in a conditioning coordinate), empty batches, non-finite or overflowing
parameters, an unbounded log-scale, constructor arguments, and the value checks switched
off so that ``torch.func`` transforms see no data-dependent branch."""
import math

import pytest
import torch
from torch import nn

import course_lib
from course_lib.flows import (IAF, MADE, MAF, AdditiveCoupling, AffineCoupling,
                              RQSAutoregressive, RQSCoupling, RQSpline, affine_coupling_step,
                              rq_spline)
from course_lib.flows.nets import MLP, ConvNet, bounded_log_scale, first_linear, spread_hinges
from course_lib.flows.rational_quadratic import (MAX_DERIVATIVE, MIN_BIN_SIZE, MIN_DERIVATIVE,
                                                 capped_slopes, spline_parameters)
from course_lib.jacobian import jacobian, log_abs_det_bruteforce
from course_lib.validation import CourseValueError
from flow_cases import randomise

IMAGE = (2, 4, 4)

# name: (builder, shape of one sample); every flow of the coupling, autoregressive and
# spline modules, with each kind of mask
FLOWS = {
    "AdditiveCoupling": (lambda: AdditiveCoupling(4, hidden=8), (4,)),
    "AdditiveCoupling[channel]": (lambda: AdditiveCoupling(2, mask="channel", hidden=4), IMAGE),
    "AffineCoupling": (lambda: AffineCoupling(4, hidden=8), (4,)),
    "AffineCoupling[alternate]": (
        lambda: AffineCoupling(5, mask=torch.arange(5) % 2 == 1, hidden=8), (5,)),
    "AffineCoupling[checkerboard]": (
        lambda: AffineCoupling(2, mask="checkerboard", hidden=4), IMAGE),
    "MAF": (lambda: MAF(3, hidden=(8, 8), order="random", seed=1), (3,)),
    "IAF": (lambda: IAF(3, hidden=(8,)), (3,)),
    "RQSpline": (lambda: RQSpline(3, bins=4, bound=1.0), (3,)),
    "RQSCoupling": (lambda: RQSCoupling(4, bins=4, bound=1.0, hidden=8), (4,)),
    "RQSCoupling[alternate]": (
        lambda: RQSCoupling(5, bins=4, bound=1.0, hidden=8, mask=torch.arange(5) % 2 == 0),
        (5,)),
    "RQSCoupling[checkerboard]": (
        lambda: RQSCoupling(2, bins=4, bound=1.0, hidden=4, mask="checkerboard"), IMAGE),
    "RQSCoupling[channel]": (
        lambda: RQSCoupling(2, bins=4, bound=1.0, hidden=4, mask="channel", parity=1), IMAGE),
    "RQSAutoregressive": (
        lambda: RQSAutoregressive(3, bins=4, bound=1.0, hidden=(8, 8), order=[2, 0, 1]), (3,)),
}
NAMES = sorted(FLOWS)


def build(name, dtype=torch.float64, seed=0, scale=0.3):
    make, shape = FLOWS[name]
    torch.manual_seed(seed)
    return randomise(make().to(dtype), scale, seed), shape


def sample(shape, batch, dtype=torch.float64, seed=1):
    return 1.5 * torch.randn(batch, *shape, dtype=dtype,
                             generator=torch.Generator().manual_seed(seed))


# -- slopes: a floor and a matching ceiling ----------------------------------------------

def test_ceiling_matches_the_floor():
    assert MAX_DERIVATIVE == 1 / MIN_DERIVATIVE


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_slopes_stay_between_floor_and_ceiling_for_any_network_output(dtype):
    big = torch.finfo(dtype).max
    values = torch.tensor([-big, -1e30, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4, 1e30, big],
                          dtype=dtype)
    raw = values[torch.randint(len(values), (500, 3 * 6 - 1),
                               generator=torch.Generator().manual_seed(0))]
    widths, heights, slopes = spline_parameters(raw, 2.0)
    for sizes in (widths, heights):
        assert bool((sizes >= 2 * 2.0 * MIN_BIN_SIZE * (1 - 1e-6)).all())
    assert bool(torch.isfinite(slopes).all())
    assert slopes.min().item() >= MIN_DERIVATIVE * (1 - 1e-6)
    assert slopes.max().item() <= MAX_DERIVATIVE
    assert slopes.max().item() > 0.99 * MAX_DERIVATIVE      # the ceiling is reached


def test_ceiling_leaves_ordinary_slopes_exactly_unchanged():
    slopes = torch.cat([torch.logspace(-3, math.log10(MAX_DERIVATIVE / 2), 1001,
                                       dtype=torch.float64),
                        torch.tensor([1.0, MAX_DERIVATIVE / 2], dtype=torch.float64)])
    assert torch.equal(capped_slopes(slopes), slopes)
    assert torch.equal(capped_slopes(slopes.float()), slopes.float())


def test_ceiling_bends_smoothly_and_monotonically_towards_the_maximum():
    knee = MAX_DERIVATIVE / 2
    d = torch.cat([torch.linspace(knee - 5, knee + 5, 2001, dtype=torch.float64),
                   torch.logspace(3, 30, 200, dtype=torch.float64)]).requires_grad_(True)
    capped = capped_slopes(d)
    (first,) = torch.autograd.grad(capped.sum(), d, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), d)
    assert bool((capped.diff() >= 0).all()) and bool((capped <= MAX_DERIVATIVE).all())
    near = (d - knee).abs() < 1e-2
    # value, slope and curvature continuous at the knee: slope 1 and curvature 0 on both sides
    torch.testing.assert_close(first[near], torch.ones_like(first[near]), atol=1e-4, rtol=0)
    assert second[near].abs().max() < 1e-4
    far = torch.tensor([1e30, math.inf], dtype=torch.float64)
    torch.testing.assert_close(capped_slopes(far), torch.full((2,), MAX_DERIVATIVE), atol=1e-9,
                               rtol=0)


# -- an outlier in a conditioning coordinate --------------------------------------------

# 2D flows in which coordinate ``cond`` conditions the spline of the other one
OUTLIER_FLOWS = {
    "RQSCoupling": (lambda: RQSCoupling(2, bins=8, bound=3.0, hidden=32), 0),
    "RQSCoupling[parity=1]": (lambda: RQSCoupling(2, bins=8, bound=3.0, hidden=32, parity=1), 1),
    "RQSCoupling[hinge gain 16]": (lambda: RQSCoupling(2, bound=3.0, init_gain=16.0), 0),
    "RQSAutoregressive": (lambda: RQSAutoregressive(2, bins=8, bound=3.0, order=[1, 0]), 1),
}


@pytest.mark.parametrize("dtype,outlier", [(torch.float32, 100.0), (torch.float64, 1e30),
                                           (torch.float32, 1e30)],
                         ids=["float32-100", "float64-1e30", "float32-1e30"])
@pytest.mark.parametrize("name", sorted(OUTLIER_FLOWS))
def test_outlier_in_a_conditioning_coordinate_keeps_round_trips_and_log_dets(name, dtype,
                                                                              outlier):
    make, cond = OUTLIER_FLOWS[name]
    other = 1 - cond
    eps, bound = torch.finfo(dtype).eps, 3.0
    worst = 0.0
    for seed in range(8):
        torch.manual_seed(seed)
        flow = randomise(make(), 0.3, seed).to(dtype)
        z = (2 * torch.rand(300, 2, generator=torch.Generator().manual_seed(seed)) - 1) * bound
        z = z.to(dtype)
        z[:, cond] = outlier * torch.where(z[:, cond] > 0, 1.0, -1.0).to(dtype)
        x, logdet = flow(z)
        z_back, inverse_logdet = flow.inverse(x)
        assert bool(torch.isfinite(logdet).all()) and bool(torch.isfinite(inverse_logdet).all())
        assert torch.equal(x[:, cond], z[:, cond]) and torch.equal(z_back[:, cond], z[:, cond])
        # x is g(z) rounded, so z can only come back to within eps B / g'(z) (and eps B
        # where the spline is steep): the error in those units stays a small number
        error = (z_back - z)[:, other].abs() / (eps * bound * (1 + torch.exp(-logdet)))
        worst = max(worst, error.max().item())
    assert worst < 1000, worst


def test_outlier_log_det_matches_autograd_in_float64():
    for name, (make, cond) in sorted(OUTLIER_FLOWS.items()):
        torch.manual_seed(0)
        flow = randomise(make(), 0.3, 0).double()
        z = 2 * torch.rand(200, 2, dtype=torch.float64) - 1
        z[:, cond] = 1e30 * torch.where(z[:, cond] > 0, 1.0, -1.0)
        _, logdet = flow(z)
        # the conditioning coordinate is copied, so the Jacobian's log-det is the log of the
        # other coordinate's derivative, which autograd takes through the spline's formula
        expected = log_abs_det_bruteforce(lambda t: flow(t)[0], z)
        torch.testing.assert_close(logdet, expected, atol=1e-8, rtol=1e-8, msg=name)


# -- empty batches -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_empty_outputs(name, direction, dtype):
    flow, shape = build(name, dtype)
    empty = torch.zeros(0, *shape, dtype=dtype, requires_grad=True)
    out, logdet = getattr(flow, direction)(empty)
    assert out.shape == (0, *shape) and logdet.shape == (0,)
    assert out.dtype == logdet.dtype == dtype
    (out.sum() + logdet.sum()).backward()       # and the graph is usable
    assert empty.grad.shape == empty.shape


def test_made_of_an_empty_batch_is_empty():
    assert MADE(3, hidden=(8,), params_per_dim=5)(torch.zeros(0, 3)).shape == (0, 3, 5)


# -- non-finite and overflowing parameters ------------------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_parameter_is_named(name, direction, which, value):
    flow, shape = build(name)
    params = list(flow.named_parameters())
    param_name, param = params[0] if which == "first" else params[-1]
    with torch.no_grad():
        param.view(-1)[0] = value
    with pytest.raises(CourseValueError, match=f"parameter '{param_name}' contains non-finite"):
        getattr(flow, direction)(sample(shape, 4))


@pytest.mark.parametrize("cls", [MAF, IAF, RQSAutoregressive])
def test_nan_parameter_of_an_autoregressive_flow_is_blamed_on_the_parameter(cls):
    # on the slow side every pass feeds the previous one: the first NaN output would
    # otherwise reach the MADE as its input and be reported as a non-finite x
    flow = cls(3)
    with torch.no_grad():
        flow.made.net[-1].bias[4] = math.nan
    for direction in ("forward", "inverse"):
        with pytest.raises(CourseValueError) as info:
            getattr(flow, direction)(torch.randn(5, 3))
        assert f"{cls.__name__}: parameter 'made.net.{len(flow.made.net) - 1}.bias'" \
            in str(info.value)
        assert "x contains" not in str(info.value)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "RQSpline"])  # no conditioner
def test_finite_parameters_that_overflow_the_conditioner_are_reported(name):
    flow, shape = build(name, torch.float32)
    with torch.no_grad():
        for p in flow.parameters():
            p.fill_(1e30)
    for direction in ("forward", "inverse"):
        with pytest.raises(CourseValueError, match="conditioner returned .* non-finite value.*"
                                                   "so large that torch.float32 overflows"):
            getattr(flow, direction)(sample(shape, 3, torch.float32))


def test_huge_finite_spline_parameters_keep_the_spline_finite():
    flow = RQSpline(2, bins=5, bound=2.0)
    with torch.no_grad():
        flow.raw.copy_(torch.tensor([1e30, -1e30, 3e38, -3e38, 0.0] * 2
                                    + [1e30, 1.0, -1e30, 3e38]).expand(2, 14))
    z = torch.linspace(-3, 3, 101)[:, None].expand(101, 2).contiguous()
    x, logdet = flow(z)
    z_back, inverse_logdet = flow.inverse(x)
    assert bool(torch.isfinite(x).all()) and bool(torch.isfinite(logdet).all())
    assert bool(torch.isfinite(inverse_logdet).all())
    assert bool((x.diff(dim=0) >= 0).all())
    assert torch.equal(flow(z_back)[0], x) or (flow(z_back)[0] - x).abs().max() < 1e-5


# -- an unbounded log-scale ---------------------------------------------------------------

def test_unbounded_affine_coupling_starts_as_the_identity():
    flow = AffineCoupling(2, scale_bound=math.inf)
    z = torch.randn(6, 2)
    x, logdet = flow(z)
    assert torch.equal(x, z) and torch.equal(logdet, torch.zeros(6))
    z_back, inverse_logdet = flow.inverse(x)
    assert torch.equal(z_back, z) and torch.equal(inverse_logdet, torch.zeros(6))


def test_unbounded_affine_coupling_uses_the_raw_log_scale():
    flow = randomise(AffineCoupling(3, scale_bound=math.inf, hidden=8).double(), 0.5)
    z = torch.randn(6, 3, dtype=torch.float64)
    s_raw, t = flow.conditioner(z[:, :1]).chunk(2, dim=1)
    x, logdet = flow(z)
    expected_x, expected_logdet = affine_coupling_step(z[:, 1:], s_raw, t)
    torch.testing.assert_close(x[:, 1:], expected_x, atol=1e-15, rtol=0)
    torch.testing.assert_close(logdet, expected_logdet, atol=1e-15, rtol=0)
    torch.testing.assert_close(flow.inverse(x)[0], z, atol=1e-12, rtol=0)


@pytest.mark.parametrize("cls", [MAF, IAF])
def test_unbounded_affine_autoregressive_flows_start_as_the_identity(cls):
    flow = cls(3, scale_bound=math.inf)
    z = torch.randn(4, 3)
    x, logdet = flow(z)
    assert torch.equal(x, z) and torch.equal(logdet, torch.zeros(4))
    moved = randomise(cls(3, scale_bound=math.inf, hidden=(8,)).double(), 0.3)
    z = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(moved.inverse(moved(z)[0])[0], z, atol=1e-12, rtol=0)


def test_bounded_log_scale_is_one_formula():
    s_raw = torch.tensor([-1e4, -1.0, 0.0, 2.0, 1e4], dtype=torch.float64)
    torch.testing.assert_close(bounded_log_scale(s_raw, 2.0), 2.0 * torch.tanh(s_raw / 2.0))
    assert torch.equal(bounded_log_scale(s_raw, math.inf), s_raw)
    torch.testing.assert_close(AffineCoupling(2, scale_bound=2.0).log_scale(s_raw),
                               bounded_log_scale(s_raw, 2.0), atol=0, rtol=0)
    h = torch.stack([torch.zeros(5, dtype=torch.float64), s_raw], -1)[None]
    _, s = MAF(5, scale_bound=2.0).double()._shift_and_log_scale(h)
    torch.testing.assert_close(s[0], bounded_log_scale(s_raw, 2.0), atol=0, rtol=0)


# -- constructor arguments ---------------------------------------------------------------

BAD_ARGUMENTS = {
    "coupling-dim-zero": (lambda: AdditiveCoupling(0), "expected dim to be an integer >= 1, got 0"),
    "coupling-dim-float": (lambda: AffineCoupling(2.5),
                           "expected dim to be an integer >= 1, got 2.5"),
    "coupling-channels": (lambda: AffineCoupling(-1, mask="channel"),
                          "expected channels to be an integer >= 1, got -1"),
    "coupling-parity": (lambda: AffineCoupling(2, parity=2), "expected parity 0 or 1, got 2"),
    "coupling-conditioner": (lambda: AdditiveCoupling(2, conditioner=3),
                             "expected conditioner to be a module or a function, got int"),
    "coupling-hidden": (lambda: AffineCoupling(2, hidden=0),
                        "MLP: expected hidden to be an integer >= 1, got 0"),
    "coupling-n-hidden": (lambda: AffineCoupling(2, n_hidden=-1),
                          "MLP: expected n_hidden to be an integer >= 0, got -1"),
    "image-n-hidden": (lambda: AffineCoupling(2, mask="checkerboard", n_hidden=0),
                       "ConvNet: expected n_hidden to be an integer >= 1, got 0"),
    "scale-bound-nan": (lambda: AffineCoupling(2, scale_bound=math.nan),
                        "expected scale_bound to be a positive number, got nan"),
    "maf-dim": (lambda: MAF(True), "MAF: expected dim to be an integer >= 1, got True"),
    "maf-width": (lambda: MAF(2, hidden=(4, 2.0)), "expected every hidden width to be an integer"),
    "iaf-order": (lambda: IAF(3, order="reverse"), "expected order to be 'sequential'"),
    "iaf-scale-bound": (lambda: IAF(3, scale_bound=-2),
                        "IAF: expected scale_bound to be a positive"),
    "spline-bins": (lambda: RQSCoupling(2, bins=1),
                    "RQSCoupling: expected bins to be an integer >= 2"),
    "spline-bound": (lambda: RQSAutoregressive(2, bound=math.nan),
                     "expected bound to be a finite positive number, got nan"),
    "spline-mask": (lambda: RQSCoupling(2, mask="stripes"), "one of .*checkerboard.*got 'stripes'"),
    "spline-gain": (lambda: RQSAutoregressive(2, init_gain=-1.0),
                    "expected init_gain to be a finite positive number"),
    "mlp-in": (lambda: MLP(0, 2), "MLP: expected in_features to be an integer >= 1, got 0"),
    "convnet-out": (lambda: ConvNet(2, 1.5), "ConvNet: expected out_channels to be an integer"),
    "hinges-layer": (lambda: spread_hinges(nn.Conv2d(1, 1, 1)), "expected an nn.Linear layer"),
    "hinges-gain": (lambda: spread_hinges(nn.Linear(1, 3), gain=0.0),
                    "expected gain to be a finite positive number, got 0.0"),
    "first-linear": (lambda: first_linear(ConvNet(1, 1)), "ConvNet has no nn.Linear layer"),
}


@pytest.mark.parametrize("name", sorted(BAD_ARGUMENTS))
def test_bad_constructor_arguments_are_refused(name):
    make, message = BAD_ARGUMENTS[name]
    with pytest.raises(CourseValueError, match=message):
        make()


def test_spline_coupling_takes_a_custom_conditioner():
    class Constant(nn.Module):
        def forward(self, z_a):
            return torch.zeros(z_a.shape[0], 2 * (3 * 4 - 1), dtype=z_a.dtype)

    flow = RQSCoupling(3, bins=4, conditioner=Constant())
    z = torch.randn(5, 3)
    x, logdet = flow(z)
    torch.testing.assert_close(x, z, atol=1e-6, rtol=0)
    torch.testing.assert_close(logdet, torch.zeros(5), atol=1e-6, rtol=0)
    with pytest.raises(CourseValueError, match="conditioner must return 28 values"):
        RQSCoupling(3, bins=5, conditioner=Constant())(z)


# -- validation off: no data-dependent branch --------------------------------------------

@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("name", NAMES)
def test_vmap_of_jacrev_matches_the_autograd_jacobian_with_validation_off(name, direction):
    flow, shape = build(name)
    f = getattr(flow, direction)
    z = sample(shape, 5)

    def one(v):
        return f(v.unsqueeze(0))[0].squeeze(0)

    with course_lib.validation(False):
        J = torch.func.vmap(torch.func.jacrev(one))(z)
        logdet = torch.func.vmap(lambda v: f(v.unsqueeze(0))[1].squeeze(0))(z)
    expected = jacobian(lambda t: f(t)[0], z)
    torch.testing.assert_close(J.reshape(expected.shape), expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(logdet, f(z)[1], atol=1e-12, rtol=0)


def test_value_checks_of_the_plain_spline_follow_the_switch():
    widths = torch.full((4,), 0.5)
    bad = dict(x=torch.zeros(3), widths=widths * 1.5, heights=widths, derivatives=torch.ones(3),
               bound=1.0)
    with pytest.raises(CourseValueError, match="widths must sum to 2 \\* bound"):
        rq_spline(**bad)
    with course_lib.validation(False):
        y, _ = rq_spline(**bad)               # the sums are not read: rescaled, not checked
        assert y.shape == (3,)
        with pytest.raises(CourseValueError, match="expected derivatives of shape"):
            rq_spline(**{**bad, "derivatives": torch.ones(4)})     # shapes are still checked

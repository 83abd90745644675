"""Continuous normalizing flows: the CNF as a Flow inside a NormalizingFlow, checked against
closed forms (linear fields, translations), the autograd Jacobian, the trace estimators, the
two directions, gradients, the kinetic-energy penalty, flow matching, the validation switch,
and clear errors."""
import copy
import math
import pickle
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal

import course_lib
from course_lib import models
from course_lib.continuous import (CNF, SolverError, VectorField, cnf_layer, density_paths,
                                   flow_matching_loss)
from course_lib.flows import Affine
from course_lib.flows.base import FlowInputError
from course_lib.jacobian import divergence_exact, divergence_hutchinson, jacobian
from course_lib.model import NormalizingFlow
from course_lib.training import fit
from course_lib.validation import CourseValueError

F64 = torch.float64
A = torch.tensor([[0.3, -1.0], [0.5, -0.4]], dtype=F64)
TIGHT = dict(rtol=1e-9, atol=1e-9)


def linear_cnf(**kwargs) -> CNF:
    return CNF(lambda t, z: z @ A.T, dim=2, **kwargs)


def random_field(seed=0, scale=2.0, dim=2) -> VectorField:
    """A small vector field moved well away from its initialisation."""
    torch.manual_seed(seed)
    field = VectorField(dim, 16, 2).double()
    with torch.no_grad():
        for p in field.parameters():
            p.mul_(scale)
    return field


def random_cnf(seed=0, scale=2.0, **kwargs) -> CNF:
    return CNF(random_field(seed, scale), **kwargs)


def model_of(cnf: CNF) -> NormalizingFlow:
    return NormalizingFlow(cnf.dim, [cnf]).double()


# -- the flow: both directions and their log-determinants -------------------------------------

def test_a_cnf_is_a_flow_of_vectors():
    cnf = random_cnf()
    assert isinstance(cnf, course_lib.flows.Flow) and cnf.event_shape == (2,)
    assert not hasattr(cnf, "log_prob") and not hasattr(cnf, "base")


def test_linear_field_forward_is_the_matrix_exponential_and_its_logdet_the_trace():
    # dz/dt = A z: x = e^A z and log|det e^A| = tr A, the integral of the (constant) trace
    z = torch.randn(7, 2, dtype=F64)
    x, logdet = linear_cnf(**TIGHT)(z)
    torch.testing.assert_close(x, z @ torch.linalg.matrix_exp(A).T, atol=1e-8, rtol=0)
    torch.testing.assert_close(logdet, A.trace().expand(7), atol=1e-8, rtol=0)
    z_back, inverse_logdet = linear_cnf(**TIGHT).inverse(x)
    torch.testing.assert_close(z_back, z, atol=1e-8, rtol=0)
    torch.testing.assert_close(inverse_logdet, -A.trace().expand(7), atol=1e-8, rtol=0)


def test_linear_field_log_prob_is_the_pushed_gaussian():
    x = torch.randn(20, 2, dtype=F64)
    M = torch.linalg.matrix_exp(A)  # x = e^A z, so x ~ N(0, e^A e^{A^T})
    expected = MultivariateNormal(torch.zeros(2, dtype=F64), M @ M.T).log_prob(x)
    model = model_of(linear_cnf(**TIGHT))
    torch.testing.assert_close(model.log_prob(x), expected, atol=1e-7, rtol=0)


def test_forward_logdet_equals_the_log_determinant_of_the_autograd_jacobian():
    cnf = random_cnf(**TIGHT)
    z = torch.randn(5, 2, dtype=F64)
    _, logdet = cnf(z)
    J = jacobian(lambda u: cnf(u)[0], z)  # through the solver
    torch.testing.assert_close(logdet, torch.linalg.slogdet(J)[1], atol=1e-7, rtol=0)
    assert bool((torch.linalg.det(J) > 0).all())  # an ODE's flow map never flips orientation


def test_divergence_exact_is_the_trace_of_the_autograd_jacobian():
    field = random_field()
    z = torch.randn(9, 2, dtype=F64)
    f = lambda x: field(0.3, x)  # noqa: E731
    trace = jacobian(f, z).diagonal(dim1=1, dim2=2).sum(1)
    torch.testing.assert_close(divergence_exact(f, z), trace, atol=1e-12, rtol=0)


TEST_MATRIX = torch.tensor([[2.0, 0.5, -1.0], [0.3, -1.5, 0.8], [0.0, 1.2, 3.0]], dtype=F64)


def hutchinson_draws(noise: str, n: int = 4000, seed: int = 0):
    """``n`` independent one-probe estimates of ``tr(TEST_MATRIX)`` (one row per draw)."""
    z = torch.zeros(n, 3, dtype=F64)
    g = torch.Generator().manual_seed(seed)
    return divergence_hutchinson(lambda x: x @ TEST_MATRIX.T, z, 1, noise, generator=g)


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_hutchinson_estimate_is_unbiased(noise):
    draws = hutchinson_draws(noise)
    standard_error = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - TEST_MATRIX.trace()) < 4 * standard_error


def test_rademacher_probes_have_lower_variance_than_gaussian():
    assert hutchinson_draws("rademacher").var() < hutchinson_draws("gaussian").var()


def test_forward_then_inverse_returns_to_the_start():
    cnf = random_cnf(rtol=1e-10, atol=1e-10)
    z0 = torch.randn(8, 2, dtype=F64)
    x, logdet = cnf(z0)
    z_back, inverse_logdet = cnf.inverse(x)
    torch.testing.assert_close(z_back, z0, atol=1e-7, rtol=0)
    torch.testing.assert_close(inverse_logdet, -logdet, atol=1e-7, rtol=0)


def test_sampling_and_likelihood_directions_agree():
    model = model_of(random_cnf(**TIGHT))
    torch.manual_seed(1)
    x, log_p = model.sample_and_log_prob(8)
    torch.testing.assert_close(model.log_prob(x.detach()), log_p, atol=1e-6, rtol=0)


def test_density_of_a_2d_cnf_integrates_to_one():
    model = model_of(random_cnf(rtol=1e-6, atol=1e-6))
    t = torch.linspace(-6, 6, 49, dtype=F64)
    h = (t[1] - t[0]).item()
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum().item() * h * h
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_a_cnf_composes_with_other_flows():
    # an affine layer after the linear CNF: x = s e^A z + b, a Gaussian in closed form
    model = NormalizingFlow(2, [linear_cnf(**TIGHT), Affine(2, scale=2.0)]).double()
    with torch.no_grad():
        model.flows[1].shift.copy_(torch.tensor([0.5, -1.0]))
    M = 2.0 * torch.linalg.matrix_exp(A)
    x = torch.randn(6, 2, dtype=F64)
    expected = MultivariateNormal(torch.tensor([0.5, -1.0], dtype=F64), M @ M.T).log_prob(x)
    torch.testing.assert_close(model.log_prob(x), expected, atol=1e-7, rtol=0)


def test_adjoint_and_direct_gradients_agree():
    x = torch.randn(6, 2, dtype=F64)
    grads = []
    for adjoint in (False, True):
        model = model_of(random_cnf(adjoint=adjoint, rtol=1e-10, atol=1e-10))
        model.forward_kl(x).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-8)


def test_hutchinson_probes_are_fixed_within_one_solve():
    # with one Rademacher probe eps in 2D, eps^T A eps takes two values,
    # tr A +- (A_12 + A_21); probes redrawn during the solve would average between them
    cnf = linear_cnf(trace="hutchinson", noise="rademacher", **TIGHT)
    _, logdet = cnf.inverse(torch.randn(50, 2, dtype=F64))
    # data -> base: log|det dz/dx| = -int_0^1 eps^T A eps dt
    values = torch.stack([A.trace() + A[0, 1] + A[1, 0], A.trace() - A[0, 1] - A[1, 0]])
    gaps = (-logdet[:, None] - values).abs().min(dim=1).values
    assert torch.allclose(gaps, torch.zeros(50, dtype=F64), atol=1e-7)
    assert len({round(v, 6) for v in logdet.tolist()}) == 2  # both probes occur


def test_trajectory_starts_at_the_base_and_ends_at_the_forward_map():
    cnf = random_cnf(**TIGHT)
    z0 = torch.randn(5, 2, dtype=F64)
    paths, logdet = cnf.trajectory(z0, [0.0, 0.5, 1.0])
    assert paths.shape == (3, 5, 2) and logdet.shape == (3, 5)
    torch.testing.assert_close(paths[0], z0)
    torch.testing.assert_close(logdet[0], torch.zeros(5, dtype=F64))
    x, forward_logdet = cnf(z0)
    torch.testing.assert_close(paths[-1], x.detach(), atol=1e-7, rtol=0)
    torch.testing.assert_close(logdet[-1], forward_logdet.detach(), atol=1e-7, rtol=0)


def test_density_paths_carry_the_log_density_of_the_linear_field():
    # z_t = e^{At} z0 ~ N(0, e^{At} e^{A^T t}) at every t
    model = model_of(linear_cnf(**TIGHT))
    z0 = torch.randn(4, 2, dtype=F64)
    times = [0.0, 0.25, 1.0]
    paths, log_p = density_paths(model, z0, times)
    for i, t in enumerate(times):
        M = torch.linalg.matrix_exp(A * t)
        pushed = MultivariateNormal(torch.zeros(2, dtype=F64), M @ M.T)
        torch.testing.assert_close(paths[i], z0 @ M.T, atol=1e-8, rtol=0)
        torch.testing.assert_close(log_p[i], pushed.log_prob(paths[i]), atol=1e-8, rtol=0)


# -- the kinetic-energy penalty ------------------------------------------------------------------

class Translation(nn.Module):
    """``f(t, z) = c`` with a learnable ``c``."""

    def __init__(self, c):
        super().__init__()
        self.dim = len(c)
        self.c = nn.Parameter(torch.as_tensor(c, dtype=F64))

    def forward(self, t, z):
        return self.c.expand_as(z)


def test_kinetic_energy_of_a_translation_is_its_squared_speed():
    c = [0.6, -0.8]
    model = model_of(CNF(Translation(c), kinetic_energy=0.5, **TIGHT))
    x = torch.randn(4, 2, dtype=F64)
    nll = -MultivariateNormal(torch.tensor(c, dtype=F64), torch.eye(2, dtype=F64)).log_prob(x)
    loss = model.forward_kl(x)
    assert loss.item() == pytest.approx(nll.mean().item() + 0.5 * 1.0, abs=1e-9)  # |c|^2 = 1
    torch.testing.assert_close(model.flows[0].last_kinetic_energy, torch.ones(4, dtype=F64))
    # the penalty's gradient reaches the field: d/dc (0.5 |c|^2) = c on top of the NLL's
    loss.backward()
    nll_grad = -(x - torch.tensor(c, dtype=F64)).mean(0)
    torch.testing.assert_close(model.flows[0].vector_field.c.grad,
                               nll_grad + torch.tensor(c, dtype=F64), atol=1e-8, rtol=0)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_kinetic_energy_of_a_linear_field_in_1d_is_the_closed_form(direction):
    # dz/dt = a z: z_t = e^{at} z0, so int_0^1 |a z_t|^2 dt = a z0^2 (e^{2a} - 1) / 2
    a = 0.7
    cnf = CNF(lambda t, z: a * z, dim=1, kinetic_energy=1.0, **TIGHT)
    u = torch.tensor([[0.5], [-1.5], [2.0]], dtype=F64)
    getattr(cnf, direction)(u)
    z0 = u if direction == "forward" else u * math.exp(-a)
    expected = a * z0[:, 0] ** 2 * (math.exp(2 * a) - 1) / 2
    torch.testing.assert_close(cnf.last_kinetic_energy, expected, atol=1e-8, rtol=0)
    assert cnf.regulariser().item() == pytest.approx(expected.mean().item(), abs=1e-8)


def test_fit_by_maximum_likelihood_includes_the_penalty():
    c = [0.6, -0.8]
    model = model_of(CNF(Translation(c), kinetic_energy=2.0, **TIGHT))
    x = torch.randn(64, 2, dtype=F64)
    nll = -MultivariateNormal(torch.tensor(c, dtype=F64), torch.eye(2, dtype=F64)).log_prob(x)
    losses = fit(model, lambda n: x, steps=1, batch_size=64, progress=False)
    assert losses[0] == pytest.approx(nll.mean().item() + 2.0 * 1.0, abs=1e-9)  # |c|^2 = 1


def test_without_a_weight_there_is_no_penalty():
    model = model_of(random_cnf(**TIGHT))
    x = torch.randn(4, 2, dtype=F64)
    assert model.flows[0].regulariser() is None
    assert model.forward_kl(x).item() == pytest.approx(-model.log_prob(x).mean().item(), abs=1e-12)
    assert model.flows[0].last_kinetic_energy is None


def test_a_model_with_a_penalty_copies_and_pickles_after_a_training_step():
    model = models.cnf(2, hidden=8, n_hidden=1, kinetic_energy=0.1)
    model.forward_kl(torch.randn(8, 2)).backward()
    assert model.flows[0].last_kinetic_energy.grad_fn is not None
    clone = copy.deepcopy(model)
    assert clone.flows[0].last_kinetic_energy is None
    restored = pickle.loads(pickle.dumps(model))
    x = torch.randn(3, 2)
    torch.testing.assert_close(restored.log_prob(x), model.log_prob(x))


# -- flow matching -----------------------------------------------------------------------------

@pytest.mark.parametrize("sigma_min", [0.0, 0.1])
@pytest.mark.parametrize("wrap", [False, True], ids=["cnf", "model"])
def test_flow_matching_target_is_the_velocity_of_the_straight_path(sigma_min, wrap):
    # all data at one point c: the field (c - (1 - s) x0) written in terms of x_t fits exactly
    c = torch.tensor([1.5, -2.0], dtype=F64)

    def straight(t, x):
        t = t[:, None]
        x0 = (x - t * c) / (1 - (1 - sigma_min) * t)
        return c - (1 - sigma_min) * x0

    cnf = CNF(straight, dim=2)
    loss = flow_matching_loss(model_of(cnf) if wrap else cnf, c.expand(64, 2), sigma_min=sigma_min)
    assert loss.item() < 1e-20


def test_flow_matching_draws_x0_from_the_models_base():
    # with f = 0 the loss is E|x1 - x0|^2 = |x1 - m|^2 + tr(S) for a base N(m, S)
    base = MultivariateNormal(torch.tensor([3.0, 0.0], dtype=F64), 0.25 * torch.eye(2, dtype=F64))
    model = NormalizingFlow(base, [CNF(lambda t, x: torch.zeros_like(x), dim=2)])
    torch.manual_seed(0)
    loss = flow_matching_loss(model, torch.zeros(200_000, 2, dtype=F64))
    assert loss.item() == pytest.approx(9.0 + 0.5, abs=0.05)


def test_flow_matching_with_fit_learns_a_shifted_gaussian():
    torch.manual_seed(0)
    model = models.cnf(2, hidden=32, n_hidden=2, rtol=1e-6, atol=1e-6).double()
    target = MultivariateNormal(torch.tensor([2.0, -1.0], dtype=F64), 0.5 * torch.eye(2, dtype=F64))
    fit(model, lambda n: target.sample((n,)), steps=500, lr=1e-2, schedule="cosine",
        loss_fn=flow_matching_loss, progress=False)
    x = target.sample((500,))
    with torch.no_grad():
        kl = (target.log_prob(x) - model.log_prob(x)).mean().item()
    assert abs(kl) < 0.05


# -- the builder, dtypes, devices, validation ------------------------------------------------------

def test_cnf_works_in_float32():
    torch.manual_seed(0)
    model = models.cnf(2, hidden=8, n_hidden=1).float()
    assert model.log_prob(torch.randn(3, 2, dtype=torch.float32)).dtype == torch.float32
    assert model.sample((2, 3)).shape == (2, 3, 2)


def test_models_cnf_is_a_normalizing_flow_around_one_cnf_on_a_standard_normal():
    model = models.cnf(3, hidden=8, trace="hutchinson")
    assert type(model) is NormalizingFlow and model.event_shape == (3,)
    (cnf,) = model.flows
    assert isinstance(cnf, CNF) and cnf_layer(model) is cnf and cnf_layer(cnf) is cnf
    assert cnf.dim == 3 and cnf.trace == "hutchinson" and isinstance(cnf.vector_field, VectorField)
    torch.testing.assert_close(model.base.mean, torch.zeros(3))
    torch.testing.assert_close(model.base.stddev, torch.ones(3))


COURSE_LIB = str(Path(course_lib.__file__).parent)


def value_reads_by_course_lib(run) -> list[str]:
    """Where course_lib's own code reads tensor values into Python while ``run()`` runs
    (``item``, ``bool``, ``int``, ``float``, ``tolist`` called from a file of the package)."""
    seen = []
    originals = {name: getattr(torch.Tensor, name)
                 for name in ("item", "__bool__", "__int__", "__float__", "tolist")}

    def spy(name, original):
        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_code
            if caller.co_filename.startswith(COURSE_LIB):
                seen.append(f"{name} in {Path(caller.co_filename).name}:{caller.co_name}")
            return original(self, *args, **kwargs)
        return wrapper

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, spy(name, original))
        run()
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    return seen


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_with_validation_off_the_cnf_reads_no_values_outside_the_solver(trace):
    model = model_of(random_cnf(trace=trace, kinetic_energy=0.1, rtol=1e-5, atol=1e-5))
    x = torch.randn(5, 2, dtype=F64)

    def run():
        model.forward_kl(x).backward()
        model.sample_and_log_prob((3,))
        model.flows[0].trajectory(x, [0.0, 0.5, 1.0])

    with course_lib.validation(False):
        assert value_reads_by_course_lib(run) == []
    assert value_reads_by_course_lib(run)  # with validation on, the spy sees the value checks


# -- errors ------------------------------------------------------------------------------------

def test_wrong_input_shape_is_rejected():
    with pytest.raises(FlowInputError, match=r"expected z of shape \(batch, 2\), got \(4, 3\)"):
        random_cnf()(torch.zeros(4, 3, dtype=F64))
    with pytest.raises(FlowInputError, match=r"expected x of shape \(\.\.\., 2\)"):
        model_of(random_cnf()).log_prob(torch.zeros(4, 3, dtype=F64))


def test_nan_input_is_rejected():
    x = torch.zeros(4, 2, dtype=F64)
    x[1, 0] = float("nan")
    with pytest.raises(FlowInputError, match="non-finite"):
        model_of(random_cnf()).log_prob(x)


def test_nan_parameter_of_the_field_is_named():
    model = model_of(random_cnf())
    with torch.no_grad():
        model.flows[0].vector_field.out.bias[0] = float("nan")
    with pytest.raises(CourseValueError, match=r"parameter '.*out\.bias' contains non-finite"):
        model.log_prob(torch.zeros(4, 2, dtype=F64))


def test_dtype_mismatch_is_rejected():
    with pytest.raises(FlowInputError, match="dtype torch.float64"):
        random_cnf()(torch.zeros(4, 2, dtype=torch.float32))


def test_vector_field_of_the_wrong_shape_is_rejected():
    cnf = CNF(lambda t, z: z[:, :1], dim=2)
    with pytest.raises(CourseValueError, match=r"same shape as z \(4, 2\), got \(4, 1\)"):
        cnf(torch.zeros(4, 2, dtype=F64))


def test_solver_failure_is_reraised_with_a_hint():
    model = model_of(random_cnf(scale=4.0, options={"max_num_steps": 2}))
    with pytest.raises(SolverError, match="max_num_steps.*loosen the tolerances.*rk4"):
        model.log_prob(torch.randn(4, 2, dtype=F64))


@pytest.mark.parametrize("kwargs,message", [
    (dict(trace="full"), "trace must be 'exact' or 'hutchinson', got 'full'"),
    (dict(noise="uniform"), "noise must be 'gaussian' or 'rademacher', got 'uniform'"),
    (dict(n_probes=0), "n_probes must be a positive integer, got 0"),
    (dict(kinetic_energy=-1.0), "kinetic_energy must be >= 0, got -1.0"),
    (dict(dim=3), "expected dim to match the vector field's dimension 2, got dim=3"),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(CourseValueError, match=message):
        CNF(VectorField(2), **kwargs)


def test_field_without_a_dimension_needs_dim():
    with pytest.raises(CourseValueError, match="pass dim=d"):
        CNF(lambda t, z: z)


def test_trajectory_times_must_start_at_the_base():
    with pytest.raises(CourseValueError, match="times must start at 0"):
        random_cnf().trajectory(torch.zeros(2, 2, dtype=F64), [0.5, 1.0])


def test_flow_matching_needs_a_model_around_one_cnf():
    model = NormalizingFlow(2, [random_cnf(), Affine(2)]).double()
    with pytest.raises(CourseValueError, match=r"only flow is a CNF.*flows \[CNF, Affine\]"):
        flow_matching_loss(model, torch.zeros(4, 2, dtype=F64))
    with pytest.raises(CourseValueError, match="got Affine"):
        flow_matching_loss(Affine(2), torch.zeros(4, 2))
    with pytest.raises(CourseValueError, match=r"sigma_min in \[0, 1\), got 1.0"):
        flow_matching_loss(random_cnf(), torch.zeros(4, 2, dtype=F64), sigma_min=1.0)


def test_density_paths_need_a_model():
    with pytest.raises(CourseValueError, match="it has the base density"):
        density_paths(random_cnf(), torch.zeros(2, 2, dtype=F64), [0.0, 1.0])


# -- the grader's copy of a CNF model --------------------------------------------------------------

def test_the_grader_rebuilds_a_cnf_model_from_its_architecture_and_state():
    from course_lib.checks.plain import plain, unplain
    torch.manual_seed(0)
    model = models.cnf(2, hidden=12, n_hidden=2).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    data = plain(model)
    assert data["__course_model__"]["flows"] == [
        {"type": "CNF", "dim": 2, "hidden": 12, "layers": 2}]
    rebuilt = unplain(data)
    assert type(rebuilt) is NormalizingFlow and type(rebuilt.flows[0]) is CNF
    x = torch.randn(5, 2, dtype=F64)
    torch.testing.assert_close(rebuilt.log_prob(x), model.log_prob(x), atol=1e-12, rtol=0)


def test_the_grader_refuses_a_bare_cnf_and_a_foreign_field():
    from course_lib.checks.plain import NotPlain, plain
    with pytest.raises(NotPlain, match="bare CNF, a flow without a base density"):
        plain(models.cnf(2, hidden=4).flows[0])
    with pytest.raises(NotPlain, match="rebuilds CNFs with the library's VectorField only"):
        plain(NormalizingFlow(2, [CNF(nn.Identity(), dim=2)]))

"""Continuous normalizing flows: densities against closed forms, the trace estimators, the two
directions, gradients, flow matching, and clear errors."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from course_lib import models
from course_lib.continuous import CNF, SolverError, VectorField, flow_matching_loss
from course_lib.flows.base import FlowInputError
from course_lib.jacobian import divergence_exact, divergence_hutchinson, jacobian
from course_lib.training import fit

F64 = torch.float64
A = torch.tensor([[0.3, -1.0], [0.5, -0.4]], dtype=F64)
TIGHT = dict(rtol=1e-9, atol=1e-9)


def linear_cnf(**kwargs) -> CNF:
    return CNF(lambda t, z: z @ A.T, base=2, **kwargs).double()


def random_cnf(seed=0, scale=2.0, **kwargs) -> CNF:
    """A small vector field moved well away from its initialisation."""
    torch.manual_seed(seed)
    field = VectorField(2, 16, 2)
    with torch.no_grad():
        for p in field.parameters():
            p.mul_(scale)
    return CNF(field, **kwargs).double()


def test_linear_field_log_prob_is_the_pushed_gaussian():
    x = torch.randn(20, 2, dtype=F64)
    M = torch.linalg.matrix_exp(A)  # x = e^A z, so x ~ N(0, e^A e^{A^T})
    expected = MultivariateNormal(torch.zeros(2, dtype=F64), M @ M.T).log_prob(x)
    torch.testing.assert_close(linear_cnf(**TIGHT).log_prob(x), expected, atol=1e-4, rtol=0)


def test_divergence_exact_is_the_trace_of_the_autograd_jacobian():
    field = random_cnf().vector_field
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


def test_forward_then_backward_returns_to_the_start():
    cnf = random_cnf(rtol=1e-10, atol=1e-10)
    z0 = torch.randn(8, 2, dtype=F64)
    x, delta_forward = cnf.base_to_data(z0)
    z_back, delta_backward = cnf.data_to_base(x)
    torch.testing.assert_close(z_back, z0, atol=1e-5, rtol=0)
    torch.testing.assert_close(delta_backward, -delta_forward, atol=1e-5, rtol=0)


def test_sampling_and_likelihood_directions_agree():
    cnf = random_cnf(**TIGHT)
    torch.manual_seed(1)
    x, log_p = cnf.sample_and_log_prob(8)
    torch.testing.assert_close(cnf.log_prob(x.detach()), log_p, atol=1e-6, rtol=0)


def test_density_of_a_2d_cnf_integrates_to_one():
    cnf = random_cnf(rtol=1e-6, atol=1e-6)
    t = torch.linspace(-6, 6, 49, dtype=F64)
    h = (t[1] - t[0]).item()
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        mass = cnf.log_prob(grid).exp().sum().item() * h * h
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_adjoint_and_direct_gradients_agree():
    x = torch.randn(6, 2, dtype=F64)
    grads = []
    for adjoint in (False, True):
        cnf = random_cnf(adjoint=adjoint, rtol=1e-10, atol=1e-10)
        (-cnf.log_prob(x).mean()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in cnf.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-8)


def test_hutchinson_probes_are_fixed_within_one_solve():
    # with one Rademacher probe eps in 2D, -div f = -eps^T A eps takes two values,
    # tr A +- (A_12 + A_21); probes redrawn during the solve would average between them
    cnf = linear_cnf(trace="hutchinson", noise="rademacher", **TIGHT)
    _, delta = cnf.data_to_base(torch.randn(50, 2, dtype=F64))
    # integrating from 1 to 0, delta = +int_0^1 eps^T A eps dt
    values = torch.stack([A.trace() + A[0, 1] + A[1, 0], A.trace() - A[0, 1] - A[1, 0]])
    assert torch.allclose((delta[:, None] - values).abs().min(dim=1).values,
                          torch.zeros(50, dtype=F64), atol=1e-7)


def test_trajectory_starts_at_the_base_and_ends_at_the_sample():
    cnf = random_cnf(**TIGHT)
    z0 = torch.randn(5, 2, dtype=F64)
    paths, log_p = cnf.trajectory(z0, [0.0, 0.5, 1.0])
    assert paths.shape == (3, 5, 2) and log_p.shape == (3, 5)
    torch.testing.assert_close(paths[0], z0)
    torch.testing.assert_close(log_p[0], cnf.base.log_prob(z0))
    torch.testing.assert_close(paths[-1], cnf.base_to_data(z0)[0], atol=1e-7, rtol=0)


def test_kinetic_energy_of_a_translation_is_its_squared_speed():
    c = torch.tensor([0.6, -0.8], dtype=F64)
    cnf = CNF(lambda t, z: c.expand_as(z), base=2, kinetic_energy=0.5, **TIGHT).double()
    x = torch.randn(4, 2, dtype=F64)
    nll = -cnf.log_prob(x).mean()
    assert cnf.forward_kl(x).item() == pytest.approx(nll.item() + 0.5 * c.pow(2).sum().item())


@pytest.mark.parametrize("sigma_min", [0.0, 0.1])
def test_flow_matching_target_is_the_velocity_of_the_straight_path(sigma_min):
    # all data at one point c: the field (c - (1 - s) x0) written in terms of x_t fits exactly
    c = torch.tensor([1.5, -2.0], dtype=F64)

    def straight(t, x):
        t = t[:, None]
        x0 = (x - t * c) / (1 - (1 - sigma_min) * t)
        return c - (1 - sigma_min) * x0

    cnf = CNF(straight, base=2).double()
    loss = flow_matching_loss(cnf, c.expand(64, 2), sigma_min=sigma_min)
    assert loss.item() < 1e-20


def test_flow_matching_with_fit_learns_a_shifted_gaussian():
    torch.manual_seed(0)
    cnf = models.cnf(2, hidden=32, n_hidden=2, rtol=1e-6, atol=1e-6).double()
    target = MultivariateNormal(torch.tensor([2.0, -1.0], dtype=F64), 0.5 * torch.eye(2, dtype=F64))
    fit(cnf, lambda n: target.sample((n,)), steps=500, lr=1e-2, schedule="cosine",
        loss_fn=flow_matching_loss, progress=False)
    x = target.sample((500,))
    with torch.no_grad():
        kl = (target.log_prob(x) - cnf.log_prob(x)).mean().item()
    assert abs(kl) < 0.05


def test_cnf_works_in_float32():
    torch.manual_seed(0)
    cnf = models.cnf(2, hidden=8, n_hidden=1).float()
    assert cnf.log_prob(torch.randn(3, 2, dtype=torch.float32)).dtype == torch.float32


def test_models_cnf_has_a_standard_normal_base():
    cnf = models.cnf(3, hidden=8, trace="hutchinson")
    assert cnf.dim == 3 and cnf.trace == "hutchinson"
    torch.testing.assert_close(cnf.base.mean, torch.zeros(3))
    torch.testing.assert_close(cnf.base.stddev, torch.ones(3))


# -- errors ------------------------------------------------------------------------------------

def test_wrong_input_shape_is_rejected():
    with pytest.raises(FlowInputError, match=r"expected x of shape \(batch, 2\), got \(4, 3\)"):
        random_cnf().log_prob(torch.zeros(4, 3, dtype=F64))


def test_nan_input_is_rejected():
    x = torch.zeros(4, 2, dtype=F64)
    x[1, 0] = float("nan")
    with pytest.raises(FlowInputError, match="non-finite"):
        random_cnf().log_prob(x)


def test_dtype_mismatch_is_rejected():
    with pytest.raises(FlowInputError, match="dtype torch.float64"):
        random_cnf().log_prob(torch.zeros(4, 2, dtype=torch.float32))


def test_vector_field_of_the_wrong_shape_is_rejected():
    cnf = CNF(lambda t, z: z[:, :1], base=2).double()
    with pytest.raises(ValueError, match=r"same shape as z \(4, 2\), got \(4, 1\)"):
        cnf.log_prob(torch.zeros(4, 2, dtype=F64))


def test_solver_failure_is_reraised_with_a_hint():
    cnf = random_cnf(scale=4.0, options={"max_num_steps": 2})
    with pytest.raises(SolverError, match="max_num_steps.*loosen the tolerances.*rk4"):
        cnf.log_prob(torch.randn(4, 2, dtype=F64))


@pytest.mark.parametrize("kwargs,message", [
    (dict(trace="full"), "trace must be 'exact' or 'hutchinson', got 'full'"),
    (dict(noise="uniform"), "noise must be 'gaussian' or 'rademacher', got 'uniform'"),
    (dict(n_probes=0), "n_probes must be a positive integer, got 0"),
    (dict(kinetic_energy=-1.0), "kinetic_energy must be >= 0, got -1.0"),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CNF(VectorField(2), **kwargs)


def test_field_without_a_dimension_needs_a_base():
    with pytest.raises(ValueError, match="pass base=dim"):
        CNF(lambda t, z: z)


def test_bad_sample_count_is_rejected():
    with pytest.raises(FlowInputError, match="positive integer number of samples, got 0"):
        random_cnf().sample(0)


def test_trajectory_times_must_start_at_the_base():
    with pytest.raises(ValueError, match="times must start at 0"):
        random_cnf().trajectory(torch.zeros(2, 2, dtype=F64), [0.5, 1.0])

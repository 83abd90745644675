"""Residual flows: the Lipschitz bound, the fixed-point inverse and its gradient, and the
power-series log-determinant. The shared flow contract covers the round trip and the
exact log-determinant."""
import pytest
import torch

from course_lib.flows import FlowInputError, ResidualFlow
from course_lib.flows.residual import log_abs_det_exact, log_abs_det_series
from course_lib.jacobian import jacobian
from course_lib.validation import CourseValueError


def stretched(flow, factor=10.0, seed=0):
    """Weights far above the bound, then enough training-mode calls for power iteration to
    settle, so the spectral normalisation is what keeps ``g`` a contraction."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for layer in flow.layers:
            layer.weight.mul_(factor).add_(torch.randn_like(layer.weight))
    flow.train()
    for _ in range(40):
        flow.branch()
    return flow.eval()


def exact_trace_probes(batch, dim):
    """``sqrt(d) e_1, ..., sqrt(d) e_d``: Hutchinson's average over them is the exact trace."""
    eye = torch.eye(dim) * dim ** 0.5
    return eye[:, None, :].expand(dim, batch, dim)


@pytest.mark.parametrize("lipschitz, n_hidden", [(0.5, 1), (0.9, 1), (0.9, 2)])
def test_lipschitz_constant_of_the_branch_is_below_c(lipschitz, n_hidden):
    torch.manual_seed(1)
    flow = stretched(ResidualFlow(3, hidden=16, n_hidden=n_hidden, lipschitz=lipschitz))
    z = torch.randn(400, 3) * torch.tensor([0.3, 1.0, 3.0]).repeat_interleave(134)[:400, None]
    spectral_norms = torch.linalg.matrix_norm(jacobian(flow.branch(), z), ord=2)
    assert spectral_norms.max().item() < lipschitz


def test_each_normalised_layer_has_spectral_norm_c_when_its_weight_exceeds_it():
    flow = stretched(ResidualFlow(3, hidden=16, n_hidden=2, lipschitz=0.6))
    for layer in flow.layers:
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() > 1.0
        norm = torch.linalg.matrix_norm(layer.normalised_weight(), ord=2).item()
        # power iteration approaches sigma from below, so c is met up to its convergence
        assert abs(norm - 0.6) < 1e-3


def test_difference_quotients_of_the_branch_are_below_c():
    torch.manual_seed(2)
    flow = stretched(ResidualFlow(4, hidden=16, n_hidden=1, lipschitz=0.8))
    g = flow.branch()
    a, b = torch.randn(2000, 4) * 2, torch.randn(2000, 4) * 2
    b[:1000] = a[:1000] + 1e-3 * torch.randn(1000, 4)
    ratios = (g(a) - g(b)).norm(dim=1) / (a - b).norm(dim=1)
    assert ratios.max().item() < 0.8


def test_series_log_det_approaches_the_exact_one_as_terms_are_added():
    torch.manual_seed(3)
    flow = stretched(ResidualFlow(3, hidden=16, n_hidden=1, lipschitz=0.9))
    g, z = flow.branch(), torch.randn(5, 3)
    exact = log_abs_det_exact(g, z)
    assert exact.abs().max().item() > 0.05
    with torch.no_grad():
        errors = [(log_abs_det_series(g, z, n, eps=exact_trace_probes(5, 3)) - exact).abs().max().item()
                  for n in (1, 2, 4, 8, 16)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-12


def test_hutchinson_series_is_unbiased():
    torch.manual_seed(4)
    flow = stretched(ResidualFlow(3, hidden=16, n_hidden=1, lipschitz=0.7))
    g, n = flow.branch(), 4000
    point = torch.randn(1, 3)
    with torch.no_grad():
        estimates = log_abs_det_series(g, point.expand(n, 3), n_terms=30,
                                       generator=torch.Generator().manual_seed(0))
    exact = log_abs_det_exact(g, point).item()
    standard_error = estimates.std().item() / n ** 0.5
    assert abs(estimates.mean().item() - exact) < 4 * standard_error


def test_flow_with_series_log_det_is_exact_in_one_dimension_up_to_truncation():
    # a Rademacher probe in 1D is +-1, so eps J^k eps = J^k: only the truncation is left
    torch.manual_seed(5)
    flow = stretched(ResidualFlow(1, hidden=16, n_hidden=1, logdet="series", n_terms=40))
    z = torch.randn(6, 1)
    x, logdet = flow(z)
    _, inverse_logdet = flow.inverse(x)
    exact = log_abs_det_exact(flow.branch(), z)
    torch.testing.assert_close(logdet, exact, atol=1e-12, rtol=0)
    torch.testing.assert_close(inverse_logdet, -exact, atol=1e-9, rtol=0)


def test_inverse_solves_the_fixed_point_equation_to_the_tolerance():
    torch.manual_seed(6)
    flow = stretched(ResidualFlow(3, hidden=16, tol=1e-10))
    x = torch.randn(20, 3) * 3
    with torch.no_grad():
        z, _ = flow.inverse(x)
        residual = (z + flow.branch()(z) - x).abs().max().item()
    assert residual <= 1e-10


def test_inverse_round_trip_holds_in_float32():
    torch.manual_seed(7)
    flow = stretched(ResidualFlow(3, hidden=16)).float()
    z = torch.randn(10, 3, dtype=torch.float32)
    with torch.no_grad():
        z_back, _ = flow.inverse(flow(z)[0])
    torch.testing.assert_close(z_back, z, atol=1e-5, rtol=0)


def test_log_prob_gradient_matches_backpropagation_through_the_unrolled_iteration():
    torch.manual_seed(8)
    flow = stretched(ResidualFlow(2, hidden=8, n_hidden=1, lipschitz=0.8))
    x = torch.randn(4, 2)

    z, logdet = flow.inverse(x)
    loss = (z ** 2).sum() - logdet.sum()
    implicit = torch.autograd.grad(loss, list(flow.parameters()))

    g, z = flow.branch(), x
    for _ in range(300):
        z = x - g(z)
    loss = (z ** 2).sum() + log_abs_det_exact(g, z).sum()
    unrolled = torch.autograd.grad(loss, list(flow.parameters()))
    for a, b in zip(implicit, unrolled):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)


def test_non_converging_fixed_point_raises_a_clear_error():
    flow = ResidualFlow(3, max_iter=1, tol=1e-300).eval()
    with pytest.raises(FlowInputError, match="did not converge in max_iter=1 steps"):
        flow.inverse(torch.randn(4, 3))


def test_power_iteration_moves_only_in_training_mode():
    torch.manual_seed(9)
    flow = ResidualFlow(3, hidden=16)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(torch.randn_like(p))
    z = torch.randn(5, 3)
    flow.eval()
    first, second = flow(z)[0], flow(z)[0]
    assert torch.equal(first, second)
    flow.train()
    before = flow.layers[0].u.clone()
    flow(z)
    assert not torch.equal(flow.layers[0].u, before)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lipschitz=1.0), r"expected lipschitz \(the contraction factor c\) in \(0, 1\).*got 1.0"),
    (dict(lipschitz=0.0), r"expected lipschitz to be a finite positive number, got 0.0"),
    (dict(lipschitz=1.5), r"expected lipschitz \(the contraction factor c\) in \(0, 1\).*got 1.5"),
    (dict(logdet="approximate"), "expected logdet 'exact' or 'series', got 'approximate'"),
    (dict(n_terms=0), "expected n_terms to be an integer >= 1, got 0"),
    (dict(max_iter=0), "expected max_iter to be an integer >= 1, got 0"),
    (dict(tol=0.0), "expected tol to be a finite positive number, got 0.0"),
    (dict(hidden=0), "expected hidden to be an integer >= 1, got 0"),
    (dict(hidden=2.5), r"expected hidden to be an integer >= 1, got 2.5 \(float\)"),
    (dict(n_power_iterations=-1), "expected n_power_iterations to be an integer >= 0, got -1"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(CourseValueError, match="ResidualFlow: " + message):
        ResidualFlow(3, **kwargs)


def test_wrong_input_shape_is_refused():
    with pytest.raises(FlowInputError, match=r"expected x of shape \(batch, 3\), got \(4, 2\)"):
        ResidualFlow(3).eval().inverse(torch.randn(4, 2))


def test_series_refuses_probes_of_the_wrong_shape():
    flow = ResidualFlow(3).eval()
    with pytest.raises(FlowInputError, match=r"eps must have shape \(n_probes, 4, 3\), got \(2, 4, 2\)"):
        log_abs_det_series(flow.branch(), torch.randn(4, 3), eps=torch.randn(2, 4, 2))

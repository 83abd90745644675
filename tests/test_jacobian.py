"""The autograd oracles themselves, checked on maps with known Jacobians."""
import math

import pytest
import torch

from course_lib.jacobian import (divergence_exact, divergence_hutchinson,
                                 hutchinson_variance_theory, jacobian, log_abs_det_bruteforce,
                                 probes)
from course_lib.validation import CourseValueError

A = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, -1.0], [0.5, 0.0, 1.0]], dtype=torch.float64)


def linear(x):
    return x @ A.T


def test_jacobian_of_a_linear_map_is_its_matrix_at_every_sample():
    J = jacobian(linear, torch.randn(4, 3))
    torch.testing.assert_close(J, A.expand(4, 3, 3))


def test_jacobian_of_an_elementwise_map_is_diagonal_with_the_derivatives():
    x = torch.randn(5, 3)
    torch.testing.assert_close(jacobian(torch.tanh, x), torch.diag_embed(1 - torch.tanh(x) ** 2))


def test_log_abs_det_bruteforce_equals_log_abs_det_of_the_matrix():
    expected = torch.linalg.det(A).abs().log().expand(4)
    torch.testing.assert_close(log_abs_det_bruteforce(linear, torch.randn(4, 3)), expected)


def test_jacobian_flattens_image_shaped_inputs():
    J = jacobian(lambda x: 2 * x, torch.randn(2, 1, 2, 2))
    torch.testing.assert_close(J, 2 * torch.eye(4).expand(2, 4, 4))


def test_divergence_exact_is_the_trace_of_the_jacobian():
    f = lambda x: torch.sin(x @ A.T) * x.roll(1, dims=1)
    x = torch.randn(6, 3)
    torch.testing.assert_close(divergence_exact(f, x), jacobian(f, x).diagonal(dim1=1, dim2=2).sum(-1))


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_hutchinson_estimate_is_unbiased(noise):
    x = torch.randn(1, 3).expand(4000, 3).contiguous()
    est = divergence_hutchinson(linear, x, n_probes=1, noise=noise,
                                generator=torch.Generator().manual_seed(1))
    se = est.std() / est.numel() ** 0.5
    assert abs(est.mean() - torch.trace(A)) < 4 * se


def test_hutchinson_with_given_probes_is_exactly_the_quadratic_forms():
    x, eps = torch.randn(3, 3), torch.randn(2, 3, 3)
    expected = torch.einsum("kbi,ij,kbj->b", eps, A, eps) / 2
    torch.testing.assert_close(divergence_hutchinson(linear, x, eps=eps), expected)


def test_divergence_is_differentiable_for_training():
    w = torch.tensor(2.0, requires_grad=True)
    divergence_exact(lambda x: w * x ** 2, torch.ones(2, 3)).sum().backward()
    torch.testing.assert_close(w.grad, torch.tensor(12.0))


# -- maps and inputs the oracles cannot take --------------------------------------------------------

def test_divergence_of_a_non_square_map_is_refused_with_both_sizes():
    x = torch.randn(4, 3, dtype=torch.float64)
    for divergence in (divergence_exact, divergence_hutchinson):
        with pytest.raises(CourseValueError, match=r"R\^n to R\^n.*n = 3 .*f\(x\) has 2"):
            divergence(lambda v: v[:, :2] * 2, x)


def test_a_non_finite_output_is_blamed_on_f_and_not_on_a_finite_x():
    x = torch.randn(4, 3, dtype=torch.float64)
    field = lambda v: v * torch.tensor([1.0, math.nan, 1.0], dtype=v.dtype)  # noqa: E731
    for oracle in (jacobian, divergence_exact, divergence_hutchinson):
        with pytest.raises(CourseValueError, match=r"the output f\(x\) contains 4 non-finite") as info:
            oracle(field, x)
        assert "x contains" not in str(info.value)


def test_a_non_finite_x_is_still_blamed_on_x():
    x = torch.tensor([[0.0, math.inf]], dtype=torch.float64)
    with pytest.raises(CourseValueError, match="divergence_exact: x contains 1 non-finite"):
        divergence_exact(lambda v: v, x)


def test_empty_batches_give_empty_results():
    x = torch.zeros(0, 3, dtype=torch.float64)
    assert jacobian(lambda v: 2 * v, x).shape == (0, 3, 3)
    assert divergence_exact(lambda v: 2 * v, x).shape == (0,)
    assert divergence_hutchinson(lambda v: 2 * v, x).shape == (0,)


def test_a_constant_map_has_zero_divergence_instead_of_an_autograd_error():
    x = torch.randn(5, 2, dtype=torch.float64)
    constant = lambda v: torch.ones_like(v).detach()  # noqa: E731
    torch.testing.assert_close(divergence_exact(constant, x), torch.zeros(5, dtype=torch.float64))


def test_hutchinson_arguments_are_checked_by_the_shared_helpers():
    x = torch.randn(2, 2, dtype=torch.float64)
    with pytest.raises(CourseValueError, match="n_probes to be an integer >= 1, got 0"):
        divergence_hutchinson(lambda v: v, x, n_probes=0)
    with pytest.raises(CourseValueError, match="'gaussian' or 'rademacher', got 'uniform'"):
        divergence_hutchinson(lambda v: v, x, noise="uniform")
    with pytest.raises(CourseValueError, match=r"eps of shape \(n_probes, 2, 2\), got \(3, 2\)"):
        divergence_hutchinson(lambda v: v, x, eps=torch.ones(3, 2, dtype=torch.float64))


def test_log_det_needs_a_square_jacobian():
    with pytest.raises(CourseValueError, match="square Jacobian; f maps 3 coordinates .* to 2"):
        log_abs_det_bruteforce(lambda v: v[:, :2], torch.randn(2, 3, dtype=torch.float64))


def test_variance_theory_of_a_non_square_matrix_is_refused():
    with pytest.raises(CourseValueError, match=r"square matrix J .* got \(2, 3\)"):
        hutchinson_variance_theory(torch.ones(2, 3), "gaussian")


def test_probes_are_made_on_the_input_device_when_no_generator_is_given():
    x = torch.zeros(3, 2, device="meta")
    assert probes(x.shape, "gaussian", 2, torch.float32, device=x.device).device.type == "meta"

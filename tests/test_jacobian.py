"""The autograd oracles themselves, checked on maps with known Jacobians."""
import pytest
import torch

from course_lib.jacobian import (divergence_exact, divergence_hutchinson, jacobian,
                                 log_abs_det_bruteforce)

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

"""Linear flows: permutations reorder, LULinear is W = P L U with log|det W| = sum log|U_ii|."""
import math

import pytest
import torch

from course_lib.flows import FlowInputError, LULinear, Permutation, Reverse
from course_lib.jacobian import jacobian
from course_lib.validation import CourseValueError
from flow_cases import randomise


def test_permutation_moves_coordinates_by_a_fixed_reordering():
    flow = Permutation(5, seed=1)
    z = torch.randn(4, 5)
    x, _ = flow(z)
    assert sorted(flow.order.tolist()) == list(range(5))
    torch.testing.assert_close(x, z[:, flow.order], rtol=0, atol=0)


def test_permutation_is_reproducible_from_its_seed():
    assert torch.equal(Permutation(7, seed=4).order, Permutation(7, seed=4).order)


def test_permutation_is_never_the_identity_in_two_dimensions():
    for seed in range(10):
        assert Permutation(2, seed=seed).order.tolist() == [1, 0]


def test_reverse_flips_the_coordinates():
    z = torch.randn(3, 4)
    torch.testing.assert_close(Reverse(4)(z)[0], z.flip(1), rtol=0, atol=0)
    torch.testing.assert_close(Reverse(4).inverse(z)[0], z.flip(1), rtol=0, atol=0)


def test_lulinear_starts_as_the_identity():
    z = torch.randn(6, 4)
    x, logdet = LULinear(4)(z)
    torch.testing.assert_close(x, z, rtol=0, atol=0)
    torch.testing.assert_close(logdet, torch.zeros(6), rtol=0, atol=0)


def test_lulinear_applies_the_product_p_l_u():
    flow = randomise(LULinear(4, weight=torch.randn(4, 4)), scale=1.0)
    lower, upper = flow.lu.factors()
    assert torch.equal(torch.tril(lower), lower)
    assert torch.equal(torch.diagonal(lower), torch.ones(4))
    assert torch.equal(torch.triu(upper), upper)
    w = flow.lu.permutation @ lower @ upper
    z = torch.randn(3, 4)
    torch.testing.assert_close(flow(z)[0], z @ w.T, rtol=0, atol=1e-12)


def test_lulinear_logdet_is_sum_of_log_abs_u_diagonal_and_equals_slogdet():
    flow = randomise(LULinear(5, weight=torch.randn(5, 5)), scale=1.0)
    _, upper = flow.lu.factors()
    _, logdet = flow(torch.randn(2, 5))
    sum_log_u = torch.diagonal(upper).abs().log().sum()
    torch.testing.assert_close(logdet[0], sum_log_u, rtol=0, atol=1e-12)
    slogdet = torch.linalg.slogdet(flow.lu.matrix())[1]
    torch.testing.assert_close(logdet[0], slogdet, rtol=0, atol=1e-12)


def test_lulinear_inverse_by_triangular_solves_matches_a_dense_solve():
    flow = randomise(LULinear(5, weight=torch.randn(5, 5)), scale=1.0)
    x = torch.randn(7, 5)
    expected = torch.linalg.solve(flow.lu.matrix(), x.T).T
    torch.testing.assert_close(flow.inverse(x)[0], expected, rtol=0, atol=1e-10)


def test_lulinear_stays_invertible_for_extreme_parameters():
    flow = randomise(LULinear(4), scale=3.0)
    with torch.no_grad():
        flow.lu.log_u.copy_(torch.tensor([-30.0, -5.0, 0.0, 30.0]))
    sign, logabs = torch.linalg.slogdet(flow.lu.matrix())
    assert sign != 0
    torch.testing.assert_close(logabs, torch.tensor(-5.0), rtol=0, atol=1e-8)
    torch.testing.assert_close(flow(torch.randn(2, 4))[1], torch.full((2,), -5.0), rtol=0, atol=0)


def test_rotation_has_log_det_zero():
    theta = 0.7
    rotation = torch.tensor([[math.cos(theta), -math.sin(theta)],
                             [math.sin(theta), math.cos(theta)]])
    flow = LULinear(2, weight=rotation)
    z = torch.randn(5, 2)
    x, logdet = flow(z)
    torch.testing.assert_close(x, z @ rotation.T, rtol=0, atol=1e-14)
    torch.testing.assert_close(logdet, torch.zeros(5), rtol=0, atol=1e-14)
    jac = jacobian(lambda t: flow(t)[0], z)
    torch.testing.assert_close(torch.linalg.det(jac), torch.ones(5), rtol=0, atol=1e-14)


def test_lulinear_rejects_a_singular_initial_weight():
    with pytest.raises(CourseValueError, match="singular to float64 precision"):
        LULinear(2, weight=torch.tensor([[1.0, 2.0], [2.0, 4.0]]))


def test_lulinear_rejects_a_weight_of_the_wrong_shape():
    with pytest.raises(CourseValueError, match=r"shape \(3, 3\), got \(2, 2\)"):
        LULinear(3, weight=torch.eye(2))


def test_linear_flows_reject_wrong_dimension_and_nan():
    with pytest.raises(FlowInputError, match=r"\(batch, 3\)"):
        LULinear(3)(torch.randn(2, 4))
    with pytest.raises(FlowInputError, match="non-finite"):
        Permutation(3).inverse(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(CourseValueError, match="Permutation: expected dim to be an integer >= 1, got 0"):
        Permutation(0)

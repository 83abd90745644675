"""Planar and radial flows: the worked example, the invertibility constraints, and inverses
by a one-dimensional solve that are exact to 1e-12."""
import math

import pytest
import torch
from scipy.optimize import brentq

from course_lib.flows import FlowInputError, Planar, Radial, planar, radial
from course_lib.flows.planar import solve_increasing
from course_lib.flows.radial import radius_from_image
from course_lib.jacobian import jacobian, log_abs_det_bruteforce
from flow_cases import randomise

# the worked example of the lecture: u = (1, 0), w = (1, 2), b = 0 at z = (0.5, -0.5)
U = torch.tensor([1.0, 0.0], dtype=torch.float64)
W = torch.tensor([1.0, 2.0], dtype=torch.float64)
Z = torch.tensor([[0.5, -0.5]], dtype=torch.float64)


def test_planar_worked_example_log_det_is_0_580():
    _, logdet = planar(Z, U, W, 0.0)
    sech2 = 1 / math.cosh(-0.5) ** 2
    assert round(logdet.item(), 3) == 0.580
    torch.testing.assert_close(logdet, torch.tensor([math.log(1 + sech2)]), rtol=0, atol=1e-15)


def test_planar_worked_example_log_det_matches_autograd_jacobian():
    _, logdet = planar(Z, U, W, 0.0)
    expected = log_abs_det_bruteforce(lambda z: planar(z, U, W, 0.0)[0], Z)
    torch.testing.assert_close(logdet, expected, rtol=0, atol=1e-14)


def test_planar_jacobian_is_identity_plus_rank_one_update():
    jac = jacobian(lambda z: planar(z, U, W, 0.0)[0], Z)[0]
    sech2 = 1 / math.cosh(-0.5) ** 2
    torch.testing.assert_close(jac, torch.eye(2) + sech2 * torch.outer(U, W), rtol=0, atol=1e-15)


def test_planar_inverse_is_exact_to_1e_12():
    torch.manual_seed(1)
    flow = randomise(Planar(5), scale=1.5, seed=1)
    z = 3 * torch.randn(2000, 5)
    x, _ = flow(z)
    torch.testing.assert_close(flow.inverse(x)[0], z, rtol=0, atol=1e-12)


def test_planar_function_inverse_is_exact_to_1e_12():
    x, _ = planar(Z, U, W, 0.3)
    torch.testing.assert_close(planar(x, U, W, 0.3, inverse=True)[0], Z, rtol=0, atol=1e-12)


def test_planar_starts_as_the_identity():
    z = torch.randn(8, 3)
    x, logdet = Planar(3)(z)
    torch.testing.assert_close(x, z, rtol=0, atol=1e-15)
    torch.testing.assert_close(logdet, torch.zeros(8), rtol=0, atol=1e-15)


def test_planar_constraint_holds_for_raw_parameters_that_violate_it():
    flow = Planar(3)
    with torch.no_grad():
        flow.w.copy_(torch.tensor([1.0, -2.0, 0.5]))
        flow.u.copy_(-3.0 * flow.w)  # raw w^T u = -15.75, far below -1
    assert torch.dot(flow.w, flow.u).item() < -1
    assert torch.dot(flow.w, flow.u_hat).item() > -1
    z = torch.randn(50, 3)
    sign, _ = torch.linalg.slogdet(jacobian(lambda t: flow(t)[0], z))
    assert bool((sign > 0).all()), "the Jacobian determinant must stay positive everywhere"
    torch.testing.assert_close(flow.inverse(flow(z)[0])[0], z, rtol=0, atol=1e-9)


def test_planar_root_solve_agrees_with_scipy_brentq():
    c = torch.tensor([-4.0, -0.3, 0.0, 0.2, 7.5])
    for m in (-0.999, -0.5, 0.0, 2.0, 40.0):
        s = solve_increasing(c, torch.tensor(m))
        for ci, si in zip(c.tolist(), s.tolist()):
            expected = brentq(lambda v: v + m * math.tanh(v) - ci, ci - abs(m) - 1, ci + abs(m) + 1,
                              xtol=1e-15, rtol=1e-15)
            assert abs(si - expected) < 1e-12


def test_planar_root_solve_raises_when_it_does_not_converge():
    flow = randomise(Planar(2, max_iter=1), scale=2.0)
    x = 3 * torch.randn(10, 2)
    with pytest.raises(FlowInputError, match="did not converge in 1 iterations"):
        flow.inverse(x)


def test_planar_function_rejects_a_non_invertible_u():
    with pytest.raises(FlowInputError, match=r"w\^T u = -2 < -1"):
        planar(Z, torch.tensor([-2.0, 0.0]), torch.tensor([1.0, 0.0]), 0.0)


def test_radial_starts_as_the_identity():
    z = torch.randn(8, 3)
    x, logdet = Radial(3)(z)
    torch.testing.assert_close(x, z, rtol=0, atol=1e-15)
    torch.testing.assert_close(logdet, torch.zeros(8), rtol=0, atol=1e-15)


def test_radial_inverse_is_exact_to_1e_12():
    flow = randomise(Radial(5), scale=1.5, seed=2)
    z = flow.z0.detach() + 3 * torch.randn(2000, 5) * torch.rand(2000, 1) ** 3
    x, _ = flow(z)
    torch.testing.assert_close(flow.inverse(x)[0], z, rtol=0, atol=1e-12)


def test_radial_radius_solve_agrees_with_scipy_brentq():
    alpha, beta = torch.tensor(0.7), torch.tensor(-0.6)
    rho = torch.tensor([0.0, 1e-8, 0.05, 1.0, 30.0, 1e6])
    r = radius_from_image(rho, alpha, beta)
    for rho_i, r_i in zip(rho.tolist(), r.tolist()):
        expected = 0.0 if rho_i == 0 else brentq(
            lambda t: t * (1 + beta.item() / (alpha.item() + t)) - rho_i, 0.0, rho_i * 100 + 1,
            xtol=1e-300, rtol=1e-15)
        assert abs(r_i - expected) <= 1e-12 * max(1.0, expected)


def test_radial_maps_its_centre_to_itself_and_back():
    flow = randomise(Radial(2), scale=1.0)
    centre = flow.z0.detach()[None]
    torch.testing.assert_close(flow(centre)[0], centre, rtol=0, atol=0)
    torch.testing.assert_close(flow.inverse(centre)[0], centre, rtol=0, atol=0)


def test_radial_constraint_holds_for_raw_parameters_that_violate_it():
    flow = Radial(2)
    with torch.no_grad():
        flow.a.fill_(1.0)
        flow.b.fill_(-40.0)  # a raw beta far below -alpha
    assert flow.beta.item() >= -flow.alpha.item()
    z = flow.z0.detach() + 0.5 * torch.randn(50, 2)
    sign, _ = torch.linalg.slogdet(jacobian(lambda t: flow(t)[0], z))
    assert bool((sign > 0).all())
    torch.testing.assert_close(flow.inverse(flow(z)[0])[0], z, rtol=0, atol=1e-9)


def test_radial_function_rejects_beta_below_minus_alpha():
    with pytest.raises(FlowInputError, match="beta > -alpha"):
        radial(Z, torch.zeros(2), 1.0, -1.5)
    with pytest.raises(FlowInputError, match="alpha > 0"):
        radial(Z, torch.zeros(2), 0.0, 0.5)


def test_planar_and_radial_reject_nan_and_wrong_shape():
    for flow in (Planar(2), Radial(2)):
        with pytest.raises(FlowInputError, match="non-finite"):
            flow.inverse(torch.tensor([[float("nan"), 0.0]]))
        with pytest.raises(FlowInputError, match=r"\(batch, 2\)"):
            flow(torch.zeros(3, 3))


def test_planar_and_radial_functions_reject_nan_and_wrong_shape():
    u, w = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0])
    calls = {"planar": lambda z: planar(z, u, w, 0.0), "radial": lambda z: radial(z, torch.zeros(2), 1.0, 0.5)}
    for name, call in calls.items():
        with pytest.raises(FlowInputError, match=rf"{name}: expected z of shape \(batch, \*\)"):
            call(torch.zeros(2))
        with pytest.raises(FlowInputError, match=f"{name}: z contains 1 non-finite"):
            call(torch.tensor([[float("nan"), 0.0]]))
        with pytest.raises(FlowInputError, match=f"{name}: expected z to be a torch.Tensor"):
            call([[0.0, 0.0]])

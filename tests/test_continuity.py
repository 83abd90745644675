"""Numerical companions of the continuity equation: the divergence theorem on a box, mass
conservation on a grid, and the Gaussian carried by a linear field."""
import math

import pytest
import scipy.integrate
import torch

from course_lib.continuity import (cell_centres, divergence_integral, evolve_density,
                                   gaussian_density, gaussian_flux, gaussian_pushforward,
                                   outward_flux, total_mass)
from course_lib.validation import CourseValueError

BOX = (-1.0, 2.0, -0.5, 1.5)
A = torch.tensor([[-0.5, 1.0], [-1.0, -0.2]], dtype=torch.float64)
M0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
S0 = torch.tensor([[0.4, 0.1], [0.1, 0.3]], dtype=torch.float64)


def probability_flux(z):
    """``J = p f`` with a Gaussian bump ``p`` and a nonlinear field ``f``."""
    p = torch.exp(-0.5 * (z ** 2).sum(1, keepdim=True))
    f = torch.stack([torch.sin(z[:, 1]) + z[:, 0] ** 2, z[:, 0] * z[:, 1] - z[:, 1]], dim=1)
    return p * f


def linear_field(t, z):
    return z @ A.T


def test_divergence_theorem_on_a_box():
    assert outward_flux(probability_flux, BOX) == pytest.approx(
        divergence_integral(probability_flux, BOX), abs=1e-10)


def test_outward_flux_matches_scipy_quad_side_by_side():
    a1, b1, a2, b2 = BOX

    def component(z1, z2, i):
        return probability_flux(torch.tensor([[z1, z2]], dtype=torch.float64))[0, i].item()

    sides = [scipy.integrate.quad(lambda s: component(b1, s, 0) - component(a1, s, 0), a2, b2)[0],
             scipy.integrate.quad(lambda s: component(s, b2, 1) - component(s, a2, 1), a1, b1)[0]]
    assert outward_flux(probability_flux, BOX) == pytest.approx(sum(sides), abs=1e-10)


def test_radial_field_has_flux_twice_the_area():
    a1, b1, a2, b2 = BOX
    area = (b1 - a1) * (b2 - a2)
    assert outward_flux(lambda z: z, BOX) == pytest.approx(2 * area, abs=1e-12)
    assert divergence_integral(lambda z: z, BOX) == pytest.approx(2 * area, abs=1e-12)


def test_finite_volumes_conserve_total_mass():
    z1, z2, h = cell_centres(5.0, 50)
    p0 = gaussian_density(z1, z2, M0, S0)
    p = evolve_density(p0, linear_field, 5.0, [0.0, 0.25, 0.5, 1.0])
    mass = total_mass(p, h)
    torch.testing.assert_close(mass, mass[0].expand(4), rtol=1e-13, atol=0)


def test_finite_volumes_keep_the_density_non_negative():
    z1, z2, _ = cell_centres(5.0, 50)
    p = evolve_density(gaussian_density(z1, z2, M0, S0), linear_field, 5.0, [1.0])
    assert bool((p >= 0).all())


def test_finite_volumes_converge_to_the_exact_pushforward():
    mean, cov = gaussian_pushforward(M0, S0, A, 1.0)
    errors = []
    for n in (40, 80):
        z1, z2, h = cell_centres(5.0, n)
        p = evolve_density(gaussian_density(z1, z2, M0, S0), linear_field, 5.0, [1.0])[0]
        errors.append(((p - gaussian_density(z1, z2, mean, cov)).abs().sum() * h * h).item())
    # first-order upwind: halving h about halves the L1 error
    assert errors[1] < 0.65 * errors[0]


def test_gaussian_pushforward_is_the_change_of_variables_of_exp_At():
    t = 0.7
    mean, cov = gaussian_pushforward(M0, S0, A, t)
    z1, z2, _ = cell_centres(3.0, 7)
    grid = torch.stack([z1, z2], dim=-1)
    M = torch.linalg.matrix_exp(A * t)
    back = grid @ torch.linalg.inv(M).T  # z_0 = e^{-At} z
    expected = gaussian_density(back[..., 0], back[..., 1], M0, S0) / torch.linalg.det(M).abs()
    torch.testing.assert_close(gaussian_density(z1, z2, mean, cov), expected, rtol=1e-12, atol=0)


def test_gaussian_density_matches_torch_distributions():
    z1, z2, _ = cell_centres(3.0, 5)
    mvn = torch.distributions.MultivariateNormal(M0, S0)
    expected = mvn.log_prob(torch.stack([z1, z2], dim=-1)).exp()
    torch.testing.assert_close(gaussian_density(z1, z2, M0, S0), expected, rtol=1e-12, atol=0)


def test_cell_centres_cover_the_square_symmetrically():
    z1, z2, h = cell_centres(2.0, 4)
    assert h == pytest.approx(1.0)
    assert z1[:, 0].tolist() == [-1.5, -0.5, 0.5, 1.5]
    assert torch.equal(z2, z1.T)
    assert total_mass(torch.ones(4, 4, dtype=torch.float64), h).item() == pytest.approx(16.0)
    assert math.isclose(float(z1.mean()), 0.0, abs_tol=1e-15)


def test_bad_box_is_rejected():
    with pytest.raises(ValueError, match=r"a_1 < b_1 and a_2 < b_2, got \(1.0, 0.0"):
        outward_flux(lambda z: z, (1.0, 0.0, 0.0, 1.0))


def test_density_of_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"p0 of shape \(n, n\).*got \(4, 5\)"):
        evolve_density(torch.zeros(4, 5), linear_field, 1.0, [0.5])


def test_decreasing_times_are_rejected():
    with pytest.raises(ValueError, match="increasing times"):
        evolve_density(torch.zeros(4, 4), linear_field, 1.0, [0.5, 0.2])


# -- fields and arguments a student might pass ------------------------------------------------------

def test_a_field_returning_nan_is_named_as_the_culprit_in_the_simulation():
    z1, z2, _ = cell_centres(2.0, 8)
    p0 = torch.exp(-0.5 * (z1 ** 2 + z2 ** 2))
    with pytest.raises(CourseValueError, match=r"evolve_density: the field's output f\(t, z\) "
                                               r"contains \d+ non-finite"):
        evolve_density(p0, lambda t, z: z * math.nan, 2.0, [0.1])


def test_a_field_of_the_wrong_shape_is_refused():
    z1, z2, _ = cell_centres(2.0, 8)
    with pytest.raises(CourseValueError, match=r"velocities \(n, 2\), got \(56,\)"):
        evolve_density(torch.ones_like(z1), lambda t, z: z[:, 0], 2.0, [0.1])


def test_a_flux_returning_nan_is_named_in_the_divergence_theorem():
    with pytest.raises(CourseValueError, match=r"the flux J\(z\) contains"):
        outward_flux(lambda z: z * math.nan, (0.0, 1.0, 0.0, 1.0))
    with pytest.raises(CourseValueError, match=r"divergence_exact: the output f\(x\) contains"):
        divergence_integral(lambda z: z * math.nan, (0.0, 1.0, 0.0, 1.0))


@pytest.mark.parametrize("box", [(0.0, 1.0, 0.0), (0.0, math.nan, 0.0, 1.0), "box"])
def test_a_malformed_box_is_refused_with_what_was_given(box):
    with pytest.raises(CourseValueError, match="outward_flux"):
        outward_flux(lambda z: z, box)


def test_grid_arguments_are_checked_by_the_shared_helpers():
    with pytest.raises(CourseValueError, match="n to be an integer >= 1, got 0"):
        cell_centres(1.0, 0)
    with pytest.raises(CourseValueError, match="half_width to be a finite positive number"):
        cell_centres(-1.0, 4)


def test_cells_and_the_gaussian_flux_follow_the_requested_device():
    z1, _, _ = cell_centres(1.0, 4, device="meta")
    assert z1.device.type == "meta"
    flux = gaussian_flux(lambda z: z)
    assert flux(torch.zeros(3, 2, device="meta")).device.type == "meta"

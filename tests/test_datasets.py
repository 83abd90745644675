"""Toy data sets: seeded sampling, and closed-form densities that agree with the samples."""
import math

import pytest
import torch

from course_lib import datasets
from course_lib.validation import CourseValueError, validation

ANALYTIC = ["eight_gaussians", "checkerboard"]


@pytest.mark.parametrize("name", datasets.names)
def test_sampling_is_reproducible_with_a_seeded_generator(name):
    data = datasets.get(name)
    a = data.sample(50, generator=torch.Generator().manual_seed(3))
    b = data.sample(50, generator=torch.Generator().manual_seed(3))
    c = data.sample(50, generator=torch.Generator().manual_seed(4))
    assert a.shape == (50, data.dim) and torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", ANALYTIC)
def test_entropy_agrees_with_a_monte_carlo_estimate(name):
    data = datasets.get(name)
    x = data.sample(200_000, generator=torch.Generator().manual_seed(0)).double()
    nll = -data.log_prob(x)
    se = nll.std().item() / math.sqrt(len(nll))
    assert abs(nll.mean().item() - data.entropy) < 4 * se + 1e-12


@pytest.mark.parametrize("name", ANALYTIC)
def test_histogram_of_samples_matches_the_integrated_density(name):
    data = datasets.get(name)
    n, edges = 100_000, torch.linspace(-5, 5, 11, dtype=torch.float64)
    x = data.sample(n, generator=torch.Generator().manual_seed(1)).double()
    counts = torch.histogramdd(x, bins=[edges, edges]).hist / n
    # the density integrated over each bin by a fine midpoint rule
    fine = 40
    t = torch.cat([torch.linspace(a, b, fine + 1)[:-1] for a, b in zip(edges[:-1], edges[1:])]) + 0.5 / fine
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    p = data.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp().reshape(len(t), len(t))
    mass = p.reshape(10, fine, 10, fine).sum(dim=(1, 3)) * (1 / fine) ** 2
    assert abs(mass.sum().item() - 1) < 1e-3
    se = (mass * (1 - mass) / n).sqrt()
    assert ((counts - mass).abs() <= 5 * se + 2e-3).all()


def test_checkerboard_samples_lie_on_dark_squares_only():
    data = datasets.get("checkerboard")
    x = data.sample(10_000, generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(data.log_prob(x)).all()
    assert (x.abs() <= 4).all()
    assert data.entropy == pytest.approx(math.log(32))


def test_digits_are_bundled_8x8_images_with_17_grey_levels():
    data = datasets.get("digits")
    assert data.images.shape == (1797, 1, 8, 8) and data.labels.shape == (1797,)
    x = data.sample(100, generator=torch.Generator().manual_seed(0))
    assert x.shape == (100, 64) and torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 16


def test_unknown_name_lists_the_available_data_sets():
    with pytest.raises(ValueError, match="eight_gaussians"):
        datasets.get("nine_gaussians")


def test_non_analytic_data_set_says_it_has_no_density():
    with pytest.raises(NotImplementedError, match="no closed-form density"):
        datasets.get("two_moons").log_prob(torch.zeros(2, 2))


# -- arguments and values a student might type ------------------------------------------------------

@pytest.mark.parametrize("name", datasets.names)
def test_zero_samples_give_an_empty_batch_of_the_right_width(name):
    data = datasets.get(name)
    x = data.sample(0)
    assert x.shape == (0, data.dim) and x.dtype == torch.get_default_dtype()


@pytest.mark.parametrize("n", [-1, 2.0, True, "3"])
def test_a_count_that_is_not_a_non_negative_integer_is_named(n):
    with pytest.raises(CourseValueError, match=r"two_moons.sample: expected the number of "
                                               r"samples n to be an integer >= 0"):
        datasets.get("two_moons").sample(n)


def test_a_seed_passed_as_the_generator_gets_a_clear_error():
    with pytest.raises(CourseValueError, match=r"two_moons.sample: expected generator to be a "
                                               r"torch.Generator or None, got 42 \(int\).*"
                                               r"manual_seed"):
        datasets.get("two_moons").sample(4, generator=42)


def test_checkerboard_density_of_integer_points_equals_that_of_the_same_float_points():
    grid = torch.arange(-5, 6)
    points = torch.cartesian_prod(grid, grid)   # int64, on and between the squares' edges
    data = datasets.get("checkerboard")
    got = data.log_prob(points)
    want = data.log_prob(points.to(torch.float64))
    assert got.dtype.is_floating_point
    torch.testing.assert_close(got.double(), want)
    # every value is log(1/32) or -inf (never an overflowed integer)
    assert set(got.tolist()) <= {-math.log(32), -math.inf}
    assert (got == -math.log(32)).any() and (got == -math.inf).any()


@pytest.mark.parametrize("name", ["checkerboard", "eight_gaussians"])
def test_log_prob_refuses_non_finite_points_while_validating(name):
    x = torch.tensor([[0.5, math.nan]])
    with pytest.raises(CourseValueError, match=f"{name}.log_prob: x contains 1 non-finite"):
        datasets.get(name).log_prob(x)
    with validation(False):
        assert datasets.get(name).log_prob(x).shape == (1,)


def test_eight_gaussians_density_follows_the_points_device():
    x = torch.zeros(3, 2, device="meta")
    with validation(False):
        assert datasets.get("eight_gaussians").log_prob(x).device.type == "meta"

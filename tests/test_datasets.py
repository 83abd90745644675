"""Toy data sets: seeded sampling, and closed-form densities that agree with the samples."""
import math

import pytest
import torch

from course_lib import datasets

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

"""The target densities: each is the density its docstring states, the exact normalisers are
the grid integrals, exact samples follow the density, and bad inputs are refused."""
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import Bernoulli, Normal

from course_lib import targets
from course_lib.validation import CourseValueError
from course_lib.plotting import log_mass_on_window
from course_lib.targets import (Banana, GaussianMixture, LogisticRegressionPosterior,
                                TwoCrescents, banana_log_prob)


def grid_log_mass(log_prob, half_width=12.0, resolution=500):
    window = (-half_width, half_width)
    return log_mass_on_window(log_prob, window, window, resolution, torch.float64)


def points(n=50, scale=2.5, seed=0):
    return scale * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


# -- the banana ---------------------------------------------------------------------------------

def test_banana_is_the_product_of_its_two_gaussian_factors():
    x = points()
    want = Normal(0.0, 1.0).log_prob(x[:, 0]) + Normal(0.5 * x[:, 0] ** 2 - 1, 0.5).log_prob(x[:, 1])
    assert torch.allclose(banana_log_prob(x), want, atol=1e-12)


def test_banana_log_prob_integrates_to_one():
    assert abs(grid_log_mass(banana_log_prob, 10.0, 1200)) < 1e-5


def test_unnormalised_banana_differs_from_the_normalised_one_by_log_pi():
    x = points()
    assert Banana().log_normaliser == pytest.approx(math.log(math.pi), abs=1e-15)
    assert torch.allclose(Banana().log_prob(x) - math.log(math.pi), banana_log_prob(x), atol=1e-12)


def test_banana_samples_have_the_conditional_mean_and_spread_of_the_formula():
    x = Banana().sample(40_000, generator=torch.Generator().manual_seed(1))
    residual = x[:, 1] - (0.5 * x[:, 0] ** 2 - 1)
    assert abs(x[:, 0].mean()) < 4 / math.sqrt(40_000)
    assert abs(x[:, 0].std() - 1.0) < 0.02
    assert abs(residual.mean()) < 4 * 0.5 / math.sqrt(40_000)
    assert abs(residual.std() - 0.5) < 0.01


def test_worksheet_03_still_offers_the_banana():
    from course_lib.checks import ws03
    assert ws03.banana_log_prob is banana_log_prob


# -- the Gaussian mixture -------------------------------------------------------------------------

def test_mixture_is_the_weighted_sum_of_its_gaussians():
    means, stds, weights = ((-1.0, 0.5), (2.0, 1.0), (0.0, -2.0)), (0.5, 1.2, 0.8), (0.5, 2.0, 1.5)
    mixture = GaussianMixture(means, stds, weights)
    x = points().numpy()
    want = sum(w * stats.multivariate_normal(m, s ** 2 * np.eye(2)).pdf(x)
               for m, s, w in zip(means, stds, weights))
    got = mixture.log_prob(torch.as_tensor(x)).exp().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)


def test_mixture_normaliser_is_the_sum_of_the_weights():
    mixture = GaussianMixture(weights=(0.5, 2.5))
    assert mixture.log_normaliser == pytest.approx(math.log(3.0), abs=1e-15)


def test_mixture_divided_by_its_normaliser_integrates_to_one():
    for mixture in (GaussianMixture(), GaussianMixture(((0, 0), (1, 1), (-2, 3)), (0.4, 1.0, 0.7),
                                                       (3.0, 0.2, 1.1))):
        log_mass = grid_log_mass(lambda x: mixture.log_prob(x) - mixture.log_normaliser)
        assert abs(log_mass) < 1e-6


def test_mixture_samples_fall_in_each_component_in_proportion_to_its_weight():
    mixture = GaussianMixture(((-4.0, 0.0), (4.0, 0.0)), (0.5, 0.5), (1.0, 3.0))
    x = mixture.sample(20_000, generator=torch.Generator().manual_seed(2))
    right = (x[:, 0] > 0).double().mean().item()
    assert abs(right - 0.75) < 4 * math.sqrt(0.75 * 0.25 / 20_000)
    assert abs(x[x[:, 0] > 0].std(dim=0) - 0.5).max() < 0.02


def test_mixture_refuses_non_positive_weights_or_stds_and_mismatched_shapes():
    with pytest.raises(ValueError, match="positive"):
        GaussianMixture(weights=(1.0, 0.0))
    with pytest.raises(ValueError, match="positive"):
        GaussianMixture(stds=(1.0, -0.5))
    with pytest.raises(ValueError, match=r"means of shape \(K, 2\)"):
        GaussianMixture(means=((0.0, 0.0, 0.0),), stds=(1.0,), weights=(1.0,))


# -- two crescents --------------------------------------------------------------------------------

def test_crescents_log_prob_is_the_ring_times_the_two_side_bumps():
    x = points()
    r = x.norm(dim=1)
    want = (torch.exp(-0.5 * ((r - 2) / 0.4) ** 2)
            * (torch.exp(-0.5 * ((x[:, 0] - 2) / 0.6) ** 2) + torch.exp(-0.5 * ((x[:, 0] + 2) / 0.6) ** 2)))
    assert torch.allclose(TwoCrescents().log_prob(x).exp(), want, atol=1e-12)


def test_crescents_stay_below_the_rejection_bound():
    t = torch.linspace(-4.5, 4.5, 601)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)
    assert TwoCrescents().log_prob(grid).max().item() < math.log(1.01)


def test_crescents_samples_hit_boxes_as_often_as_the_grid_integral_says():
    target = TwoCrescents()
    x = target.sample(20_000, generator=torch.Generator().manual_seed(3))
    log_z = grid_log_mass(target.log_prob, 6.0, 400)
    for xlim, ylim in (((0.0, 6.0), (-6.0, 6.0)), ((-3.0, -1.0), (0.0, 1.0)), ((1.0, 3.0), (-3.0, -1.0))):
        probability = math.exp(log_mass_on_window(target.log_prob, xlim, ylim, 300,
                                                  torch.float64) - log_z)
        inside = ((x[:, 0] > xlim[0]) & (x[:, 0] < xlim[1]) & (x[:, 1] > ylim[0])
                  & (x[:, 1] < ylim[1])).double().mean().item()
        assert abs(inside - probability) < 4 * math.sqrt(probability * (1 - probability) / 20_000)


# -- the Bayesian posterior -------------------------------------------------------------------------

def test_posterior_is_bernoulli_likelihood_times_gaussian_prior():
    posterior = LogisticRegressionPosterior()
    w = points(20)
    likelihood = Bernoulli(logits=w @ posterior.features.T).log_prob(posterior.labels).sum(dim=1)
    prior = Normal(0.0, posterior.prior_std).log_prob(w).sum(dim=1)
    assert torch.allclose(posterior.log_likelihood(w), likelihood, atol=1e-10)
    assert torch.allclose(posterior.log_prob(w), likelihood + prior, atol=1e-10)


def test_posterior_data_come_from_a_fixed_seed():
    first, second = LogisticRegressionPosterior(), LogisticRegressionPosterior()
    assert torch.equal(first.features, second.features) and torch.equal(first.labels, second.labels)
    other = LogisticRegressionPosterior(seed=5)
    assert not torch.equal(first.features, other.features)
    assert set(first.labels.tolist()) == {0.0, 1.0}


def test_posterior_window_holds_nearly_all_of_its_mass():
    posterior = LogisticRegressionPosterior()
    inside = log_mass_on_window(posterior.log_prob, posterior.xlim, posterior.ylim, 300, torch.float64)
    assert abs(inside - grid_log_mass(posterior.log_prob, 25.0, 500)) < 2e-3


def test_posterior_cannot_be_sampled_exactly():
    with pytest.raises(NotImplementedError, match="fit a sampler"):
        LogisticRegressionPosterior().sample(3)


# -- every target -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", targets.names)
def test_target_works_in_float32_like_in_float64(name):
    target = targets.get(name)
    x = points(10, scale=1.5)
    got = target.log_prob(x.float())
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), target.log_prob(x), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", targets.names)
def test_target_refuses_points_of_the_wrong_shape(name):
    with pytest.raises(ValueError, match=r"expected points of shape \(batch, 2\), got \(4, 3\)"):
        targets.get(name).log_prob(torch.zeros(4, 3))


def test_unknown_target_names_the_known_ones():
    with pytest.raises(ValueError, match="banana"):
        targets.get("volcano")


def test_sample_refuses_a_negative_count_and_gives_an_empty_batch_for_zero():
    with pytest.raises(CourseValueError, match=r"banana.sample: expected the number of samples n "
                                               r"to be an integer >= 0, got -1"):
        Banana().sample(-1)
    for name in targets.names:
        target = targets.get(name)
        if target.log_normaliser is not None or name == "two crescents":
            assert target.sample(0).shape == (0, 2)


def test_sample_refuses_a_seed_where_a_generator_belongs():
    with pytest.raises(CourseValueError, match=r"expected generator to be a torch.Generator or "
                                               r"None, got 7 \(int\)"):
        Banana().sample(3, generator=7)


def test_log_prob_refuses_integer_and_non_finite_points():
    with pytest.raises(CourseValueError, match="floating-point points.*got dtype torch.int64"):
        Banana().log_prob(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(CourseValueError, match="banana.log_prob: x contains 1 non-finite"):
        Banana().log_prob(torch.tensor([[0.0, math.nan]]))


def test_mixture_and_posterior_constructors_name_the_bad_argument():
    with pytest.raises(CourseValueError, match="every coordinate of the means to be finite"):
        GaussianMixture(means=((0.0, math.inf), (1.0, 1.0)))
    with pytest.raises(CourseValueError, match="every one of the stds to be a finite positive"):
        GaussianMixture(stds=(1.0, math.nan))
    with pytest.raises(CourseValueError, match="n_data to be an integer >= 1, got 0"):
        targets.LogisticRegressionPosterior(n_data=0)
    with pytest.raises(CourseValueError, match="prior_std to be a finite positive number"):
        targets.LogisticRegressionPosterior(prior_std=-1.0)

"""The VAE and its flow posterior and prior, checked on a linear Gaussian VAE whose marginal is
known: ``z ~ N(0, I)``, ``x | z ~ N(W z + b, S)`` gives ``x ~ N(b, W W^T + S)`` and the posterior
``N(C W^T S^-1 (x - b), C)`` with ``C = (I + W^T S^-1 W)^-1``; with an affine flow prior
``z = L u + m`` the marginal is ``N(W m + b, W L L^T W^T + S)``."""
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import MultivariateNormal

from course_lib.flows import IAF, Affine, FlowInputError, LULinear, Planar
from course_lib.jacobian import log_abs_det_bruteforce
from course_lib.models import realnvp
from course_lib.plotting import log_mass_on_window
from course_lib.training import fit
from course_lib.validation import CourseValueError
from course_lib.vae import VAE, negative_elbo, posterior_on_grid

D, K = 5, 2


def linear_vae(weight, bias, noise_std, flows=None):
    """A linear Gaussian VAE with decoder ``x = W z + b`` and noise ``S = diag(noise_std^2)``."""
    vae = VAE(D, K, hidden=(), likelihood="gaussian", posterior_flows=flows)
    with torch.no_grad():
        vae.decoder.net[0].weight.copy_(weight)
        vae.decoder.net[0].bias.copy_(bias)
        vae.log_scale.copy_(torch.log(noise_std))
    return vae


def marginal(weight, bias, noise_std):
    return MultivariateNormal(bias, weight @ weight.T + torch.diag(noise_std ** 2))


def posterior(weight, bias, noise_std):
    """``(A, c, C)``: the exact posterior is ``N(A x + c, C)``."""
    s_inv = torch.diag(noise_std ** -2)
    cov = torch.linalg.inv(torch.eye(K) + weight.T @ s_inv @ weight)
    gain = cov @ weight.T @ s_inv
    return gain, -gain @ bias, cov


def set_encoder(vae, gain, offset, log_sigma):
    """Encoder ``mu(x) = gain x + offset`` and a constant ``log sigma``."""
    with torch.no_grad():
        layer = vae.encoder.net[0]
        layer.weight.zero_()
        layer.weight[:K].copy_(gain)
        layer.bias[:K].copy_(offset)
        layer.bias[K:].copy_(log_sigma)


@pytest.fixture
def correlated():
    """A decoder whose posterior has correlated coordinates (non-orthogonal columns)."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(D, K, generator=g)
    weight[:, 1] = weight[:, 0] + 0.5 * weight[:, 1]    # nearly parallel columns
    bias = torch.randn(D, generator=g)
    noise_std = 0.5 + torch.rand(D, generator=g)
    x = marginal(weight, bias, noise_std).sample((64,))
    return weight, bias, noise_std, x


def randomise(module, scale, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


# -- the bound --------------------------------------------------------------------------------

def test_elbo_equals_log_marginal_for_every_draw_when_the_posterior_is_exact():
    # orthogonal columns and isotropic noise make the exact posterior a diagonal Gaussian
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, -1.0], [0.5, 0.0]])
    bias, noise_std = torch.linspace(-1, 1, D), torch.full((D,), 0.7)
    gain, offset, cov = posterior(weight, bias, noise_std)
    assert torch.allclose(cov, torch.diag(cov.diagonal()), atol=1e-15)
    vae = linear_vae(weight, bias, noise_std)
    set_encoder(vae, gain, offset, 0.5 * torch.log(cov.diagonal()))
    x = marginal(weight, bias, noise_std).sample((50,))
    torch.manual_seed(1)
    z, log_q = vae.sample_posterior(x, n_samples=3)
    log_ratio = vae.log_joint(x, z) - log_q          # log p(x, z) - log q(z|x), per draw
    expected = marginal(weight, bias, noise_std).log_prob(x).expand(3, -1)
    torch.testing.assert_close(log_ratio, expected, rtol=0, atol=1e-10)


def test_elbo_is_below_log_marginal_for_an_arbitrary_encoder(correlated):
    weight, bias, noise_std, x = correlated
    vae = randomise(linear_vae(weight, bias, noise_std), 0.3)
    vae.decoder.load_state_dict({"net.0.weight": weight, "net.0.bias": bias})
    torch.manual_seed(2)
    elbo = vae.elbo(x, n_samples=4000)
    log_p = marginal(weight, bias, noise_std).log_prob(x)
    assert bool((elbo < log_p).all())


def test_log_joint_integrates_to_the_log_marginal(correlated):
    weight, bias, noise_std, x = correlated
    vae = linear_vae(weight, bias, noise_std)
    for point in x[:3]:
        log_p = log_mass_on_window(lambda z: vae.log_joint(point[None], z), (-8, 8), (-8, 8),
                                   400, torch.float64)
        expected = marginal(weight, bias, noise_std).log_prob(point).item()
        assert log_p == pytest.approx(expected, abs=1e-8)


def test_a_diagonal_gaussian_posterior_cannot_match_a_correlated_posterior(correlated):
    weight, bias, noise_std, x = correlated
    gain, offset, cov = posterior(weight, bias, noise_std)
    vae = linear_vae(weight, bias, noise_std)
    # the best diagonal Gaussian in KL(q || p) has the exact mean and precision diag(C^-1)
    set_encoder(vae, gain, offset, -0.5 * torch.log(torch.linalg.inv(cov).diagonal()))
    torch.manual_seed(3)
    gap = marginal(weight, bias, noise_std).log_prob(x) - vae.elbo(x, n_samples=2000)
    # KL between that diagonal Gaussian and the posterior: 0.5 log(det diag(C^-1) det C)
    expected = 0.5 * (torch.log(torch.linalg.inv(cov).diagonal()).sum() + torch.logdet(cov))
    torch.testing.assert_close(gap.mean(), expected, rtol=0.05, atol=0)
    assert expected > 0.2


def test_a_flow_posterior_closes_the_gap_a_diagonal_gaussian_leaves(correlated):
    weight, bias, noise_std, x = correlated
    gain, offset, cov = posterior(weight, bias, noise_std)
    chol = torch.linalg.cholesky(cov)
    # z = L z0 with z0 ~ N(L^-1 mean(x), I) is the exact posterior N(mean(x), L L^T)
    vae = linear_vae(weight, bias, noise_std, flows=[LULinear(K, weight=chol)])
    chol_inv = torch.linalg.inv(chol)
    set_encoder(vae, chol_inv @ gain, chol_inv @ offset, torch.zeros(K))
    torch.manual_seed(4)
    z, log_q = vae.sample_posterior(x, n_samples=2)
    torch.testing.assert_close(vae.log_joint(x, z) - log_q,
                               marginal(weight, bias, noise_std).log_prob(x).expand(2, -1),
                               rtol=0, atol=1e-10)


def test_importance_sampling_estimate_lies_between_the_elbo_and_log_marginal(correlated):
    weight, bias, noise_std, x = correlated
    gain, offset, cov = posterior(weight, bias, noise_std)
    # a proposal that is close to, but not, the posterior: N(mean(x), 2 C), twice as wide
    chol = torch.linalg.cholesky(2 * cov)
    vae = linear_vae(weight, bias, noise_std, flows=[LULinear(K, weight=chol)])
    chol_inv = torch.linalg.inv(chol)
    set_encoder(vae, chol_inv @ gain, chol_inv @ offset, torch.zeros(K))
    torch.manual_seed(5)
    elbo = vae.elbo(x, n_samples=2000)
    estimate = vae.log_marginal(x, n_samples=5000)
    log_p = marginal(weight, bias, noise_std).log_prob(x)
    assert bool((estimate > elbo + 0.2).all())
    torch.testing.assert_close(estimate, log_p, rtol=0, atol=0.03)


# -- the flow posterior's density ---------------------------------------------------------

@pytest.mark.parametrize("make_flows", [lambda: [Planar(K), Planar(K)],
                                        lambda: [IAF(K, hidden=(8,)), IAF(K, hidden=(8,))]],
                         ids=["planar", "iaf"])
def test_flow_posterior_log_q_is_the_change_of_variables(make_flows):
    torch.manual_seed(6)
    vae = randomise(VAE(D, K, hidden=(16,), likelihood="gaussian", posterior_flows=make_flows()),
                    0.4)
    x = torch.randn(7, D)
    torch.manual_seed(7)
    z, log_q = vae.sample_posterior(x, n_samples=1)
    # the same draws by hand: z0 = mu + sigma eps, then log q = log q0(z0) - log|det df/dz0|
    torch.manual_seed(7)
    mu, log_sigma = vae.encode(x)
    z0 = mu + log_sigma.exp() * torch.randn(1, *mu.shape)[0]
    log_q0 = torch.distributions.Normal(mu, log_sigma.exp()).log_prob(z0).sum(-1)
    log_det = log_abs_det_bruteforce(vae.posterior_flow, z0)
    torch.testing.assert_close(z[0], vae.posterior_flow(z0)[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(log_q[0], log_q0 - log_det, rtol=0, atol=1e-10)
    # and by the inverse direction, at the same points
    torch.testing.assert_close(vae.posterior_log_prob(z[0], x), log_q[0], rtol=0, atol=1e-10)


def test_posterior_density_by_the_inverse_integrates_to_one():
    torch.manual_seed(8)
    vae = randomise(VAE(D, K, hidden=(16,), likelihood="gaussian",
                        posterior_flows=[Planar(K) for _ in range(3)]), 0.3)
    with torch.no_grad():
        vae.encoder.net[-1].bias[K:].fill_(0.0)   # unit scale, so the window holds the mass
    x = torch.randn(1, D)
    mass = math.exp(log_mass_on_window(lambda z: vae.posterior_log_prob(z, x), (-9, 9), (-9, 9),
                                       200, torch.float64))
    assert mass == pytest.approx(1.0, abs=1e-6)


def test_identity_flows_leave_the_posterior_and_elbo_unchanged():
    torch.manual_seed(9)
    vae = VAE(D, K, hidden=(16,), likelihood="gaussian")
    with_flow = vae.with_posterior_flows([IAF(K, hidden=(8,))])   # IAF starts as the identity
    x = torch.randn(6, D)
    torch.manual_seed(10)
    before = vae.elbo(x, n_samples=5)
    torch.manual_seed(10)
    after = with_flow.elbo(x, n_samples=5)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-12)
    with torch.no_grad():
        with_flow.decoder.net[0].bias.add_(1.0)
    assert not torch.equal(with_flow.decoder.net[0].bias, vae.decoder.net[0].bias)   # a copy
    assert vae.posterior_flow is None


# -- the flow prior ------------------------------------------------------------------------

def affine_prior(seed=12):
    """``z = L u + m`` with a random lower-triangular ``L``: the prior ``N(m, L L^T)``."""
    g = torch.Generator().manual_seed(seed)
    chol = torch.tensor([[1.3, 0.0], [0.0, 0.6]]) + torch.tril(0.4 * torch.randn(K, K, generator=g), -1)
    shift = torch.randn(K, generator=g)
    return [LULinear(K, weight=chol), Affine(K, shift=shift)], MultivariateNormal(shift, chol @ chol.T)


def test_an_affine_flow_prior_has_the_gaussian_density_it_pushes_forward():
    flows, oracle = affine_prior()
    vae = VAE(D, K, hidden=(8,), likelihood="gaussian", prior_flows=flows)
    z = 2 * torch.randn(50, K)
    torch.testing.assert_close(vae.log_prior(z), oracle.log_prob(z), rtol=0, atol=1e-12)
    torch.testing.assert_close(vae.log_prior(z.reshape(5, 10, K)), oracle.log_prob(z).reshape(5, 10),
                               rtol=0, atol=1e-12)


def test_a_linear_vae_with_an_affine_flow_prior_has_its_known_marginal(correlated):
    weight, bias, noise_std, x = correlated
    flows, prior = affine_prior()
    vae = linear_vae(weight, bias, noise_std).with_prior_flows(flows)
    want = MultivariateNormal(weight @ prior.loc + bias,
                              weight @ prior.covariance_matrix @ weight.T + torch.diag(noise_std ** 2))
    for xi in x[:3]:
        grid = posterior_on_grid(lambda z: vae.log_joint(xi[None], z), lim=12.0, resolution=400)
        assert grid.log_evidence == pytest.approx(want.log_prob(xi).item(), abs=1e-6)


def test_flow_prior_log_p_is_the_change_of_variables_and_integrates_to_one():
    torch.manual_seed(13)
    # a small perturbation already moves log p(z) by several nats from N(0, I) here, while
    # the prior's mass stays inside the window
    prior = randomise(realnvp(K, n_layers=4, hidden=16), 0.02).flows
    vae = VAE(D, K, hidden=(8,), prior_flows=list(prior))
    z = 1.5 * torch.randn(20, K)
    assert (vae.log_prior(z) - MultivariateNormal(torch.zeros(K), torch.eye(K)).log_prob(z)).abs().max() > 1
    u, _ = vae.prior_flow.inverse(z)
    by_autograd = (MultivariateNormal(torch.zeros(K), torch.eye(K)).log_prob(u)
                   + log_abs_det_bruteforce(lambda v: vae.prior_flow.inverse(v)[0], z))
    torch.testing.assert_close(vae.log_prior(z), by_autograd, rtol=0, atol=1e-10)
    mass = math.exp(log_mass_on_window(vae.log_prior, (-12, 12), (-12, 12), 400, torch.float64))
    assert mass == pytest.approx(1.0, abs=1e-4)


def test_identity_prior_flows_leave_the_elbo_unchanged_and_the_model_is_a_copy():
    torch.manual_seed(14)
    vae = VAE(D, K, hidden=(16,), likelihood="gaussian")
    with_prior = vae.with_prior_flows(realnvp(K, n_layers=2, hidden=8).flows)   # starts as the identity
    x = torch.randn(6, D)
    torch.manual_seed(15)
    before = vae.elbo(x, n_samples=5)
    torch.manual_seed(15)
    torch.testing.assert_close(with_prior.elbo(x, n_samples=5), before, rtol=0, atol=1e-12)
    assert vae.prior_flow is None and with_prior.posterior_flow is None


def test_samples_of_a_vae_with_a_flow_prior_follow_its_marginal(correlated):
    weight, bias, noise_std, _ = correlated
    flows, prior = affine_prior()
    vae = linear_vae(weight, bias, noise_std).with_prior_flows(flows)
    torch.manual_seed(16)
    x = vae.sample(40000)
    want_cov = weight @ prior.covariance_matrix @ weight.T + torch.diag(noise_std ** 2)
    # standard errors of these moments are below 0.03 here
    torch.testing.assert_close(x.mean(0), weight @ prior.loc + bias, rtol=0, atol=0.06)
    torch.testing.assert_close(torch.cov(x.T), want_cov, rtol=0, atol=0.2)


# -- likelihoods --------------------------------------------------------------------------

def test_binomial_log_likelihood_matches_scipy():
    torch.manual_seed(11)
    vae = randomise(VAE(D, K, hidden=(8,), trials=16), 0.5)
    x = torch.randint(0, 17, (4, D)).double()
    z = torch.randn(4, K)
    p = torch.sigmoid(vae.decode(z)).detach().numpy()
    expected = stats.binom(16, p).logpmf(x.numpy()).sum(1)
    np.testing.assert_allclose(vae.log_likelihood(x, z).detach().numpy(), expected,
                               rtol=0, atol=1e-10)


def test_gaussian_log_likelihood_matches_scipy():
    torch.manual_seed(12)
    vae = randomise(VAE(D, K, hidden=(8,), likelihood="gaussian"), 0.5)
    x, z = torch.randn(4, D), torch.randn(4, K)
    mean = vae.decode(z).detach().numpy()
    std = vae.log_scale.exp().detach().numpy()
    expected = stats.norm(mean, std).logpdf(x.numpy()).sum(1)
    np.testing.assert_allclose(vae.log_likelihood(x, z).detach().numpy(), expected,
                               rtol=0, atol=1e-10)


def test_a_mask_counts_only_the_observed_pixels():
    torch.manual_seed(13)
    vae = VAE(D, K, hidden=(8,), trials=16)
    x, z = torch.randint(0, 17, (3, D)).double(), torch.randn(3, K)
    observed = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    full = vae.log_likelihood(x, z)
    per_pixel = [vae.log_likelihood(x, z, torch.eye(D)[i]) for i in range(D)]
    torch.testing.assert_close(full, sum(per_pixel), rtol=0, atol=1e-10)
    torch.testing.assert_close(vae.log_likelihood(x, z, observed),
                               per_pixel[0] + per_pixel[2] + per_pixel[3], rtol=0, atol=1e-10)


# -- shapes and training --------------------------------------------------------------------

def test_shapes_of_the_posterior_samples_bounds_and_samples():
    vae = VAE(D, K, hidden=(8,), posterior_flows=[Planar(K)])
    x = torch.randint(0, 17, (6, D)).double()
    z, log_q = vae.sample_posterior(x, n_samples=3)
    assert z.shape == (3, 6, K) and log_q.shape == (3, 6)
    assert vae.elbo(x).shape == (6,) and vae.log_marginal(x, 10).shape == (6,)
    assert vae.log_joint(x[:1], torch.randn(20, K)).shape == (20,)
    assert vae.posterior_log_prob(torch.randn(20, K), x[:1]).shape == (20,)
    samples = vae.sample(4)
    assert samples.shape == (4, D) and bool(((samples >= 0) & (samples <= 16)).all())


def test_fit_trains_a_vae_through_its_loss_function():
    torch.manual_seed(14)
    data = torch.randint(0, 17, (200, D)).double()
    data[:100, :2] = 0        # two groups the latent can tell apart
    vae = VAE(D, K, hidden=(16,), posterior_flows=[Planar(K)])
    torch.manual_seed(15)
    before = vae.elbo(data, 20).mean().item()
    fit(vae, data, steps=150, batch_size=64, lr=1e-2, progress=False, loss_fn=negative_elbo)
    torch.manual_seed(15)
    assert vae.elbo(data, 20).mean().item() > before + 10


# -- bad inputs -------------------------------------------------------------------------------

def test_wrong_number_of_data_coordinates_is_refused():
    with pytest.raises(FlowInputError, match=r"expected x of shape \(batch, 5\), got \(3, 4\)"):
        VAE(D, K).elbo(torch.zeros(3, 4))


@pytest.mark.parametrize("value", [0.5, -1.0, 17.0])
def test_binomial_data_outside_the_integers_0_to_trials_are_refused(value):
    x = torch.zeros(2, D)
    x[1, 3] = value
    with pytest.raises(FlowInputError, match="integer values 0..16"):
        VAE(D, K).elbo(x)


def test_non_finite_data_are_refused():
    x = torch.zeros(2, D)
    x[0, 0] = float("nan")
    with pytest.raises(FlowInputError, match="non-finite"):
        VAE(D, K, likelihood="gaussian").elbo(x)


def test_unknown_likelihood_is_refused():
    with pytest.raises(FlowInputError, match="'binomial' or 'gaussian', got 'poisson'"):
        VAE(D, K, likelihood="poisson")


def test_posterior_flows_of_the_wrong_dimension_are_refused():
    with pytest.raises(FlowInputError, match=r"act on \(2,\) latent vectors, got .*\(3,\)"):
        VAE(D, K, posterior_flows=[Planar(3)])


def test_prior_flows_of_the_wrong_dimension_are_refused():
    with pytest.raises(FlowInputError, match=r"prior flows must act on \(2,\) latent vectors"):
        VAE(D, K, prior_flows=[Planar(3)])
    with pytest.raises(FlowInputError, match=r"prior flows must act on \(2,\) latent vectors"):
        VAE(D, K).with_prior_flows(Planar(3))


def test_a_mask_that_is_not_zero_one_of_length_d_is_refused():
    vae = VAE(D, K)
    x, z = torch.zeros(1, D), torch.zeros(1, K)
    with pytest.raises(FlowInputError, match="0/1 mask of shape"):
        vae.log_joint(x, z, torch.ones(4))
    with pytest.raises(FlowInputError, match="0/1 mask of shape"):
        vae.log_joint(x, z, torch.full((D,), 0.5))


def test_latents_of_the_wrong_size_or_count_are_refused():
    vae = VAE(D, K)
    x = torch.zeros(3, D)
    with pytest.raises(FlowInputError, match=r"expected z of shape \(batch, 2\)"):
        vae.log_joint(x, torch.zeros(3, 3))
    with pytest.raises(FlowInputError, match="one z per x"):
        vae.log_joint(x, torch.zeros(4, K))


def test_number_of_samples_must_be_a_positive_integer():
    with pytest.raises(CourseValueError, match="VAE: expected n_samples to be an integer >= 1, got 0"):
        VAE(D, K).elbo(torch.zeros(1, D), n_samples=0)


# -- the posterior on a grid (two-dimensional latents) ---------------------------------------

def gaussian_log_joint(mean, cov, log_z):
    """``log Z + log N(z; mean, cov)``: an unnormalised density with known normaliser ``Z``."""
    return lambda z: log_z + MultivariateNormal(mean, cov).log_prob(z)


def test_grid_posterior_recovers_the_normaliser_mean_and_covariance():
    mean, cov = torch.tensor([0.7, -1.2]), torch.tensor([[0.5, 0.3], [0.3, 0.8]])
    grid = posterior_on_grid(gaussian_log_joint(mean, cov, -3.0), lim=7.0, resolution=200)
    assert grid.log_evidence == pytest.approx(-3.0, abs=1e-9)
    torch.testing.assert_close(grid.mean, mean, rtol=0, atol=1e-9)
    torch.testing.assert_close(grid.covariance, cov, rtol=0, atol=1e-3)  # (cell width)^2 / 12


def test_grid_posterior_samples_follow_the_tabulated_density():
    mean, cov = torch.tensor([1.0, 0.5]), torch.tensor([[0.4, -0.1], [-0.1, 0.2]])
    grid = posterior_on_grid(gaussian_log_joint(mean, cov, 0.0), lim=5.0, resolution=100)
    samples = grid.sample(40000, torch.Generator().manual_seed(0))
    assert samples.shape == (40000, 2)
    # standard error of a mean of 40000 draws is below 0.004 here
    torch.testing.assert_close(samples.mean(0), mean, rtol=0, atol=0.02)
    torch.testing.assert_close(torch.cov(samples.T), cov, rtol=0, atol=0.02)


def test_grid_posterior_refuses_a_log_joint_of_the_wrong_shape():
    with pytest.raises(CourseValueError, match=r"to \(n,\) values, got shape \(400, 2\)"):
        posterior_on_grid(lambda z: z, lim=1.0, resolution=20)


# -- one network class, arguments, devices -----------------------------------------------------

def test_encoder_and_decoder_are_the_shared_mlp_with_the_weights_of_a_plain_stack_for_a_seed():
    from course_lib.flows.nets import MLP
    torch.manual_seed(3)
    vae = VAE(D, K, hidden=(8, 8))
    torch.manual_seed(3)   # the same draws, in the same order, as two plain Linear-SiLU stacks
    nn = torch.nn
    plain = [nn.Sequential(nn.Linear(a, 8), nn.SiLU(), nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, b))
             for a, b in ((D, 2 * K), (K, D))]
    assert isinstance(vae.encoder, MLP) and isinstance(vae.decoder, MLP)
    for net, reference in zip((vae.encoder, vae.decoder), plain):
        for p, q in zip(net.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    x = torch.randn(4, D)
    torch.testing.assert_close(vae.encoder(x), plain[0](x), rtol=0, atol=0)


def test_hidden_layers_of_different_widths_are_refused_with_the_widths_named():
    with pytest.raises(CourseValueError, match=r"one width .*got \(8, 4\)"):
        VAE(D, K, hidden=(8, 4))
    with pytest.raises(CourseValueError, match="every hidden width to be an integer >= 1, got 0"):
        VAE(D, K, hidden=(0,))
    with pytest.raises(CourseValueError, match="latent_dim to be an integer >= 1, got 2.5"):
        VAE(D, 2.5)


def test_zero_samples_give_an_empty_batch():
    out = VAE(D, K, likelihood="gaussian").sample(0)
    assert out.shape == (0, D)


def test_sample_and_elbo_run_on_the_parameters_device_with_validation_off():
    from course_lib.validation import validation
    gaussian = VAE(D, K, hidden=(8,), likelihood="gaussian").to("meta")
    binomial = VAE(D, K, hidden=(8,)).to("meta")
    with validation(False):
        assert gaussian.sample(3).device.type == "meta"
        assert binomial.elbo(torch.zeros(3, D, device="meta")).device.type == "meta"
        assert binomial.log_marginal(torch.zeros(2, D, device="meta"), 4).shape == (2,)


def test_the_binomial_range_check_is_a_value_check_that_validation_switches_off():
    from course_lib.validation import validation
    vae = VAE(D, K)
    with pytest.raises(FlowInputError, match="integer values 0..16"):
        vae.elbo(torch.full((1, D), 0.5))
    with validation(False):
        assert torch.isfinite(vae.elbo(torch.full((1, D), 0.5))).all()

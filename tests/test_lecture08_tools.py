"""Tools of lecture 08 (forward against reverse KL): importance weights, the effective sample
size and the estimate of log Z; the training snapshots and their animation; the figures of
fits, weights and entropies; the explorer that switches between fitted models."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from course_lib import NormalizingFlow, targets  # noqa: E402
from course_lib.flows import Affine  # noqa: E402
from course_lib.plotting import (MIN_ANIMATION_WIDTH, SampleSnapshots,  # noqa: E402
                                 animate_snapshots,
                                 plot_gaussian_entropy, plot_importance_weights,
                                 plot_target_and_fits)
from course_lib.sampling import (effective_sample_size, log_importance_weights,  # noqa: E402
                                 log_normaliser_estimate)
from course_lib.training import fit  # noqa: E402
from course_lib.widgets import kl_explorer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")


def gaussian_model(shift=(1.0, -0.5), scale=(2.0, 0.5)):
    """q = N(shift, diag(scale^2)): one affine layer on a standard normal."""
    return NormalizingFlow(2, [Affine(2, scale=torch.tensor(scale), shift=torch.tensor(shift))])


# -- effective sample size ----------------------------------------------------------------------

def test_ess_of_equal_weights_is_the_number_of_samples():
    for n, level in ((1, 0.0), (7, -3.2), (1000, 40.0)):
        assert effective_sample_size(torch.full((n,), level)).item() == pytest.approx(n, rel=1e-12)


def test_ess_of_one_dominant_weight_is_one():
    log_w = torch.full((500,), -800.0)
    log_w[17] = 0.0
    assert effective_sample_size(log_w).item() == pytest.approx(1.0, abs=1e-12)
    log_w[:] = -math.inf
    log_w[3] = 5.0
    assert effective_sample_size(log_w).item() == pytest.approx(1.0, abs=1e-12)


def test_ess_matches_a_hand_computation():
    w = [1.0, 2.0, 3.0, 4.0]  # (1 + 2 + 3 + 4)^2 / (1 + 4 + 9 + 16) = 100 / 30
    assert effective_sample_size(torch.log(torch.tensor(w))).item() == pytest.approx(10 / 3, rel=1e-12)


def test_ess_does_not_change_when_every_weight_is_scaled():
    log_w = torch.randn(200, generator=torch.Generator().manual_seed(0))
    assert effective_sample_size(log_w + 123.4).item() == pytest.approx(
        effective_sample_size(log_w).item(), rel=1e-10)


def test_ess_survives_weights_that_would_overflow():
    log_w = torch.tensor([1000.0, 1000.0, 999.0])
    want = (2 + math.exp(-1)) ** 2 / (2 + math.exp(-2))
    assert effective_sample_size(log_w).item() == pytest.approx(want, rel=1e-12)


# -- the estimate of log Z -------------------------------------------------------------------------

def test_log_z_estimate_is_the_log_of_the_mean_weight():
    w = torch.tensor([0.5, 1.5, 4.0])
    assert log_normaliser_estimate(w.log()).item() == pytest.approx(math.log(2.0), rel=1e-12)


def test_z_estimate_is_unbiased():
    # target p~ = Z N(0.5, 1), proposal q = N(0, 1.5^2); small batches so the log's bias
    # would show, while the mean of Z_hat over many batches must be Z
    g = torch.Generator().manual_seed(4)
    z_true, batches, n = 3.0, 4000, 5
    x = 1.5 * torch.randn(batches, n, generator=g)
    log_w = (math.log(z_true) + torch.distributions.Normal(0.5, 1.0).log_prob(x)
             - torch.distributions.Normal(0.0, 1.5).log_prob(x))
    z_hat = torch.stack([log_normaliser_estimate(row).exp() for row in log_w])
    standard_error = z_hat.std().item() / math.sqrt(batches)
    assert abs(z_hat.mean().item() - z_true) < 4 * standard_error
    log_bias = torch.log(z_hat).mean().item() - math.log(z_true)
    assert log_bias < -2 * torch.log(z_hat).std().item() / math.sqrt(batches)  # Jensen: log is biased low


def test_weights_of_a_sampler_equal_to_the_target_are_all_z():
    model = gaussian_model()
    log_z = 1.7
    target = lambda x: model.log_prob(x) + log_z
    x, log_w = log_importance_weights(model, target, 300)
    assert x.shape == (300, 2) and not log_w.requires_grad
    assert torch.allclose(log_w, torch.full_like(log_w, log_z), atol=1e-10)
    assert effective_sample_size(log_w).item() == pytest.approx(300, rel=1e-9)
    assert log_normaliser_estimate(log_w).item() == pytest.approx(log_z, abs=1e-10)


def test_weights_are_target_over_sampler_at_the_samples():
    model = gaussian_model()
    banana = targets.Banana()
    torch.manual_seed(5)
    x, log_w = log_importance_weights(model, banana.log_prob, 50)
    with torch.no_grad():
        assert torch.allclose(log_w, banana.log_prob(x) - model.log_prob(x), atol=1e-10)


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([0.0, math.nan]), "NaN"),
    (torch.tensor([0.0, math.inf]), r"\+inf"),
    (torch.full((3,), -math.inf), "every weight is 0"),
    (torch.zeros(2, 3), "1D tensor"),
    (torch.zeros(0), "1D tensor"),
])
def test_weights_that_say_nothing_are_refused(bad, message):
    for estimate in (effective_sample_size, log_normaliser_estimate):
        with pytest.raises(ValueError, match=message):
            estimate(bad)


# -- snapshots and their animation -------------------------------------------------------------------

def test_snapshots_record_the_start_and_every_kth_step():
    model = gaussian_model()
    z = torch.randn(30, 2, generator=torch.Generator().manual_seed(6))
    snapshots = SampleSnapshots(model, z, every=4)
    fit(model, objective="reverse_kl", log_target=targets.Banana().log_prob, steps=10,
        batch_size=16, lr=0.05, progress=False, callback=snapshots)
    assert snapshots.steps == [0, 4, 8]
    start = z * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -0.5])
    np.testing.assert_allclose(snapshots.samples[0], start.numpy(), atol=1e-12)
    assert not np.allclose(snapshots.samples[2], snapshots.samples[0])


def test_snapshots_refuse_a_non_positive_interval():
    with pytest.raises(ValueError, match="positive integer"):
        SampleSnapshots(gaussian_model(), torch.zeros(3, 2), every=0)


def snapshots_of(model, every=2, steps=6):
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(7))
    snapshots = SampleSnapshots(model, z, every=every)
    for step in range(1, steps + 1):
        with torch.no_grad():
            model.flows[0].shift.add_(0.1)  # stands in for an optimizer step
        snapshots(step, 0.0)
    return snapshots


def test_animation_has_one_frame_per_snapshot_and_shows_each_in_turn():
    first, second = snapshots_of(gaussian_model()), snapshots_of(gaussian_model((0.0, 0.0)))
    animation = animate_snapshots({"a": first, "b": second}, targets.Banana().log_prob,
                                  (-3, 3), (-3, 3))
    assert len(list(animation.new_frame_seq())) == len(first.steps) == 4
    dots = [ax.collections[-1] for ax in animation._fig.axes]
    for frame in range(4):
        animation._func(frame)
        np.testing.assert_allclose(dots[0].get_offsets(), first.samples[frame])
        np.testing.assert_allclose(dots[1].get_offsets(), second.samples[frame])


@pytest.mark.parametrize("panels", [1, 2])
def test_animation_renders_wide_enough_to_read_its_labels(panels):
    snapshots = {f"fit {k}": snapshots_of(gaussian_model()) for k in range(panels)}
    animation = animate_snapshots(snapshots, targets.Banana().log_prob, (-3, 3), (-3, 3))
    figure = animation._fig
    assert figure.get_size_inches()[0] * figure.dpi >= MIN_ANIMATION_WIDTH
    tick_sizes = [label.get_fontsize() for ax in figure.axes for label in ax.get_xticklabels()]
    assert min(tick_sizes) * figure.dpi / 72 >= 8  # pixels per character height


def test_animation_refuses_snapshots_taken_at_different_steps():
    with pytest.raises(ValueError, match="same steps"):
        animate_snapshots({"a": snapshots_of(gaussian_model(), every=2),
                           "b": snapshots_of(gaussian_model(), every=3)},
                          targets.Banana().log_prob, (-3, 3), (-3, 3))


# -- figures ----------------------------------------------------------------------------------------------

def test_target_and_fits_share_one_colour_scale_and_show_normalised_densities():
    mixture = targets.GaussianMixture()
    fits = {"wide": gaussian_model((0.0, 0.0), (2.0, 2.0)), "narrow": gaussian_model((3.0, 2.0), (0.5, 0.5))}
    xlim, ylim = mixture.xlim, mixture.ylim
    figure = plot_target_and_fits(mixture.log_prob, fits, xlim, ylim, resolution=150)
    meshes = [ax.collections[0] for ax in figure.axes[:3]]
    tops = {mesh.norm.vmax for mesh in meshes}
    assert len(tops) == 1
    assert tops.pop() == pytest.approx(max(mesh.get_array().max() for mesh in meshes))
    cell = (xlim[1] - xlim[0]) / 149 * (ylim[1] - ylim[0]) / 149
    assert meshes[0].get_array().sum() * cell == pytest.approx(1.0, abs=1e-9)
    narrow = stats.multivariate_normal((3.0, 2.0), 0.25 * np.eye(2))
    assert meshes[2].get_array().max() == pytest.approx(narrow.pdf((3.0, 2.0)), rel=0.05)


def test_importance_weight_histograms_are_labelled_with_their_ess_fraction():
    equal, spread = torch.zeros(100), torch.log(torch.arange(1.0, 101.0))
    figure = plot_importance_weights({"equal": equal, "spread": spread})
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    want = (5050 ** 2 / sum(k * k for k in range(1, 101))) / 100
    assert labels == ["equal: ESS/n = 1.00", f"spread: ESS/n = {want:.2f}"]


def test_gaussian_entropy_labels_agree_with_scipy():
    figure = plot_gaussian_entropy((2.0, 0.1))
    labels = [line.get_label() for line in figure.axes[0].lines[:2]]
    for std, label in zip((2.0, 0.1), labels):
        assert label.endswith(f"H = {stats.norm(scale=std).entropy():.3f} nats")
    x, y = figure.axes[0].lines[1].get_data()
    np.testing.assert_allclose(y, stats.norm(scale=0.1).pdf(x), rtol=1e-10)


# -- the explorer ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def explorer_and_fits():
    chosen = [targets.Banana(), targets.GaussianMixture()]
    fits = {(t.name, objective): gaussian_model((0.5 * k, 0.0), (1.0 + 0.5 * k, 1.0))
            for t in chosen for k, objective in enumerate(("forward_kl", "reverse_kl"))}
    return kl_explorer(chosen, fits, samples=50, n_weights=500, resolution=40), fits


def test_explorer_draws_the_target_and_both_fits_when_built(explorer_and_fits):
    explorer, _ = explorer_and_fits
    assert explorer.png.startswith(b"\x89PNG")
    titles = [ax.get_title() for ax in explorer.figure.axes]
    assert titles[0] == "target: banana"
    assert titles[1].startswith("forward KL fit") and titles[2].startswith("reverse KL fit")


def test_explorer_switches_target_and_objective_without_training(explorer_and_fits):
    explorer, fits = explorer_and_fits
    before = {key: [p.clone() for p in model.parameters()] for key, model in fits.items()}
    explorer.set(target="mixture of Gaussians", objective="reverse_kl")
    titles = [ax.get_title() for ax in explorer.figure.axes]
    assert titles[0] == "target: mixture of Gaussians"
    assert titles[1].startswith("reverse KL fit") and len([t for t in titles if "fit" in t]) == 1
    assert "exact 0.69" in titles[1]
    for key, model in fits.items():
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before[key]))
    explorer.set(target="banana", objective="both")


def test_explorer_reports_the_ess_of_each_fit(explorer_and_fits):
    explorer, fits = explorer_and_fits
    torch.manual_seed(0)
    _, log_w = log_importance_weights(fits["banana", "forward_kl"], targets.Banana().log_prob, 500)
    want = effective_sample_size(log_w).item() / 500
    assert f"ESS/n = {want:.2f}" in explorer.figure.axes[1].get_title()


def test_explorer_needs_a_fit_for_every_target_and_objective():
    with pytest.raises(ValueError, match="missing"):
        kl_explorer([targets.Banana()], {("banana", "forward_kl"): gaussian_model()})

"""Figures, animation and explorers of lecture 12 (applications): score histograms, ROC curves,
the threshold sweep, ranked images, latent posteriors, completions, and the two explorers."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib.anomaly import auroc, confusion, roc_curve
from course_lib.plotting import (animate_threshold_sweep, plot_completions, plot_posteriors,
                                 plot_ranked_images, plot_roc, plot_score_histograms,
                                 plot_threshold, threshold_summary)
from course_lib.vae import VAE
from course_lib.widgets import observed_rows_explorer, threshold_explorer

# frames are drawn by hand here, never rendered to a movie
pytestmark = pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")

RNG = np.random.default_rng(0)
NORMAL = RNG.normal(2.0, 0.3, 200)
ANOMALOUS = RNG.normal(3.0, 0.6, 300)
LABELS = np.r_[np.zeros(200), np.ones(300)]
SCORES = np.r_[NORMAL, ANOMALOUS]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# -- histograms and ROC -------------------------------------------------------------------------

def test_histograms_count_every_score_once():
    fig = plot_score_histograms(NORMAL, ANOMALOUS)
    ax = fig.axes[0]
    filled = [p for p in ax.patches][::2]          # each group: a filled and an outlined stairs
    totals = sorted(p.get_data().values.sum() for p in filled)
    assert totals == [200, 300]


def test_histogram_legend_gives_the_flagged_counts_at_the_threshold():
    tau = 2.4
    ax = plot_score_histograms(NORMAL, ANOMALOUS, threshold=tau).axes[0]
    texts = legend_texts(ax)
    assert f"normal: {(NORMAL >= tau).sum()} of 200 flagged" in texts
    assert f"anomalous: {(ANOMALOUS >= tau).sum()} of 300 flagged" in texts
    assert any(line.get_xdata()[0] == tau for line in ax.lines)


def test_roc_plot_draws_the_roc_curve_and_names_its_auroc():
    ax = plot_roc({"detector": (NORMAL, ANOMALOUS)}, point=(0.1, 0.5)).axes[0]
    fpr, tpr, _ = roc_curve(LABELS, SCORES)
    curve = ax.lines[1]
    np.testing.assert_array_equal(curve.get_xdata(), fpr)
    np.testing.assert_array_equal(curve.get_ydata(), tpr)
    assert f"detector (AUROC {auroc(LABELS, SCORES):.3f})" in legend_texts(ax)
    assert (ax.lines[-1].get_xdata()[0], ax.lines[-1].get_ydata()[0]) == (0.1, 0.5)


def test_threshold_summary_reports_the_confusion_counts():
    tau = 2.5
    c = confusion(LABELS, SCORES, tau)
    text = threshold_summary(NORMAL, ANOMALOUS, tau)
    assert f"TP {c.true_pos}, FP {c.false_pos}, TN {c.true_neg}, FN {c.false_neg}" in text
    assert f"precision {c.precision:.2f}, recall {c.recall:.2f}" in text


def test_threshold_summary_says_precision_is_undefined_when_nothing_is_flagged():
    assert "precision undefined" in threshold_summary(NORMAL, ANOMALOUS, 100.0)


def test_threshold_figure_marks_the_point_the_threshold_picks():
    tau = 2.3
    fig = plot_threshold(NORMAL, ANOMALOUS, tau)
    c = confusion(LABELS, SCORES, tau)
    point = fig.axes[1].lines[-1]
    assert (point.get_xdata()[0], point.get_ydata()[0]) == (c.false_alarm_rate, c.recall)
    assert fig._suptitle.get_text() == threshold_summary(NORMAL, ANOMALOUS, tau)


# -- the threshold sweep ----------------------------------------------------------------------

def test_sweep_moves_the_point_along_the_roc_curve_from_nothing_to_everything_flagged():
    animation = animate_threshold_sweep(NORMAL, ANOMALOUS, frames=6)
    figure = animation._fig
    left, right = figure.axes
    points = []
    for i in range(6):
        animation._func(i)
        point = right.lines[-1]
        points.append((point.get_xdata()[0], point.get_ydata()[0]))
        tau = left.lines[-1].get_xdata()[0]
        c = confusion(LABELS, SCORES, tau)
        assert points[-1] == (c.false_alarm_rate, c.recall)
        assert figure._suptitle.get_text() == threshold_summary(NORMAL, ANOMALOUS, tau)
    assert points == sorted(points)                 # both rates only grow as tau falls
    assert points[0][1] < 0.05 and points[-1] == (1.0, 1.0)


def test_sweep_renders_at_least_640_pixels_wide():
    figure = animate_threshold_sweep(NORMAL, ANOMALOUS, frames=2)._fig
    assert figure.get_size_inches()[0] * figure.dpi >= 640


def test_sweep_needs_at_least_two_frames():
    with pytest.raises(ValueError, match="frames must be an integer >= 2, got 1"):
        animate_threshold_sweep(NORMAL, ANOMALOUS, frames=1)


# -- images -------------------------------------------------------------------------------------

def test_ranked_images_show_the_lowest_scores_on_top_and_the_highest_below():
    images = torch.arange(10)[:, None].repeat(1, 16).double()       # image k is constant k
    scores = torch.tensor([5.0, 1.0, 9.0, 3.0, 7.0, 0.0, 8.0, 2.0, 6.0, 4.0])
    fig = plot_ranked_images(images, scores, n=3)
    top, bottom = fig.axes[:3], fig.axes[3:]
    assert [ax.get_title() for ax in top] == ["0.00", "1.00", "2.00"]
    assert [ax.get_title() for ax in bottom] == ["9.00", "8.00", "7.00"]
    assert [ax.images[0].get_array()[0, 0] for ax in top] == [5, 1, 7]   # which images
    assert [ax.images[0].get_array()[0, 0] for ax in bottom] == [2, 6, 4]


def test_ranked_images_must_be_square():
    with pytest.raises(ValueError, match="square images, got 10 pixels"):
        plot_ranked_images(torch.zeros(4, 10), torch.arange(4.0))


def test_completions_hide_exactly_the_unobserved_pixels():
    image = torch.arange(16.0)
    observed = (torch.arange(16) < 8).double()
    fills = torch.stack([torch.where(observed.bool(), image, torch.full((16,), v)) for v in (1.0, 2.0)])
    fig = plot_completions(image, observed, fills, vmax=15)
    assert [ax.get_title() for ax in fig.axes] == ["digit", "observed", "fill 1", "fill 2"]
    shown = fig.axes[1].images[0].get_array()
    np.testing.assert_array_equal(np.ma.getmaskarray(shown).ravel(), ~observed.bool().numpy())
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array().ravel(), fills[1].numpy())


# -- latent posteriors -------------------------------------------------------------------------

def test_posterior_panels_share_one_colour_scale_and_show_the_density():
    wide = lambda z: torch.distributions.MultivariateNormal(torch.zeros(2), 2 * torch.eye(2)).log_prob(z)
    narrow = lambda z: torch.distributions.MultivariateNormal(torch.zeros(2), 0.5 * torch.eye(2)).log_prob(z)
    fig = plot_posteriors({"wide": wide, "narrow": narrow}, (-3, 3), (-3, 3), resolution=31)
    meshes = [ax.collections[0] for ax in fig.axes[:2]]
    assert meshes[0].norm is meshes[1].norm
    assert meshes[0].norm.vmax == pytest.approx(1 / (2 * math.pi * 0.5), rel=1e-6)   # narrow peak
    assert meshes[0].get_array().max() == pytest.approx(1 / (2 * math.pi * 2), rel=1e-6)


def test_posterior_panels_on_a_log_scale_share_three_decades_below_the_highest_density():
    wide = lambda z: torch.distributions.MultivariateNormal(torch.zeros(2), 4 * torch.eye(2)).log_prob(z)
    narrow = lambda z: torch.distributions.MultivariateNormal(torch.zeros(2), 0.25 * torch.eye(2)).log_prob(z)
    fig = plot_posteriors({"wide": wide, "narrow": narrow}, (-3, 3), (-3, 3), resolution=31, log_scale=True)
    meshes = [ax.collections[0] for ax in fig.axes[:2]]
    assert meshes[0].norm is meshes[1].norm
    assert isinstance(meshes[0].norm, matplotlib.colors.LogNorm)
    top = 1 / (2 * math.pi * 0.25)
    assert (meshes[0].norm.vmin, meshes[0].norm.vmax) == pytest.approx((top / 1000, top), rel=1e-6)
    assert fig.axes[-1].get_ylabel() == "density (log scale)"


def test_posterior_panels_have_a_colour_bar_and_no_grid_lines_over_the_density():
    with plt.rc_context({"axes.grid": True}):          # the lectures' default
        fig = plot_posteriors({"a": lambda z: -0.5 * (z ** 2).sum(-1), "b": lambda z: -(z ** 2).sum(-1)},
                              (-3, 3), (-3, 3), resolution=11)
    panels = [ax for ax in fig.axes if ax.collections]
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colour_bars) == 1 and colour_bars[0].get_ylabel() == "density"
    for ax in panels[:2]:
        assert not any(line.get_visible() for line in ax.get_xgridlines() + ax.get_ygridlines())


# -- explorers ----------------------------------------------------------------------------------

def test_threshold_explorer_starts_at_five_percent_false_alarms():
    explorer = threshold_explorer(NORMAL, ANOMALOUS)
    tau = explorer.controls["threshold"].value
    assert confusion(LABELS, SCORES, tau).false_alarm_rate == pytest.approx(0.05, abs=0.01)
    assert explorer.figure._suptitle.get_text() == threshold_summary(NORMAL, ANOMALOUS, tau)
    assert explorer.png                                  # a first figure is drawn


def test_threshold_explorer_redraws_the_counts_when_the_slider_moves():
    explorer = threshold_explorer(NORMAL, ANOMALOUS)
    explorer.set(threshold=2.6)
    tau = explorer.controls["threshold"].value
    assert explorer.figure._suptitle.get_text() == threshold_summary(NORMAL, ANOMALOUS, tau)
    assert tau == pytest.approx(2.6, abs=explorer.controls["threshold"].step)


def test_with_no_rows_observed_the_posterior_is_the_prior_and_p_observed_is_one():
    torch.manual_seed(0)
    vae = VAE(16, 2, hidden=(8,))
    image = torch.randint(0, 17, (16,)).double()
    explorer = observed_rows_explorer(vae, image, rows=0, resolution=60, completions=2)
    titles = [ax.get_title() for ax in explorer.figure.axes]
    assert any(t.endswith("log p(observed) = -0.0") or t.endswith("log p(observed) = 0.0")
               for t in titles)


def test_observed_rows_explorer_keeps_the_observed_rows_in_every_completion():
    torch.manual_seed(1)
    vae = VAE(16, 2, hidden=(8,))
    image = torch.randint(0, 17, (16,)).double()
    explorer = observed_rows_explorer(vae, image, rows=3, resolution=40, completions=2)
    explorer.set(rows=2)                                 # rows of 4 pixels: 8 observed
    fills = [ax for ax in explorer.figure.axes if ax.get_title().startswith("fill")]
    assert len(fills) == 2
    for ax in fills:
        np.testing.assert_array_equal(ax.images[0].get_array().ravel()[:8], image[:8].numpy())

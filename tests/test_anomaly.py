"""Anomaly scores, the ROC curve and the rank-based AUROC, against scikit-learn and closed forms."""
import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn import metrics
from torch.distributions import Independent, Uniform

from course_lib.anomaly import anomaly_scores, auroc, confusion, roc_curve
from course_lib.flows import Affine
from course_lib.model import NormalizingFlow


def random_problem(seed, n=300, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = rng.normal(size=n) + 0.7 * labels
    if ties:
        scores = np.round(scores * 2) / 2  # few distinct values, many ties
    return labels, scores


# -- AUROC ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_auroc_matches_sklearn_on_random_scores(seed, ties):
    labels, scores = random_problem(seed, ties=ties)
    assert auroc(labels, scores) == pytest.approx(metrics.roc_auc_score(labels, scores), abs=1e-12)


def test_auroc_is_one_when_every_anomaly_scores_higher_and_zero_when_lower():
    labels = np.r_[np.zeros(50), np.ones(30)]
    scores = np.r_[np.linspace(0, 1, 50), np.linspace(1.5, 3, 30)]
    assert auroc(labels, scores) == 1.0
    assert auroc(labels, -scores) == 0.0


def test_auroc_is_one_half_for_identical_distributions_within_noise():
    rng = np.random.default_rng(1)
    n = 2000
    labels = np.r_[np.zeros(n), np.ones(n)]
    scores = rng.normal(size=2 * n)
    # standard error of the Mann-Whitney AUROC under no difference: sqrt((2n + 1) / (12 n^2))
    standard_error = math.sqrt((2 * n + 1) / (12 * n * n))
    assert abs(auroc(labels, scores) - 0.5) < 4 * standard_error


def test_auroc_counts_a_tie_as_one_half():
    assert auroc([0, 1], [2.0, 2.0]) == 0.5
    assert auroc([0, 0, 1], [1.0, 2.0, 2.0]) == 0.75


def test_auroc_accepts_torch_tensors():
    labels, scores = random_problem(0)
    assert auroc(torch.as_tensor(labels), torch.as_tensor(scores)) == auroc(labels, scores)


# -- ROC curve --------------------------------------------------------------------------------

@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_matches_sklearn_with_every_threshold_kept(ties):
    labels, scores = random_problem(2, ties=ties)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    fpr_ref, tpr_ref, thresholds_ref = metrics.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, fpr_ref, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, tpr_ref, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(thresholds, thresholds_ref)


def test_roc_curve_runs_from_nothing_flagged_to_everything_flagged():
    labels, scores = random_problem(3)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert (fpr[0], tpr[0], thresholds[0]) == (0.0, 0.0, np.inf)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()


@pytest.mark.parametrize("ties", [False, True])
def test_area_under_the_roc_curve_equals_the_rank_auroc(ties):
    labels, scores = random_problem(4, ties=ties)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(labels, scores), abs=1e-12)


def test_each_roc_point_is_the_confusion_at_its_threshold():
    labels, scores = random_problem(5, ties=True)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    for f, t, tau in zip(fpr[1:], tpr[1:], thresholds[1:]):
        counts = confusion(labels, scores, tau)
        assert counts.false_alarm_rate == pytest.approx(f, abs=1e-15)
        assert counts.recall == pytest.approx(t, abs=1e-15)


# -- confusion counts -------------------------------------------------------------------------

@pytest.mark.parametrize("threshold", [-0.5, 0.3, 1.2])
def test_confusion_counts_match_sklearn(threshold):
    labels, scores = random_problem(6)
    counts = confusion(labels, scores, threshold)
    flagged = (scores >= threshold).astype(int)
    tn, fp, fn, tp = metrics.confusion_matrix(labels, flagged, labels=[0, 1]).ravel()
    assert (counts.true_pos, counts.false_pos, counts.true_neg, counts.false_neg) == (tp, fp, tn, fn)
    assert counts.precision == pytest.approx(metrics.precision_score(labels, flagged), abs=1e-15)
    assert counts.recall == pytest.approx(metrics.recall_score(labels, flagged), abs=1e-15)


def test_precision_is_nan_when_nothing_is_flagged():
    labels, scores = random_problem(7)
    counts = confusion(labels, scores, scores.max() + 1)
    assert counts.true_pos + counts.false_pos == 0 and math.isnan(counts.precision)
    assert counts.recall == 0.0 and counts.false_alarm_rate == 0.0


# -- scores -----------------------------------------------------------------------------------

def test_anomaly_scores_are_the_negative_log_density():
    model = NormalizingFlow(2, [Affine(2, scale=torch.tensor([2.0, 0.5]), shift=1.0)])
    x = torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    expected = -stats.norm(1.0, [2.0, 0.5]).logpdf(x.numpy()).sum(1)
    np.testing.assert_allclose(anomaly_scores(model, x, batch_size=1000).numpy(), expected,
                               rtol=0, atol=1e-12)


def test_a_uniform_model_scores_log2_of_the_levels_in_bits_per_dimension():
    cube = Independent(Uniform(torch.zeros(4), torch.ones(4), validate_args=False), 1)
    model = NormalizingFlow(cube, [Affine(4)])
    pixels = torch.randint(0, 17, (10, 4), generator=torch.Generator().manual_seed(0))
    scores = anomaly_scores(model, pixels.double(), levels=17)
    torch.testing.assert_close(scores, torch.full((10,), math.log2(17)), rtol=0, atol=1e-12)


def test_bits_per_dimension_score_uses_the_centre_of_each_bin():
    model = NormalizingFlow(3, [Affine(3, scale=0.3, shift=0.5)])
    pixels = torch.tensor([[0.0, 8.0, 16.0]])
    centres = (pixels + 0.5) / 17
    nll = -stats.norm(0.5, 0.3).logpdf(centres.numpy()).sum()
    expected = (nll + 3 * math.log(17)) / (3 * math.log(2))
    assert anomaly_scores(model, pixels, levels=17).item() == pytest.approx(expected, abs=1e-12)


# -- bad inputs -------------------------------------------------------------------------------

def test_labels_other_than_zero_and_one_are_refused():
    with pytest.raises(ValueError, match="labels 0 .normal. and 1 .anomaly."):
        auroc([0, 1, 2], [0.1, 0.2, 0.3])


def test_one_score_per_label_is_required():
    with pytest.raises(ValueError, match="one label per score, got 3 labels and 2 scores"):
        roc_curve([0, 1, 1], [0.1, 0.2])


def test_both_classes_are_required():
    with pytest.raises(ValueError, match="both normal .0. and anomalous .1."):
        auroc([1, 1, 1], [0.1, 0.2, 0.3])


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="non-finite"):
        confusion([0, 1], [0.1, float("nan")], 0.0)


def test_non_integer_pixels_are_refused_when_levels_are_given():
    model = NormalizingFlow(2, [Affine(2)])
    with pytest.raises(ValueError, match="integer pixel values 0..16"):
        anomaly_scores(model, torch.tensor([[0.5, 3.0]]), levels=17)


def test_scores_need_a_batch():
    with pytest.raises(ValueError, match=r"shape \(n, ...\), got \(2,\)"):
        anomaly_scores(NormalizingFlow(2, [Affine(2)]), torch.zeros(2))

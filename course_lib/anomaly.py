"""Anomaly detection with a density: scores, thresholds and the ROC curve.

A model trained on normal data gives every input a score, its negative log-likelihood
``s(x) = -log p(x)``: the less probable, the more anomalous. An input is flagged when
``s(x) >= tau``. Anomalies are the positives (label 1), normal inputs the negatives (label 0):

* true positive rate (recall) ``TPR(tau) = P(s >= tau | anomaly)``,
* false positive rate (false alarms) ``FPR(tau) = P(s >= tau | normal)``.

The ROC curve traces ``(FPR, TPR)`` as ``tau`` falls from ``+inf`` to ``-inf``. The area under
it equals the probability that a random anomaly scores higher than a random normal input,
ties counting one half (the Mann-Whitney statistic):

    ``AUROC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0)``,

where ``R_1`` is the sum of the ranks of the anomalies' scores among all scores (tied scores
share their average rank). 1 separates perfectly, 0.5 is a coin toss.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .validation import CourseValueError, is_validating, positive_int

__all__ = ["anomaly_scores", "roc_curve", "auroc", "Confusion", "confusion"]


def anomaly_scores(model: torch.nn.Module, x: Tensor, levels: int | None = None,
                   batch_size: int = 1024) -> Tensor:
    """``-log p(x)`` per sample under ``model`` (anything with ``log_prob``), without gradients.

    With ``levels = L``, ``x`` holds integer pixels ``0..L-1`` and the model a density of
    ``v = (n + u) / L`` on the unit cube (trained on dequantized images, as in
    ``models.bits_per_dim``). Each pixel is then scored at the centre of its bin,
    ``u = 1/2``, and the score is in bits per dimension,
    ``(-log p(v) + D log L) / (D log 2)``, the same scale as ``bits_per_dim``.
    """
    if not isinstance(x, Tensor) or x.dim() < 2:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise CourseValueError(f"anomaly_scores: expected a batch of shape (n, ...), got {got}")
    batch_size = positive_int(batch_size, "batch_size", "anomaly_scores")
    if levels is not None:
        levels = positive_int(levels, "levels", "anomaly_scores", minimum=2)
        if is_validating() and bool(((x != x.round()) | (x < 0) | (x > levels - 1)).any()):
            raise CourseValueError(
                f"anomaly_scores: with levels={levels}, expected integer pixel values "
                f"0..{levels - 1}, got {x.min().item():g}..{x.max().item():g}")
        x = (x + 0.5) / levels
    if x.shape[0] == 0:   # nothing to score (torch.cat refuses an empty list)
        return torch.zeros(0, dtype=x.dtype if x.is_floating_point() else None, device=x.device)
    with torch.no_grad():
        nll = torch.cat([-model.log_prob(chunk) for chunk in x.split(batch_size)])
    if levels is None:
        return nll
    dims = x[0].numel()
    return (nll + dims * math.log(levels)) / (dims * math.log(2))


def _labels_and_scores(labels, scores, where: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels.detach() if isinstance(labels, Tensor) else labels).ravel()
    s = np.asarray(scores.detach() if isinstance(scores, Tensor) else scores, dtype=float).ravel()
    if y.shape != s.shape:
        raise CourseValueError(f"{where}: expected one label per score, got {y.size} labels and "
                         f"{s.size} scores")
    if not np.isin(y, (0, 1)).all():
        raise CourseValueError(f"{where}: expected labels 0 (normal) and 1 (anomaly), got values "
                         f"{sorted(set(np.unique(y).tolist()) - {0, 1})[:3]}")
    if not np.isfinite(s).all():
        raise CourseValueError(f"{where}: scores contain {(~np.isfinite(s)).sum()} non-finite "
                               "value(s)")
    if y.sum() == 0 or y.sum() == y.size:
        raise CourseValueError(f"{where}: needs both normal (0) and anomalous (1) examples, got "
                         f"{int(y.sum())} anomalies among {y.size}")
    return y.astype(int), s


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(FPR, TPR, thresholds)``: one point per distinct score, thresholds decreasing.

    The first threshold is ``+inf`` (nothing flagged, the point ``(0, 0)``); at the last,
    the smallest score, everything is flagged, ``(1, 1)``.
    """
    y, s = _labels_and_scores(labels, scores, "roc_curve")
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    # the last position of each run of equal scores: flagging at that threshold takes the whole run
    ends = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    true_pos = np.cumsum(y)[ends]
    false_pos = (ends + 1) - true_pos
    tpr = np.r_[0.0, true_pos / y.sum()]
    fpr = np.r_[0.0, false_pos / (y.size - y.sum())]
    return fpr, tpr, np.r_[np.inf, s[ends]]


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of the ranks they occupy."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[0, np.nonzero(np.diff(ordered))[0] + 1]
    counts = np.diff(np.r_[starts, ordered.size])
    mean_rank = starts + (counts + 1) / 2
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks


def auroc(labels, scores) -> float:
    """Area under the ROC curve from ranks: ``P(s_anomaly > s_normal) + P(tie) / 2``."""
    y, s = _labels_and_scores(labels, scores, "auroc")
    n_1, n_0 = int(y.sum()), int(y.size - y.sum())
    rank_sum = _average_ranks(s)[y == 1].sum()
    return float((rank_sum - n_1 * (n_1 + 1) / 2) / (n_1 * n_0))


class Confusion(NamedTuple):
    """Counts at one threshold; anomalies are the positives."""

    true_pos: int
    false_pos: int
    true_neg: int
    false_neg: int

    @property
    def precision(self) -> float:
        """Flagged inputs that are anomalies, ``TP / (TP + FP)`` (NaN when nothing is flagged)."""
        flagged = self.true_pos + self.false_pos
        return self.true_pos / flagged if flagged else math.nan

    @property
    def recall(self) -> float:
        """Anomalies that are flagged, ``TP / (TP + FN)``: the true positive rate."""
        return self.true_pos / (self.true_pos + self.false_neg)

    @property
    def false_alarm_rate(self) -> float:
        """Normal inputs that are flagged, ``FP / (FP + TN)``: the false positive rate."""
        return self.false_pos / (self.false_pos + self.true_neg)


def confusion(labels, scores, threshold: float) -> Confusion:
    """The confusion counts when every input with ``score >= threshold`` is flagged."""
    y, s = _labels_and_scores(labels, scores, "confusion")
    flagged = s >= threshold
    return Confusion(int((flagged & (y == 1)).sum()), int((flagged & (y == 0)).sum()),
                     int((~flagged & (y == 0)).sum()), int((~flagged & (y == 1)).sum()))

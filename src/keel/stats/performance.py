"""Live model performance once labels arrive: classification and regression metrics.

Definitions match scikit-learn's (tests check them to 1e-9); keel.stats may not import it, so
they are written here with NumPy and SciPy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

from keel.errors import InvalidInput

CALIBRATION_BINS = 10


def classification_metrics(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    y_score: npt.ArrayLike | None = None,
    *,
    positive: Any = None,
) -> dict[str, float]:
    """Accuracy, precision, recall and F1, plus ROC AUC, log loss and calibration error.

    Binary labels (at most two distinct values): precision/recall/F1 of the ``positive`` label
    (default: the greater label, e.g. 1 of {0, 1}, as scikit-learn's ``pos_label=1``). More
    labels: their macro averages over the labels in ``y_true`` or ``y_pred``. Zero divisions
    give 0.0 (scikit-learn's ``zero_division`` result).

    ``y_score`` is the predicted probability of the positive label (binary only); with it:

    * ``roc_auc``: the Mann-Whitney U statistic over (positive, negative) pairs, ties counting
      1/2 (``roc_auc_score``); NaN when ``y_true`` holds one class only;
    * ``log_loss``: mean cross-entropy with scores clipped to ``[eps, 1 - eps]`` (``log_loss``);
    * ``calibration_error``: expected calibration error over 10 equal-width bins of the score
      (Naeini, Cooper and Hauskrecht (2015), "Obtaining well calibrated probabilities using
      Bayesian binning"): ``sum_b n_b / n * |mean(y in b) - mean(score in b)|``, bins
      ``[0, 0.1], (0.1, 0.2], ..., (0.9, 1]`` as ``sklearn.calibration.calibration_curve``.

    >>> m = classification_metrics([0, 1, 1, 0, 1], [0, 1, 0, 0, 1], [0.2, 0.9, 0.4, 0.3, 0.8])
    >>> m["accuracy"], m["precision"], round(m["recall"], 4), m["roc_auc"]
    (0.8, 1.0, 0.6667, 1.0)
    """
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    if truth.ndim != 1 or truth.shape != pred.shape:
        raise InvalidInput("y_true and y_pred must be 1-D arrays of the same length")
    if truth.size == 0:
        raise InvalidInput("no labelled predictions: performance needs at least one row")
    labels = np.unique(np.concatenate([truth, pred]))
    out: dict[str, float] = {"count": float(truth.size), "accuracy": float(np.mean(truth == pred))}
    if labels.size <= 2:
        pos = labels[-1] if positive is None else positive
        precision, recall, f1 = _prf(truth == pos, pred == pos)
    else:
        scores = np.array([_prf(truth == label, pred == label) for label in labels])
        precision, recall, f1 = (float(v) for v in scores.mean(axis=0))
    out.update(precision=precision, recall=recall, f1=f1)
    if y_score is not None:
        if labels.size > 2:
            raise InvalidInput("y_score (positive-class probability) needs binary labels")
        score = np.asarray(y_score, dtype=np.float64)
        if score.shape != truth.shape or not np.all(np.isfinite(score)):
            raise InvalidInput("y_score must hold one finite probability per row")
        pos = labels[-1] if positive is None else positive
        actual = (truth == pos).astype(np.float64)
        out["roc_auc"] = roc_auc(actual, score)
        out["log_loss"] = log_loss(actual, score)
        out["calibration_error"] = calibration_error(actual, score)
    return out


def _prf(
    actual: npt.NDArray[np.bool_], predicted: npt.NDArray[np.bool_]
) -> tuple[float, float, float]:
    tp = float(np.count_nonzero(actual & predicted))
    fp = float(np.count_nonzero(~actual & predicted))
    fn = float(np.count_nonzero(actual & ~predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return precision, recall, f1


def roc_auc(actual: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties 1/2.

    Hanley and McNeil (1982), via the rank-sum (Mann-Whitney U) identity; NaN with one class.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = np.asarray(actual, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    n_pos = float(np.count_nonzero(y == 1))
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(s)  # average ranks for ties
    u = float(ranks[y == 1].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def log_loss(actual: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Mean binary cross-entropy (natural log), scores clipped to ``[eps, 1 - eps]``.

    >>> round(log_loss([1, 0], [0.9, 0.2]), 6)
    0.164252
    """
    y = np.asarray(actual, dtype=np.float64)
    p = np.asarray(score, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    q = np.clip(1 - p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(q)))


def calibration_error(actual: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Expected calibration error over 10 equal-width score bins (see classification_metrics).

    >>> round(calibration_error([0, 1, 1, 1], [0.05, 0.95, 0.65, 0.55]), 6)  # (.05+.05+.35+.45)/4
    0.225
    """
    y = np.asarray(actual, dtype=np.float64)
    p = np.asarray(score, dtype=np.float64)
    if np.any(p < 0) or np.any(p > 1):
        raise InvalidInput("y_score must hold probabilities between 0 and 1")
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.searchsorted(edges[1:-1], p)  # [0, .1], (.1, .2], ... as calibration_curve
    hits = np.bincount(bins, weights=y, minlength=CALIBRATION_BINS)
    confidence = np.bincount(bins, weights=p, minlength=CALIBRATION_BINS)
    return float(np.sum(np.abs(hits - confidence)) / y.size)


def regression_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    """MAE, RMSE, MAPE (a fraction, not percent, as scikit-learn's) and R².

    Rows where either value is NaN are left out. MAPE divides by ``max(|y|, eps)``; R² is 1.0
    for a perfect fit of a constant target and 0.0 for an imperfect one (scikit-learn's
    ``force_finite``).

    >>> m = regression_metrics([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0])
    >>> m["mae"], round(m["rmse"], 6), round(m["r2"], 6)
    (0.5, 0.612372, 0.948608)
    """
    truth = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if truth.ndim != 1 or truth.shape != pred.shape:
        raise InvalidInput("y_true and y_pred must be 1-D arrays of the same length")
    keep = ~(np.isnan(truth) | np.isnan(pred))
    truth, pred = truth[keep], pred[keep]
    if truth.size == 0:
        raise InvalidInput("no labelled predictions: performance needs at least one row")
    error = pred - truth
    ss_res = float(np.dot(error, error))
    deviation = truth - truth.mean()
    ss_tot = float(np.dot(deviation, deviation))
    perfect = 1.0 if ss_res == 0 else 0.0  # a constant target: sklearn's force_finite
    r2 = 1.0 - ss_res / ss_tot if ss_tot != 0 else perfect
    eps = np.finfo(np.float64).eps
    return {
        "count": float(truth.size),
        "mae": float(np.mean(np.abs(error))),
        "rmse": math.sqrt(ss_res / truth.size),
        "mape": float(np.mean(np.abs(error) / np.maximum(np.abs(truth), eps))),
        "r2": r2,
    }

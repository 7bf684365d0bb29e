"""Confidence-based performance estimation (CBPE): classification metrics without labels.

A calibrated score is the probability that a row's label is the class it scores, so every cell
of the confusion matrix has an expected value over a window of scored predictions; accuracy,
precision, recall, F1 and ROC AUC follow from those expectations. This is NannyML's CBPE
(nannyml.org, "Estimating performance for classification"); the code here is our own, over NumPy
and SciPy only, so `keel.stats` stays free of pandas and scikit-learn.

Binary: ``scores`` is the probability of the positive class (the greater label unless given).
Multiclass: ``scores`` is an ``(n, k)`` matrix whose columns follow ``classes``, which may be
strings (NannyML issue #346): each class is calibrated one-vs-rest and rows are renormalised; the
precision, recall, F1 and ROC AUC are macro averages (one-vs-rest), as in
`keel.stats.performance.classification_metrics`.

The sampling error of a window is the standard deviation its realized value would have if the
labels were drawn from the calibrated probabilities (exact for accuracy and precision, the delta
method for recall and F1, Hanley and McNeil (1982) for ROC AUC on the expected class counts).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> score = rng.uniform(size=2000)
>>> labels = (rng.uniform(size=2000) < score).astype(int)
>>> fitted = fit_cbpe(labels, score)
>>> result = estimate_cbpe(fitted, (score > 0.5).astype(int), score)
>>> round(result.estimates["accuracy"].value, 2)
0.75
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput
from keel.stats.estimation.calibration import IsotonicCalibration, fit_calibration
from keel.stats.estimation.estimate import AssumptionFlags, Estimate, EstimationResult

CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
Floats = npt.NDArray[np.float64]


def check_metrics(metrics: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """``metrics`` if every name is one of ``known``; else a clear error naming the fix."""
    unknown = [m for m in metrics if m not in known]
    if unknown or not metrics:
        raise InvalidInput(
            f"The 'metrics' must be names from {', '.join(known)}. Got "
            f"{', '.join(map(repr, unknown)) or 'none'} instead.",
            {"field": "metrics", "unknown": unknown, "choices": list(known)},
        )
    return tuple(metrics)


@dataclass(frozen=True)
class CBPEReference:
    """What CBPE learned from the reference: classes, per-class calibration, score ranges."""

    classes: tuple[Any, ...]
    calibrations: tuple[IsotonicCalibration, ...]
    calibrated: tuple[bool, ...]
    score_min: tuple[float, ...]
    score_max: tuple[float, ...]

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2 and len(self.calibrations) == 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "cbpe",
            "classes": list(self.classes),
            "calibrations": [c.to_dict() for c in self.calibrations],
            "calibrated": list(self.calibrated),
            "score_min": list(self.score_min),
            "score_max": list(self.score_max),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CBPEReference:
        return cls(
            classes=tuple(data["classes"]),
            calibrations=tuple(IsotonicCalibration.from_dict(c) for c in data["calibrations"]),
            calibrated=tuple(bool(v) for v in data["calibrated"]),
            score_min=tuple(float(v) for v in data["score_min"]),
            score_max=tuple(float(v) for v in data["score_max"]),
        )

    def probabilities(self, scores: Floats) -> Floats:
        """Calibrated probabilities: a vector (binary, of the positive class) or a matrix."""
        if self.binary:
            return np.clip(self.calibrations[0].apply(scores), 0.0, 1.0)
        p = np.column_stack([c.apply(scores[:, j]) for j, c in enumerate(self.calibrations)])
        total = p.sum(axis=1, keepdims=True)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])


def _scores(scores: npt.ArrayLike, columns: int | None) -> Floats:
    s = np.asarray(scores, dtype=np.float64)
    want = 1 if columns is None else 2
    if s.ndim != want or (columns is not None and s.shape[1] != columns):
        shape = "one score per row" if columns is None else f"a column per class ({columns})"
        raise InvalidInput(f"The 'scores' must hold {shape}. Got shape {s.shape}.")
    if s.size == 0:
        raise InvalidInput("No scores: estimation needs the scores the model logged.")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(s > 1):
        raise InvalidInput("The 'scores' must be probabilities between 0 and 1, with no gaps.")
    return s


def _class_index(values: npt.ArrayLike, classes: Sequence[Any], what: str) -> npt.NDArray[np.intp]:
    array = np.asarray(values)
    known = np.asarray(classes)
    order = np.argsort(known, kind="stable")
    try:
        at = np.clip(np.searchsorted(known, array, sorter=order), 0, known.size - 1)
        found = order[at]
        hit = known[found] == array
    except TypeError:  # labels of another type than the classes (text against numbers)
        hit, found = np.zeros(array.shape, dtype=bool), np.zeros(array.shape, dtype=np.intp)
    if not np.all(hit):
        first = array[~hit][0]
        missing = first.item() if hasattr(first, "item") else first
        raise InvalidInput(
            f"The {what} hold {missing!r}, which is not one of the classes "
            f"{list(classes)!r}; send scores and labels over the same classes.",
            {"field": what, "classes": [str(c) for c in classes]},
        )
    return np.asarray(found, dtype=np.intp)


def fit_cbpe(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    classes: Sequence[Any] | None = None,
    seed: int = 0,
) -> CBPEReference:
    """Learn CBPE's calibration from reference labels and scores.

    Binary: ``scores`` is 1-D, ``classes`` is ``(negative, positive)`` (default: the sorted
    distinct labels, which must be two). Multiclass: ``scores`` is 2-D and ``classes`` names its
    columns.
    """
    truth = np.asarray(y_true)
    if classes is None:
        classes = [v.item() if hasattr(v, "item") else v for v in np.unique(truth)]
    classes = tuple(classes)
    multiclass = np.asarray(scores).ndim == 2
    if len(classes) < 2:
        raise InvalidInput(
            "The reference labels hold one class only; CBPE needs labelled rows of every class.",
            {"field": "labels", "classes": list(classes)},
        )
    s = _scores(scores, len(classes) if multiclass else None)
    if truth.shape[0] != s.shape[0]:
        raise InvalidInput("The reference needs one label per scored row.")
    index = _class_index(truth, classes, "labels")
    if not multiclass:
        if len(classes) != 2:
            raise InvalidInput(
                f"Binary CBPE needs two classes; got {len(classes)}. Send a score per class "
                "for multiclass models.",
                {"field": "scores"},
            )
        columns = [s]
        actual = [(index == 1).astype(np.float64)]
    else:
        columns = [s[:, j] for j in range(len(classes))]
        actual = [(index == j).astype(np.float64) for j in range(len(classes))]
    missing = [classes[j] for j, a in enumerate(actual) if not a.any()] if multiclass else []
    if (not multiclass and actual[0].min() == actual[0].max()) or missing:
        raise InvalidInput(
            "The reference labels miss a class; CBPE needs labelled rows of every class.",
            {"field": "labels", "missing": [str(m) for m in missing]},
        )
    fitted = [
        fit_calibration(col, act, seed=seed) for col, act in zip(columns, actual, strict=True)
    ]
    return CBPEReference(
        classes=classes,
        calibrations=tuple(c for c, _ in fitted),
        calibrated=tuple(ok for _, ok in fitted),
        score_min=tuple(float(col.min()) for col in columns),
        score_max=tuple(float(col.max()) for col in columns),
    )


def estimate_cbpe(
    reference: CBPEReference,
    y_pred: npt.ArrayLike,
    scores: npt.ArrayLike,
    metrics: Sequence[str] = CBPE_METRICS,
) -> EstimationResult:
    """Estimate ``metrics`` over one window of predictions and their scores."""
    wanted = check_metrics(metrics, CBPE_METRICS)
    s = _scores(scores, None if reference.binary else len(reference.classes))
    predicted = _class_index(y_pred, reference.classes, "predictions")
    if predicted.size != s.shape[0]:
        raise InvalidInput("The window needs one score per prediction.")
    p = reference.probabilities(s)
    if reference.binary:
        found = _binary(p, s, predicted == 1, wanted)
        outside = (s < reference.score_min[0]) | (s > reference.score_max[0])
    else:
        found = _multiclass(p, s, predicted, wanted)
        low = np.asarray(reference.score_min)
        high = np.asarray(reference.score_max)
        outside = np.any((s < low) | (s > high), axis=1)
    flags = AssumptionFlags(
        calibration_not_improved=not all(reference.calibrated),
        outside_support_share=float(np.mean(outside)),
        window_too_small=not all(e.useful for e in found.values()),
    )
    return EstimationResult(int(predicted.size), found, flags)


def _binary(
    p: Floats, score: Floats, positive: npt.NDArray[np.bool_], wanted: Sequence[str]
) -> dict[str, Estimate]:
    n = float(p.size)
    correct = np.where(positive, p, 1.0 - p)  # P(prediction is right), per row
    out: dict[str, Estimate] = {}
    stats = _class_stats(p, positive)
    if "accuracy" in wanted:
        acc = float(correct.mean())
        se = math.sqrt(float(np.sum(correct * (1 - correct)))) / n
        out["accuracy"] = Estimate.banded("accuracy", acc, se, bounded=True)
    for name in ("precision", "recall", "f1"):
        if name in wanted:
            value, se = stats[name]
            out[name] = Estimate.banded(name, value, se, bounded=True)
    if "roc_auc" in wanted:
        auc, se = _roc_auc(p, score)
        out["roc_auc"] = Estimate.banded("roc_auc", auc, se, bounded=True)
    return out


def _class_stats(p: Floats, predicted: npt.NDArray[np.bool_]) -> dict[str, tuple[float, float]]:
    """Expected precision, recall and F1 of one (one-vs-rest) class, with standard errors.

    A = labelled positives among the predicted positives, B = among the predicted negatives;
    each a sum of independent Bernoulli(p) draws.
    """
    variance = p * (1 - p)
    n_pp = float(np.count_nonzero(predicted))
    a, b = float(p[predicted].sum()), float(p[~predicted].sum())
    va, vb = float(variance[predicted].sum()), float(variance[~predicted].sum())
    precision = a / n_pp if n_pp else 0.0
    precision_se = math.sqrt(va) / n_pp if n_pp else math.inf
    positives = a + b
    recall = a / positives if positives else 0.0
    recall_se = math.sqrt(b * b * va + a * a * vb) / positives**2 if positives else math.inf
    d = n_pp + positives  # 2TP + FP + FN
    f1 = 2 * a / d if d else 0.0
    f1_se = math.sqrt(4 * (n_pp + b) ** 2 * va + 4 * a * a * vb) / d**2 if d else math.inf
    return {
        "precision": (precision, precision_se),
        "recall": (recall, recall_se),
        "f1": (f1, f1_se),
    }


def _roc_auc(p: Floats, score: Floats) -> tuple[float, float]:
    """The expected ROC curve (rows ranked by the model's score, each counting ``p`` of a
    positive and ``1 - p`` of a negative), its area, and the Hanley-McNeil standard error."""
    order = np.argsort(-score, kind="stable")
    s, q = score[order], p[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last row of each tied score
    tps = np.r_[0.0, np.cumsum(q)[ends]]
    fps = np.r_[0.0, np.cumsum(1.0 - q)[ends]]
    n1, n2 = tps[-1], fps[-1]
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.inf
    auc = float(np.trapezoid(tps / n1, fps / n2))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2)) / (n1 * n2)
    return auc, math.sqrt(max(var, 0.0))


def _multiclass(
    p: Floats, score: Floats, predicted: npt.NDArray[np.intp], wanted: Sequence[str]
) -> dict[str, Estimate]:
    n, k = p.shape
    correct = p[np.arange(n), predicted]
    out: dict[str, Estimate] = {}
    if "accuracy" in wanted:
        se = math.sqrt(float(np.sum(correct * (1 - correct)))) / n
        out["accuracy"] = Estimate.banded("accuracy", float(correct.mean()), se, bounded=True)
    per_class = [_class_stats(p[:, j], predicted == j) for j in range(k)]
    for name in ("precision", "recall", "f1"):
        if name in wanted:
            values = [c[name] for c in per_class]
            mean = float(np.mean([v for v, _ in values]))
            se = math.sqrt(sum(e * e for _, e in values)) / k
            out[name] = Estimate.banded(name, mean, se, bounded=True)
    if "roc_auc" in wanted:
        aucs = [_roc_auc(p[:, j], score[:, j]) for j in range(k)]
        mean = float(np.mean([a for a, _ in aucs]))
        se = math.sqrt(sum(e * e for _, e in aucs)) / k
        out["roc_auc"] = Estimate.banded("roc_auc", mean, se, bounded=True)
    return out

"""Fairness in production: per-group rates of a protected attribute and their disparities.

Definitions match fairlearn's (tests check them to 1e-9): selection rate, true and false
positive rates per group, ``demographic_parity_difference`` (max - min selection rate),
``demographic_parity_ratio`` (min / max selection rate, the "disparate impact ratio" of the
four-fifths rule, EEOC 1978) and ``equalized_odds_difference`` (the larger of the TPR and the
FPR max - min differences; Hardt, Price and Srebro (2016), "Equality of opportunity in
supervised learning"). keel.stats may not import fairlearn, so they are written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput

MISSING_GROUP = "(missing)"


@dataclass(frozen=True)
class GroupRates:
    group: str
    count: int
    selection_rate: float
    tpr: float  # NaN without labels or without actual positives in the group
    fpr: float  # NaN without labels or without actual negatives in the group
    too_small: bool  # fewer than min_group_size rows: shown, left out of the disparities


@dataclass(frozen=True)
class GroupFairness:
    """Per-group rates and the disparities between the groups large enough to judge."""

    groups: tuple[GroupRates, ...]
    demographic_parity_difference: float
    disparate_impact_ratio: float
    equalized_odds_difference: float | None  # None without labels


def group_fairness(
    y_pred: npt.ArrayLike,
    groups: npt.ArrayLike,
    y_true: npt.ArrayLike | None = None,
    *,
    min_group_size: int = 30,
    positive: Any = 1,
) -> GroupFairness:
    """Selection rate (and TPR/FPR with labels) per group, and the disparities between groups.

    Groups with fewer than ``min_group_size`` rows are reported with ``too_small=True`` and left
    out of the disparities (a rate over a handful of rows says little). Null group values form
    the group ``"(missing)"``. Disparities are NaN when fewer than one group is large enough.

    >>> pred = np.array([1, 1, 0, 0] * 10 + [1, 0, 0, 0] * 10)
    >>> sex = np.array(["f"] * 40 + ["m"] * 40)
    >>> result = group_fairness(pred, sex)
    >>> [(g.group, g.selection_rate) for g in result.groups]
    [('f', 0.5), ('m', 0.25)]
    >>> result.demographic_parity_difference, result.disparate_impact_ratio
    (0.25, 0.5)
    """
    pred = np.asarray(y_pred)
    group_values = np.asarray(groups, dtype=object)
    if pred.ndim != 1 or pred.shape != group_values.shape:
        raise InvalidInput("y_pred and groups must be 1-D arrays of the same length")
    if pred.size == 0:
        raise InvalidInput("no predictions: fairness needs at least one row")
    names = np.array(
        [MISSING_GROUP if g is None or g != g else str(g) for g in group_values.tolist()],
        dtype=object,
    )
    labels, codes = np.unique(names, return_inverse=True)
    k = labels.size
    selected = (pred == positive).astype(np.float64)
    count = np.bincount(codes, minlength=k)
    selection = np.bincount(codes, weights=selected, minlength=k) / count
    tpr = np.full(k, math.nan)
    fpr = np.full(k, math.nan)
    if y_true is not None:
        truth = np.asarray(y_true)
        if truth.shape != pred.shape:
            raise InvalidInput("y_true must have one label per prediction")
        actual = (truth == positive).astype(np.float64)
        positives = np.bincount(codes, weights=actual, minlength=k)
        negatives = count - positives
        hits = np.bincount(codes, weights=actual * selected, minlength=k)
        false_alarms = np.bincount(codes, weights=(1 - actual) * selected, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = np.where(positives > 0, hits / positives, math.nan)
            fpr = np.where(negatives > 0, false_alarms / negatives, math.nan)
    small = count < min_group_size
    rates = tuple(
        GroupRates(
            str(labels[i]),
            int(count[i]),
            float(selection[i]),
            float(tpr[i]),
            float(fpr[i]),
            bool(small[i]),
        )
        for i in range(k)
    )
    judged = ~small
    if not judged.any():
        return GroupFairness(rates, math.nan, math.nan, None if y_true is None else math.nan)
    sel = selection[judged]
    dpd = float(sel.max() - sel.min())
    dir_ = float(sel.min() / sel.max()) if sel.max() > 0 else math.nan
    eod: float | None = None
    if y_true is not None:
        eod = float(max(_spread(tpr[judged]), _spread(fpr[judged])))
    return GroupFairness(rates, dpd, dir_, eod)


def _spread(values: npt.NDArray[np.float64]) -> float:
    known = values[~np.isnan(values)]
    return float(known.max() - known.min()) if known.size else math.nan

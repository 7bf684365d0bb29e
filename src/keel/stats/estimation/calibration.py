"""Isotonic calibration of classifier scores, kept as numbers, and the check that it helps.

Confidence-based performance estimation (CBPE) reads a calibrated score as the probability that
the row is positive. Scores are calibrated with isotonic regression fitted on reference data, but
only where a cross-validated check shows calibration lowers the expected calibration error (ECE):
isotonic regression over-fits small or already calibrated references (NannyML's CBPE documents
the same check).

The fitted map is stored as its knots (score thresholds and calibrated values) and applied by
linear interpolation, clipped at both ends, as scikit-learn's
``IsotonicRegression(out_of_bounds="clip")``: a stored calibration is plain numbers, never
pickled code.

>>> cal = fit_isotonic([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
>>> cal.apply([0.1, 0.25, 0.4]).round(3).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression  # type: ignore[import-untyped]

from keel.errors import InvalidInput
from keel.stats.performance import calibration_error

CV_FOLDS = 3
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class IsotonicCalibration:
    """A monotone map from score to probability: knots ``x`` (increasing) and values ``y``.

    An identity calibration (``x = y = (0, 1)``) stands for "scores used as they are".
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, score: npt.ArrayLike) -> Floats:
        return np.interp(np.asarray(score, dtype=np.float64), self.x, self.y)

    @property
    def identity(self) -> bool:
        return self.x == (0.0, 1.0) and self.y == (0.0, 1.0)

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IsotonicCalibration:
        x = tuple(float(v) for v in data["x"])
        y = tuple(float(v) for v in data["y"])
        if len(x) != len(y) or not x or any(b < a for a, b in pairwise(x)):
            raise InvalidInput("A stored calibration needs as many increasing x as y values.")
        return cls(x, y)


IDENTITY = IsotonicCalibration((0.0, 1.0), (0.0, 1.0))


def fit_isotonic(score: npt.ArrayLike, actual: npt.ArrayLike) -> IsotonicCalibration:
    """The isotonic (pool-adjacent-violators, `scipy.optimize.isotonic_regression`) map of
    ``score`` to the 0/1 outcome ``actual``, compressed to the ends of each constant block."""
    s = np.asarray(score, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if s.size == 0 or s.shape != a.shape:
        raise InvalidInput("Calibration needs one score per labelled row, and at least one row.")
    unique, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=a) / counts
    fitted = np.asarray(isotonic_regression(means, weights=counts).x, dtype=np.float64)
    if unique.size == 1:
        return IsotonicCalibration((float(unique[0]),), (float(fitted[0]),))
    # Keep the first and last knot of every constant block: the same map, far fewer numbers.
    change = np.flatnonzero(np.diff(fitted) != 0)
    keep = np.unique(np.concatenate([[0, unique.size - 1], change, change + 1]))
    return IsotonicCalibration(
        tuple(float(v) for v in unique[keep]), tuple(float(v) for v in fitted[keep])
    )


def calibration_improves(
    score: npt.ArrayLike, actual: npt.ArrayLike, *, folds: int = CV_FOLDS, seed: int = 0
) -> tuple[bool, float, float]:
    """Whether isotonic calibration lowers the expected calibration error out of sample.

    ``folds``-fold cross-validation: fit on the other folds, measure ECE (10 equal-width bins)
    on the held-out fold, with and without calibration. Returns ``(improves, ece_raw,
    ece_calibrated)``, the ECEs averaged over folds.
    """
    s = np.asarray(score, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if s.size < 2 * folds:
        return False, float(calibration_error(a, s)), float("nan")
    order = np.random.default_rng(seed).permutation(s.size)
    raw: list[float] = []
    calibrated: list[float] = []
    for held in np.array_split(order, folds):
        train = np.setdiff1d(order, held, assume_unique=True)
        cal = fit_isotonic(s[train], a[train])
        raw.append(calibration_error(a[held], s[held]))
        calibrated.append(calibration_error(a[held], cal.apply(s[held])))
    ece_raw, ece_cal = float(np.mean(raw)), float(np.mean(calibrated))
    return ece_cal < ece_raw, ece_raw, ece_cal


def fit_calibration(
    score: npt.ArrayLike, actual: npt.ArrayLike, *, seed: int = 0
) -> tuple[IsotonicCalibration, bool]:
    """The calibration to use and whether it is fitted (False: the identity, because the
    cross-validated check found no improvement)."""
    improves, _, _ = calibration_improves(score, actual, seed=seed)
    if not improves:
        return IDENTITY, False
    return fit_isotonic(score, actual), True


def calibrations_to_dict(calibrations: Sequence[IsotonicCalibration]) -> list[dict[str, Any]]:
    return [c.to_dict() for c in calibrations]

"""Realized value of a window: per-prediction values from labels, and the window's total.

Only some predictions are labelled. The window's value is estimated as ``N * mean(v)``: the
mean value of a labelled prediction times the number of predictions ``N``, with the analytic
95% interval of a mean (central limit theorem, ``z = 1.959964``). The labelled rows are taken as
a random sample of the window's predictions; when labels arrive selectively (say, only for
refused loans) the estimate inherits that bias, and the report says how many rows were labelled.

Reference: any text on the sampling distribution of a mean, e.g. Wasserman, *All of
Statistics* (2004), section 6.3.2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Z95 = 1.959963984540054


@dataclass(frozen=True)
class ValueEstimate:
    """A window's value with its 95% interval; ``labelled`` of ``predictions`` were priced."""

    value: float
    low: float
    high: float
    predictions: int
    labelled: int
    # Predictions of versions with no label yet: counted, but priced at nothing.
    unpriced: int = 0

    def plus(self, other: ValueEstimate) -> ValueEstimate:
        """The value of two independent windows or versions together (variances add)."""
        half = math.hypot(self.value - self.low, other.value - other.low)
        value = self.value + other.value
        return ValueEstimate(
            value,
            value - half,
            value + half,
            self.predictions + other.predictions,
            self.labelled + other.labelled,
            self.unpriced + other.unpriced,
        )


def matrix_values(
    prediction: npt.ArrayLike,
    label: npt.ArrayLike,
    tp: float,
    fp: float,
    tn: float,
    fn: float,
) -> npt.NDArray[np.float64]:
    """The value of each labelled classification, from the value matrix (positive class: 1).

    >>> matrix_values([1, 1, 0, 0], [1, 0, 0, 1], tp=10, fp=-2, tn=0, fn=-5).tolist()
    [10.0, -2.0, 0.0, -5.0]
    """
    predicted = np.asarray(prediction, dtype=np.float64) == 1
    actual = np.asarray(label, dtype=np.float64) == 1
    return np.where(predicted, np.where(actual, tp, fp), np.where(actual, fn, tn)).astype(
        np.float64
    )


def error_values(
    prediction: npt.ArrayLike, label: npt.ArrayLike, per_prediction: float, per_unit_error: float
) -> npt.NDArray[np.float64]:
    """The value of each labelled regression: ``per_prediction - per_unit_error * |error|``.

    >>> error_values([10.0, 12.0], [10.0, 9.0], per_prediction=5.0, per_unit_error=0.5).tolist()
    [5.0, 3.5]
    """
    error = np.abs(np.asarray(prediction, dtype=np.float64) - np.asarray(label, dtype=np.float64))
    return per_prediction - per_unit_error * error


def window_value(values: npt.ArrayLike, predictions: int) -> ValueEstimate:
    """``predictions * mean(values)`` with its 95% interval (see the module's docstring).

    With no labelled row there is nothing to price: the value and interval are NaN. With one,
    the interval is the estimate itself (no spread can be measured).

    >>> e = window_value([10.0, -2.0, 0.0, 10.0], predictions=100)
    >>> e.value, round(e.low, 1), round(e.high, 1)
    (450.0, -177.5, 1077.5)
    """
    data = np.asarray(values, dtype=np.float64)
    lows, centres, highs = interval_of_totals(data[np.newaxis, :], predictions)
    return ValueEstimate(
        float(centres[0]), float(lows[0]), float(highs[0]), predictions, int(data.size)
    )


def interval_of_totals(
    values: npt.NDArray[np.float64], predictions: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Vectorised `window_value` over the rows of a 2-D array: (lows, estimates, highs)."""
    n = values.shape[1]
    if n == 0:
        nan = np.full(values.shape[0], np.nan)
        return nan, nan, nan
    mean = values.mean(axis=1)
    spread = values.std(axis=1, ddof=1) if n > 1 else np.zeros(values.shape[0])
    half = Z95 * spread / math.sqrt(n) * predictions
    centre = mean * predictions
    return centre - half, centre, centre + half

"""Direct loss estimation (DLE): a regressor's MAE and RMSE over a window without labels.

A second model, fitted on the reference, predicts each row's absolute error and squared error
from its features and prediction (that model lives in `keel.services.estimation`); the window's
MAE is the mean predicted absolute error and its RMSE the root of the mean predicted squared
error. This is NannyML's DLE ("Estimating performance for regression"); the arithmetic is ours.

The sampling error is the reference's spread of the per-row error divided by the square root of
the window's rows (for RMSE through the delta method: ``sd(e^2) / (2 RMSE sqrt(n))``).

>>> reference = DLEReference(abs_error_sd=1.0, squared_error_sd=2.0)
>>> result = estimate_dle(reference, [1.0, 2.0, 3.0] * 100, [1.0, 4.0, 9.0] * 100)
>>> result.estimates["mae"].value, round(result.estimates["rmse"].value, 4)
(2.0, 2.1602)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from keel.errors import InvalidInput
from keel.stats.estimation.cbpe import check_metrics
from keel.stats.estimation.estimate import AssumptionFlags, Estimate, EstimationResult

DLE_METRICS = ("mae", "rmse")


@dataclass(frozen=True)
class DLEReference:
    """The reference's spread of per-row absolute and squared errors."""

    abs_error_sd: float
    squared_error_sd: float


def estimate_dle(
    reference: DLEReference,
    predicted_abs_error: npt.ArrayLike,
    predicted_squared_error: npt.ArrayLike,
    metrics: Sequence[str] = DLE_METRICS,
    *,
    outside_support_share: float = 0.0,
) -> EstimationResult:
    """Estimate ``metrics`` from the error model's per-row predictions over one window."""
    wanted = check_metrics(metrics, DLE_METRICS)
    absolute = np.clip(np.asarray(predicted_abs_error, dtype=np.float64), 0.0, None)
    squared = np.clip(np.asarray(predicted_squared_error, dtype=np.float64), 0.0, None)
    if absolute.size == 0 or absolute.shape != squared.shape:
        raise InvalidInput("No predictions in the window: estimation needs at least one row.")
    n = absolute.size
    found: dict[str, Estimate] = {}
    if "mae" in wanted:
        mae = float(absolute.mean())
        se = reference.abs_error_sd / math.sqrt(n)
        found["mae"] = Estimate.banded("mae", mae, se, bounded=False)
    if "rmse" in wanted:
        rmse = math.sqrt(float(squared.mean()))
        se = reference.squared_error_sd / (2 * max(rmse, 1e-12) * math.sqrt(n))
        found["rmse"] = Estimate.banded("rmse", rmse, se, bounded=False)
    flags = AssumptionFlags(
        calibration_not_improved=False,
        outside_support_share=float(outside_support_share),
        window_too_small=not all(e.useful for e in found.values()),
    )
    return EstimationResult(n, found, flags)

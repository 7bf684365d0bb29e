"""A model version's label-free performance estimator: its reference, fit state and method.

CBPE estimates a classifier's metrics from its scores; DLE a regressor's errors from its
features. The estimator is fitted by a job once the estimation reference is set, and the
``estimated_performance`` monitor check reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class EstimatorState(StrEnum):
    QUEUED = "queued"
    FITTED = "fitted"
    FAILED = "failed"


class EstimationMethod(StrEnum):
    CBPE = "cbpe"  # classifiers: confidence-based performance estimation
    DLE = "dle"  # regressors: direct loss estimation


@dataclass(frozen=True)
class Estimator:
    """What a version's estimator is (its fitted numbers stay in the store)."""

    model: str
    version: int
    state: EstimatorState
    method: EstimationMethod
    reference_rows: int
    set_by: str
    set_at: datetime
    job_id: int | None = None
    fitted_at: datetime | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None  # e.g. classes, calibrated, calibration errors

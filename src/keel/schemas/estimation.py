"""Wire models for label-free performance estimation (CBPE, DLE)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keel.domain.estimation import EstimationMethod, EstimatorState
from keel.schemas.base import WireOut


class EstimatorOut(WireOut):
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
    summary: dict[str, Any] | None = None


class MetricEstimateOut(WireOut):
    """One metric over the window: the estimate, its sampling-error band, and (once labels
    arrived) the realized value and the estimation error (estimate minus realized)."""

    metric: str
    estimate: float
    sampling_error: float
    lower: float
    upper: float
    realized: float | None = None
    estimation_error: float | None = None


class AssumptionFlagsOut(WireOut):
    calibration_not_improved: bool
    outside_support_share: float
    outside_support: bool
    window_too_small: bool


class WindowEstimateOut(WireOut):
    model: str
    version: int
    start: datetime
    end: datetime
    rows: int
    labelled_rows: int
    metrics: list[MetricEstimateOut]
    flags: AssumptionFlagsOut

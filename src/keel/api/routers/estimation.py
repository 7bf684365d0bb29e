"""Label-free performance estimation: a version's estimator, and a window's estimates beside the
realized values."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.estimation import Estimator
from keel.schemas.base import Id
from keel.schemas.estimation import (
    AssumptionFlagsOut,
    EstimatorOut,
    MetricEstimateOut,
    WindowEstimateOut,
)
from keel.services.backend import Backend
from keel.services.estimation.service import Estimation

router = APIRouter(prefix=API_PREFIX, tags=["estimation"])


def get_estimation(backend: Annotated[Backend, Depends(get_backend)]) -> Estimation:
    return backend.estimation


EstimationDep = Annotated[Estimation, Depends(get_estimation)]


def estimator_out(found: Estimator) -> EstimatorOut:
    return EstimatorOut(
        model=found.model,
        version=found.version,
        state=found.state,
        method=found.method,
        reference_rows=found.reference_rows,
        set_by=found.set_by,
        set_at=found.set_at,
        job_id=found.job_id,
        fitted_at=found.fitted_at,
        error=found.error,
        summary=found.summary,
    )


@router.get(
    "/models/{name}/versions/{version}/estimator",
    summary="The version's label-free performance estimator (CBPE or DLE) and its fit state",
)
def get_estimator(
    name: str, version: Id, estimation: EstimationDep, caller: Reader
) -> EstimatorOut:
    return estimator_out(estimation.estimator(caller, name, version))


@router.get(
    "/models/{name}/versions/{version}/estimated-performance",
    summary="Estimate a window's performance without labels, beside the realized values",
)
def get_estimated_performance(
    name: str,
    version: Id,
    estimation: EstimationDep,
    caller: Reader,
    start: Annotated[datetime, Query(description="Window start (inclusive), ISO 8601.")],
    end: Annotated[datetime, Query(description="Window end (exclusive), ISO 8601.")],
    metrics: Annotated[
        list[str] | None,
        Query(description="Metrics to estimate (default: all of the estimator's)."),
    ] = None,
) -> WindowEstimateOut:
    found = estimation.estimate(caller, name, version, start, end, metrics or ())
    flags = found.result.flags
    return WindowEstimateOut(
        model=name,
        version=version,
        start=start,
        end=end,
        rows=found.result.rows,
        labelled_rows=found.labelled_rows,
        metrics=[
            MetricEstimateOut(
                metric=metric,
                estimate=e.value,
                sampling_error=e.sampling_error,
                lower=e.lower,
                upper=e.upper,
                realized=found.realized.get(metric),
                estimation_error=found.estimation_error(metric),
            )
            for metric, e in found.result.estimates.items()
        ],
        flags=AssumptionFlagsOut(
            calibration_not_improved=flags.calibration_not_improved,
            outside_support_share=flags.outside_support_share,
            outside_support=flags.outside_support,
            window_too_small=flags.window_too_small,
        ),
    )

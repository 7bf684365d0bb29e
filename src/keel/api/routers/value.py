"""Value models, realized value and ROI of a model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.value import ValueModel, months_between
from keel.errors import InvalidInput
from keel.schemas.value import (
    MonthRoiOut,
    ValueEstimateOut,
    ValueModelIn,
    ValueModelOut,
)
from keel.services.backend import Backend
from keel.services.value import MonthRoi, Value
from keel.stats.value import ValueEstimate

router = APIRouter(prefix=API_PREFIX, tags=["value"])


def get_value(backend: Annotated[Backend, Depends(get_backend)]) -> Value:
    return backend.value


ValueDep = Annotated[Value, Depends(get_value)]


def value_model_out(value: ValueModel) -> ValueModelOut:
    return ValueModelOut(
        model=value.model,
        kind=value.kind,
        currency=value.currency,
        amounts=dict(value.amounts),
        expected_monthly_value=value.expected_monthly_value,
        updated_by=value.updated_by,
        updated_at=value.updated_at,
    )


def estimate_out(estimate: ValueEstimate) -> ValueEstimateOut:
    return ValueEstimateOut(
        value=estimate.value,
        low=estimate.low,
        high=estimate.high,
        predictions=estimate.predictions,
        labelled=estimate.labelled,
        unpriced=estimate.unpriced,
    )


def month_out(month: MonthRoi) -> MonthRoiOut:
    return MonthRoiOut(
        model=month.model,
        month=month.month,
        currency=month.currency,
        value=None if month.value is None else estimate_out(month.value),
        cost=None if month.cost is None else str(month.cost),
        roi=month.roi,
        expected_monthly_value=month.expected_monthly_value,
        note=month.note,
    )


@router.put("/models/{name}/value-model", summary="Set a model's value model (audited)")
def set_value_model(
    name: str, body: ValueModelIn, value: ValueDep, caller: Writer
) -> ValueModelOut:
    raw = body.model_dump(exclude_none=True)
    return value_model_out(value.set_value_model(caller, name, raw))


@router.get("/models/{name}/value-model", summary="A model's value model")
def get_value_model(name: str, value: ValueDep, _: Reader) -> ValueModelOut:
    return value_model_out(value.value_model(name))


@router.get(
    "/models/{name}/value",
    summary="The value a model earned in a window, with its 95% interval",
)
def realized_value(
    name: str,
    value: ValueDep,
    _: Reader,
    start: Annotated[datetime, Query(description="Window start (included), with a time zone.")],
    end: Annotated[datetime, Query(description="Window end (excluded), with a time zone.")],
) -> ValueEstimateOut:
    for field, moment in (("start", start), ("end", end)):
        if moment.tzinfo is None:
            raise InvalidInput(
                f"{field} must carry a time zone, for example 2026-11-01T00:00:00Z.",
                {"field": field},
            )
    if end <= start:
        raise InvalidInput("end must be after start.", {"field": "end"})
    return estimate_out(value.realized(name, start, end))


@router.get(
    "/models/{name}/roi",
    summary="Value, cost and ROI of a model per month, from one month to another",
)
def roi_series(
    name: str,
    value: ValueDep,
    _: Reader,
    first: Annotated[str, Query(alias="from", max_length=7, description="First month, YYYY-MM.")],
    last: Annotated[str, Query(alias="to", max_length=7, description="Last month, YYYY-MM.")],
) -> list[MonthRoiOut]:
    return [month_out(m) for m in value.series(name, months_between(first, last))]

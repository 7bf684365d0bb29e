"""Costs: FOCUS bill imports, allocation, Keel's metering and unit economics, waste, and gc."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from keel.api.deps import Admin, Reader, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.costs import (
    Allocation,
    AllocationSource,
    CostImport,
    micros_to_decimal,
    parse_month,
)
from keel.schemas.base import MAX_INT64
from keel.schemas.costs import (
    AllocationOut,
    CostImportOut,
    CostSettingsIn,
    GcBlobOut,
    GcIn,
    GcOut,
    MeteredOut,
    MonthCostOut,
    SplitRuleIn,
    TrainingRunCostOut,
    UnitCostOut,
    WasteFindingOut,
)
from keel.services import artifact_gc
from keel.services.backend import Backend
from keel.services.costs import CostService
from keel.services.costs.export import focus_csv
from keel.services.costs.metering import predictions_per_day
from keel.services.costs.waste import find_waste

router = APIRouter(prefix=API_PREFIX, tags=["costs"])
BackendDep = Annotated[Backend, Depends(get_backend)]
_PARQUET = "application/vnd.apache.parquet"
_FORMATS = {"text/csv": "csv", _PARQUET: "parquet", "application/x-parquet": "parquet"}
_FOCUS_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
        _PARQUET: {"schema": {"type": "string", "format": "binary"}},
    },
}
Month = Annotated[str, Query(description="YYYY-MM", pattern=r"^\d{4}-\d{2}$")]


def get_costs(backend: BackendDep) -> CostService:
    return backend.costs


CostsDep = Annotated[CostService, Depends(get_costs)]


def import_out(found: CostImport) -> CostImportOut:
    return CostImportOut(
        id=found.id,
        sha256=found.sha256,
        filename=found.filename,
        format=found.file_format,
        rows=found.rows,
        effective_cost=micros_to_decimal(found.effective_micros),
        first_day=found.first_day,
        last_day=found.last_day,
        imported_by=found.imported_by,
        replayed=found.replayed,
    )


def allocation_out(a: Allocation) -> AllocationOut:
    return AllocationOut(
        model=a.model,
        team=a.team,
        pool=a.pool,
        source=str(a.source),
        amount=a.amount,
        reason=a.reason,
    )


@router.post(
    "/costs/imports",
    status_code=201,
    summary="Import a FOCUS 1.0-1.2 billing export (CSV or Parquet body; admins)",
    openapi_extra={"requestBody": _FOCUS_BODY},
)
async def import_bill(
    request: Request,
    costs: CostsDep,
    caller: Admin,
    filename: Annotated[str, Query(max_length=512)] = "upload",
) -> CostImportOut:
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind not in _FORMATS:
        raise HTTPException(
            415,
            "Send the FOCUS file as text/csv or application/vnd.apache.parquet "
            f"(Content-Type header); got {kind or 'none'}.",
        )
    with tempfile.TemporaryDirectory(prefix="keel-focus-") as scratch:
        path = Path(scratch) / f"bill.{_FORMATS[kind]}"
        # Streamed to disk, never held whole in memory; DuckDB reads it from there.
        with path.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)

        def run() -> CostImport:
            return costs.import_focus(caller, path, file_format=_FORMATS[kind], filename=filename)

        return import_out(await run_in_threadpool(run))


@router.get("/costs/imports", summary="Imported bills, oldest first")
def list_imports(costs: CostsDep, _: Reader) -> list[CostImportOut]:
    return [import_out(i) for i in costs.imports()]


@router.get("/costs", summary="A month's cost: allocations, unallocated and Keel's metering")
def month_cost(
    costs: CostsDep,
    _: Reader,
    month: Month,
    model: str | None = None,
    team: str | None = None,
) -> MonthCostOut:
    start, end = parse_month(month)
    total = costs.month_cost(month, model=model, team=team)
    everything = costs.allocations(start, end)
    chosen = [
        a
        for a in everything
        if (model is None or a.model == model) and (team is None or a.team == team)
    ]
    metered: dict[str, int] = {}
    for m in costs.metered(start, end):
        if (model is None or m.model == model) and (team is None or m.team == team):
            metered[m.kind] = metered.get(m.kind, 0) + m.micros
    unallocated = sum(a.micros for a in chosen if a.source == AllocationSource.UNALLOCATED)
    bills = sum(a.micros for a in chosen)
    return MonthCostOut(
        month=month,
        currency=costs.settings()["currency"],
        model=model,
        team=team,
        total=total,
        bills_total=micros_to_decimal(bills),
        bills_allocated=micros_to_decimal(bills - unallocated),
        bills_unallocated=micros_to_decimal(unallocated),
        metered_total=micros_to_decimal(sum(metered.values())),
        allocations=[allocation_out(a) for a in chosen],
        metered=[
            MeteredOut(kind=k, amount=micros_to_decimal(v)) for k, v in sorted(metered.items())
        ],
    )


@router.get("/costs/settings", summary="Tag keys, currency and Keel's unit prices")
def get_settings(costs: CostsDep, _: Reader) -> dict[str, str]:
    return costs.settings()


@router.put("/costs/settings", summary="Change tag keys, currency or unit prices (admins)")
def put_settings(body: CostSettingsIn, costs: CostsDep, caller: Admin) -> dict[str, str]:
    return costs.configure(caller, body.model_dump(exclude_none=True))


@router.get("/costs/split-rules", summary="How each pool of untagged cost is split")
def get_split_rules(costs: CostsDep, _: Reader) -> dict[str, str]:
    return costs.split_rules()


@router.put("/costs/split-rules/{pool}", summary="Set a pool's split rule (admins)")
def put_split_rule(pool: str, body: SplitRuleIn, costs: CostsDep, caller: Admin) -> dict[str, str]:
    return costs.set_split_rule(caller, pool, body.rule)


@router.get("/costs/unit-economics", summary="Cost per 1,000 predictions of a model on a day")
def unit_economics(
    costs: CostsDep,
    _: Reader,
    model: str,
    day: date,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
) -> UnitCostOut:
    counts = predictions_per_day(costs.store, day, day + timedelta(days=1))
    predictions = sum(n for (m, v, _), n in counts.items() if m == model and version in (None, v))
    return UnitCostOut(
        model=model,
        version=version,
        day=day,
        predictions=predictions,
        cost_per_thousand_predictions=costs.cost_per_thousand_predictions(model, version, day),
    )


@router.get("/models/{name}/training-costs", summary="What each retraining run of a month cost")
def training_costs(name: str, costs: CostsDep, _: Reader, month: Month) -> list[TrainingRunCostOut]:
    return [
        TrainingRunCostOut(
            model=r.model, day=r.day, vcpu_hours=r.quantity, cost=micros_to_decimal(r.micros)
        )
        for r in costs.training_run_costs(name, *parse_month(month))
    ]


@router.get(
    "/costs/metering.csv",
    summary="Keel's own cost rows of a month as FOCUS CSV (x_KeelModel, x_KeelVersion)",
    response_class=Response,
)
def metering_export(costs: CostsDep, _: Reader, month: Month) -> Response:
    s = costs.settings()
    rows = costs.metered(*parse_month(month))
    body = focus_csv(rows, month, s["currency"], s["model_tag"], s["team_tag"])
    return Response(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="keel-costs-{month}.csv"'},
    )


@router.get("/costs/waste", summary="Idle and wasted spend, each with its fix")
def waste(
    backend: BackendDep,
    _: Reader,
    idle_days: Annotated[int, Query(ge=1, le=3650)] = 14,
    review_days: Annotated[int, Query(ge=1, le=3650)] = 30,
    telemetry_days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> list[WasteFindingOut]:
    retention = {m.name: backend.telemetry.retention(m.name) for m in backend.costs.store.models()}
    found = find_waste(
        backend.costs,
        backend.engine,
        backend.registry.artifacts,
        retention,
        idle_days=idle_days,
        review_days=review_days,
        telemetry_days=telemetry_days,
    )
    return [
        WasteFindingOut(
            kind=f.kind, subject=f.subject, detail=f.detail, monthly_cost=f.monthly_cost, fix=f.fix
        )
        for f in found
    ]


@router.post("/gc", summary="Delete artifact blobs no version references (admins; audited)")
def collect_garbage(body: GcIn, backend: BackendDep, caller: Admin) -> GcOut:
    done = artifact_gc.collect(
        backend.engine,
        backend.registry.artifacts,
        caller,
        dry_run=body.dry_run,
        retention_days=body.retention_days,
    )
    return GcOut(
        dry_run=done.dry_run,
        retention_days=done.retention_days,
        deleted=[GcBlobOut(sha256=s, size=n) for s, n in done.blobs],
        bytes=done.bytes,
        kept_recent=done.kept_recent,
    )

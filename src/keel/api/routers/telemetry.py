"""Predictions, labels, reference profiles and retention.

Ingest needs ``write`` in the model's team: a contributor, typically a service account the
serving code runs as (``keel users create scorer --kind service`` then ``keel users grant scorer
contributor --team risk``). Bulk bodies are Parquet, Arrow IPC or (for references) CSV, chosen by
Content-Type, up to ``KEEL_MAX_UPLOAD_BYTES`` on the wire and, once decoded, up to
``KEEL_MAX_UPLOAD_ROWS`` rows and ``KEEL_MAX_UPLOAD_DECOMPRESSED_BYTES`` bytes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from keel.api.deps import Reader, Writer, get_backend
from keel.api.routers import API_PREFIX
from keel.domain.telemetry import ARROW_STREAM_MEDIA_TYPE, PARQUET_MEDIA_TYPE, IngestReceipt
from keel.errors import NotFound
from keel.schemas.base import Id
from keel.schemas.telemetry import (
    BatchId,
    IngestReceiptOut,
    LabelRowsIn,
    PredictionRowsIn,
    ReferenceOut,
    RetentionIn,
    RetentionOut,
)
from keel.services.backend import Backend
from keel.services.telemetry import Telemetry
from keel.services.telemetry_io import media_type, rows_to_table

router = APIRouter(prefix=API_PREFIX + "/models/{name}", tags=["telemetry"])

_TABLE_BODY = {
    "required": True,
    "content": {
        PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        ARROW_STREAM_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
    },
}


def get_telemetry(backend: Annotated[Backend, Depends(get_backend)]) -> Telemetry:
    return backend.telemetry


TelemetryDep = Annotated[Telemetry, Depends(get_telemetry)]
BatchQuery = Annotated[
    BatchId | None,
    Query(description="Your id for this batch; sending it again stores nothing twice."),
]


def _receipt(receipt: IngestReceipt) -> IngestReceiptOut:
    return IngestReceiptOut(
        batch_id=receipt.batch_id,
        rows=receipt.rows,
        partitions=list(receipt.partitions),
        replayed=receipt.replayed,
    )


async def _table_body(request: Request, *, csv: bool = False) -> tuple[bytes, str]:
    kind = media_type(request.headers.get("content-type"))
    accepted = [PARQUET_MEDIA_TYPE, ARROW_STREAM_MEDIA_TYPE] + (["text/csv"] if csv else [])
    if kind is None or (kind == "text/csv" and not csv):
        raise HTTPException(
            415,
            f"Send the rows as {' or '.join(accepted)} (Content-Type header); got "
            f"{request.headers.get('content-type') or 'none'}.",
        )
    return await request.body(), kind


@router.post(
    "/versions/{version}/predictions",
    summary="Log predictions as JSON rows",
)
def log_prediction_rows(
    name: str, version: Id, body: PredictionRowsIn, telemetry: TelemetryDep, caller: Writer
) -> IngestReceiptOut:
    table = rows_to_table(body.rows)
    return _receipt(telemetry.log_predictions(caller, name, version, table, batch_id=body.batch_id))


@router.post(
    "/versions/{version}/predictions/upload",
    summary="Log predictions in bulk: a Parquet file or an Arrow IPC stream as the body",
    openapi_extra={"requestBody": _TABLE_BODY},
)
async def upload_predictions(
    name: str,
    version: Id,
    request: Request,
    telemetry: TelemetryDep,
    caller: Writer,
    batch_id: BatchQuery = None,
) -> IngestReceiptOut:
    body, kind = await _table_body(request)

    def ingest() -> IngestReceipt:
        telemetry.authorize_write(caller, name)  # before decoding the body
        return telemetry.log_predictions(
            caller, name, version, telemetry.decode(body, kind), batch_id=batch_id
        )

    return _receipt(await run_in_threadpool(ingest))


@router.post("/labels", summary="Log ground truth as JSON rows (prediction_id, label, ts)")
def log_label_rows(
    name: str, body: LabelRowsIn, telemetry: TelemetryDep, caller: Writer
) -> IngestReceiptOut:
    table = rows_to_table(body.rows)
    return _receipt(telemetry.log_labels(caller, name, table, batch_id=body.batch_id))


@router.post(
    "/labels/upload",
    summary="Log ground truth in bulk: a Parquet file or an Arrow IPC stream as the body",
    openapi_extra={"requestBody": _TABLE_BODY},
)
async def upload_labels(
    name: str,
    request: Request,
    telemetry: TelemetryDep,
    caller: Writer,
    batch_id: BatchQuery = None,
) -> IngestReceiptOut:
    body, kind = await _table_body(request)

    def ingest() -> IngestReceipt:
        telemetry.authorize_write(caller, name)
        return telemetry.log_labels(caller, name, telemetry.decode(body, kind), batch_id=batch_id)

    return _receipt(await run_in_threadpool(ingest))


def _reference_out(name: str, version: Id, telemetry: Telemetry) -> ReferenceOut:
    profile = telemetry.reference_profile(name, version)
    if profile is None:
        raise NotFound(
            f"Version {version} of {name!r} has no reference profile yet. Set one with PUT "
            f"{API_PREFIX}/models/{name}/versions/{version}/reference or "
            f"`keel telemetry reference {name} {version} FILE`.",
            {"model": name, "version": version},
        )
    return ReferenceOut(
        model=name,
        version=version,
        rows=profile.rows,
        columns=list(profile.columns),
        profile=profile.to_dict(),
    )


@router.put(
    "/versions/{version}/reference",
    summary="Set the version's reference profile from a dataset (Parquet, Arrow IPC or CSV body); "
    "with the model's prediction, score and label columns it also queues the estimation fit",
    openapi_extra={"requestBody": _TABLE_BODY},
)
async def set_reference(
    name: str,
    version: Id,
    request: Request,
    telemetry: TelemetryDep,
    backend: Annotated[Backend, Depends(get_backend)],
    caller: Writer,
    bins: Annotated[int, Query(ge=2, le=1000, description="Bins per numeric column.")] = 20,
    top_k: Annotated[int, Query(ge=1, le=10_000, description="Categories kept per column.")] = 50,
    source: Annotated[str, Query(max_length=256, description="Where the data came from.")] = "",
) -> ReferenceOut:
    body, kind = await _table_body(request, csv=True)

    def build() -> ReferenceOut:
        telemetry.authorize_write(caller, name)
        table = telemetry.decode(body, kind)
        estimation = backend.estimation
        prepared = estimation.prepare_reference(caller, name, version, table)
        telemetry.set_reference(
            caller,
            name,
            version,
            table,
            source=source or f"upload ({kind})",
            bins=bins,
            top_k=top_k,
        )
        # With the model's predictions and labels in it, the reference also fits estimation.
        job = None
        if prepared is not None:
            job = estimation.reference_set(caller, backend.jobs, prepared).job_id
        return _reference_out(name, version, telemetry).model_copy(update={"estimation_job": job})

    return await run_in_threadpool(build)


@router.get("/versions/{version}/reference", summary="Show the version's reference profile")
def get_reference(name: str, version: Id, telemetry: TelemetryDep, _: Reader) -> ReferenceOut:
    return _reference_out(name, version, telemetry)


@router.get("/telemetry-retention", summary="Days of raw predictions and labels kept")
def get_retention(name: str, telemetry: TelemetryDep, _: Reader) -> RetentionOut:
    return RetentionOut(model=name, days=telemetry.retention(name))


@router.put(
    "/telemetry-retention",
    summary="Keep N days of raw predictions and labels; older date partitions are deleted",
)
def set_retention(
    name: str, body: RetentionIn, telemetry: TelemetryDep, caller: Writer
) -> RetentionOut:
    policy, removed = telemetry.set_retention(caller, name, body.days)
    return RetentionOut(
        model=name,
        days=policy.days,
        set_by=policy.set_by,
        set_at=policy.set_at,
        deleted_partitions=removed,
    )

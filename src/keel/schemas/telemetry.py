"""Wire models for prediction and label logging, reference profiles and retention."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from keel.schemas.base import WireIn, WireOut

BatchId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Row = dict[str, Any]
MAX_JSON_ROWS = 100_000


class PredictionRowsIn(WireIn):
    """Predictions as JSON rows: ``prediction`` and the signature's features per row; optional
    ``prediction_id``, ``ts``, ``score``, ``latency_ms``, ``error``."""

    rows: Annotated[list[Row], Field(min_length=1, max_length=MAX_JSON_ROWS)]
    batch_id: BatchId | None = None


class LabelRowsIn(WireIn):
    """Ground truth as JSON rows: ``prediction_id`` and ``label``, optional ``ts``."""

    rows: Annotated[list[Row], Field(min_length=1, max_length=MAX_JSON_ROWS)]
    batch_id: BatchId | None = None


class IngestReceiptOut(WireOut):
    batch_id: str
    rows: int
    partitions: list[str]
    replayed: bool = False


class ReferenceOut(WireOut):
    model: str
    version: int
    rows: int
    columns: list[str]
    profile: dict[str, Any]  # keel.stats.profile.DatasetProfile.to_dict()
    # The estimation-fit job queued when the data carried predictions and labels.
    estimation_job: int | None = None


class RetentionIn(WireIn):
    days: Annotated[int, Field(ge=1, le=36_500)]


class RetentionOut(WireOut):
    model: str
    days: int | None
    set_by: str | None = None
    set_at: datetime | None = None
    deleted_partitions: list[str] = Field(default_factory=list)

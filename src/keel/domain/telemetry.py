"""Telemetry's vocabulary: the stored row layout, ingest receipts and operations figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The columns every stored prediction row has, before the signature's own columns.
PREDICTION_ID = "prediction_id"
TIMESTAMP = "ts"
PREDICTION = "prediction"
SCORE = "score"
LATENCY_MS = "latency_ms"
ERROR = "error"
# Which arm of a deployment answered (see `keel.domain.traffic.ArmName`); rows the SDK logs
# directly are "stable".
ARM = "arm"
DEFAULT_ARM = "stable"
LABEL = "label"
PREDICTION_COLUMNS = (PREDICTION_ID, TIMESTAMP, PREDICTION, SCORE, LATENCY_MS, ERROR, ARM)
LABEL_COLUMNS = (PREDICTION_ID, LABEL, TIMESTAMP)
# Hive partition keys in the directory layout. They live only in paths and are never read back
# as columns, so a feature may share their names.
PARTITION_KEYS = ("model", "version", "date")

# Content types of a bulk upload body.
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
ARROW_STREAM_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
CSV_MEDIA_TYPE = "text/csv"

DEFAULT_RETENTION_DAYS = 90


@dataclass(frozen=True)
class IngestReceipt:
    """What the server acknowledges once a batch is durable on disk and in the profiles."""

    batch_id: str
    rows: int
    partitions: tuple[str, ...]  # the date partitions written, YYYY-MM-DD
    replayed: bool = False  # True when this batch id had already been stored: nothing written


@dataclass(frozen=True)
class OperationsStats:
    """How a version served over a window: volume, latency quantiles, errors and throughput."""

    rows: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    error_rate: float | None
    throughput_per_s: float


@dataclass(frozen=True)
class RetentionPolicy:
    model: str
    days: int
    set_by: str | None = None
    set_at: datetime | None = None

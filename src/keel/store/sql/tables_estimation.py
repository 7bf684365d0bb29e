"""Label-free performance estimators, one per model version (migration 0022)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from keel.store.sql.tables import UtcDateTime, metadata

# The estimation reference rows (Parquet) wait here for the fit job; the fit leaves CBPE's
# calibration as numbers (``params``) or DLE's error model as a skops file (``error_model``).
estimators = Table(
    "estimators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # queued | fitted | failed
    Column("method", String(8), nullable=False),  # cbpe | dle
    Column("reference_rows", Integer, nullable=False),
    Column("reference_data", LargeBinary, nullable=True),
    Column("params", JSON, nullable=True),
    Column("error_model", LargeBinary, nullable=True),
    Column("error", Text, nullable=True),
    Column("job_id", Integer, nullable=True),
    Column("set_by", String(256), nullable=False),
    Column("set_at", UtcDateTime, nullable=False),
    Column("fitted_at", UtcDateTime, nullable=True),
    UniqueConstraint("model", "version", name="uq_estimators_model_version"),
)

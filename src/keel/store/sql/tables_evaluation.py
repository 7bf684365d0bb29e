"""Tables of evaluation: artifact scans (by SHA-256) and the evaluation data of each version."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, Integer, String, Table

from keel.store.sql.tables import UtcDateTime, metadata

# One scan per artifact content: the same bytes uploaded twice are the same artifact.
artifact_scans = Table(
    "artifact_scans",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("scanner", String(64), nullable=False),
    Column("scanner_version", String(32), nullable=False),
    Column("safe", Boolean, nullable=False),
    Column("findings", JSON, nullable=False),
    Column("scanned_at", UtcDateTime, nullable=False),
)

# The evaluation dataset currently attached to a version; replacing it is audited.
evaluation_datasets = Table(
    "evaluation_datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False, index=True),
    Column("format", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("uploaded_by", String(256), nullable=False),
    Column("uploaded_at", UtcDateTime, nullable=False),
)

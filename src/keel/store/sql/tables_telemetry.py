"""Telemetry's metadata tables: reference and hourly window profiles, ingest bookkeeping and
retention. Raw rows live in Parquet (`keel.store.telemetry`), not here."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from keel.store.sql.tables import UtcDateTime, metadata

# One per version: the profile drift is measured against (bins, categories, moments).
reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column(
        "version_id",
        Integer,
        ForeignKey("model_versions.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("rows", BigInteger, nullable=False),
    Column("profile", Text, nullable=False),  # DatasetProfile.to_dict() as JSON
    Column("source", String(256), nullable=False),  # where the data came from, for people
    Column("set_by", String(128), nullable=False),
    Column("set_at", UtcDateTime, nullable=False),
)

# One per (version, hour): rows ingested that hour and, once a reference exists, their profile in
# the reference's bins; merged at every ingest, in the ingest's own transaction.
window_profiles = Table(
    "window_profiles",
    metadata,
    Column(
        "version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("hour", UtcDateTime, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("profile", Text, nullable=True),  # NULL until the version has a reference profile
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("version_id", "hour", name="pk_window_profiles"),
)

# Rows refused at ingest (wrong type, unknown or missing column), per (version, hour).
rejected_rows = Table(
    "rejected_rows",
    metadata,
    Column(
        "version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("hour", UtcDateTime, nullable=False),
    Column("rows", BigInteger, nullable=False),
    PrimaryKeyConstraint("version_id", "hour", name="pk_rejected_rows"),
)

# Batches already stored, by the id the client (or the server) gave them: a retried batch is
# answered from here instead of being written twice.
ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=True),  # NULL for a batch of labels
    Column("kind", String(16), nullable=False),  # "predictions" | "labels"
    Column("rows", BigInteger, nullable=False),
    Column("partitions", Text, nullable=False),  # comma-separated YYYY-MM-DD
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_ingest_batches_model_id_received_at", "model_id", "received_at"),
)

# Days of raw telemetry kept per model (absent: the default).
telemetry_retention = Table(
    "telemetry_retention",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("models.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("days", Integer, nullable=False),
    Column("set_by", String(128), nullable=False),
    Column("set_at", UtcDateTime, nullable=False),
)

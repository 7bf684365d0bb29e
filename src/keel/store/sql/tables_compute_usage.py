"""Keel's own compute, per kind, model version and UTC hour (migration 0025): what serving
workers spent answering and what evaluations spent, so costs can price it."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, String, Table

from keel.store.sql.tables import UtcDateTime, metadata

# One row per (kind, model, version, hour); writers add to it (INSERT ... ON CONFLICT DO UPDATE),
# so replicas flushing the same hour sum instead of overwriting each other.
compute_usage = Table(
    "compute_usage",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("model", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("hour", UtcDateTime, primary_key=True),
    Column("seconds", Float, nullable=False),
    Column("events", BigInteger, nullable=False),
)

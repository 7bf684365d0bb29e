"""The job queue and the per-period claims of scheduled work (migration 0017)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from keel.store.sql.tables import UtcDateTime, metadata

# One row per job. A worker claims a row in one short transaction (FOR UPDATE SKIP LOCKED on
# PostgreSQL, BEGIN IMMEDIATE on SQLite) by stamping lease_owner and lease_expires_at; every
# later write of that worker is fenced on lease_owner, so a worker that lost its lease cannot
# finish a job another worker now holds.
jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("idempotency_key", String(256), nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("heartbeat_at", UtcDateTime, nullable=True),
    Column("progress", String(512), nullable=False),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    Index("ix_jobs_claimable", "state", "lease_expires_at"),
)

# Scheduled work (monitors, retention, SLO checks...) runs once per period across every worker
# of every replica: the worker that inserts (name, period_start) first runs it.
scheduled_runs = Table(
    "scheduled_runs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("period_start", UtcDateTime, primary_key=True),
    Column("claimed_by", String(128), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
)

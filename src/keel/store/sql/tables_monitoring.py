"""Monitors and the metric points their runs record (migration 0007)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from keel.store.sql.tables import UtcDateTime, metadata

monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("checks", JSON, nullable=False),
    Column("window_minutes", Integer, nullable=False),
    Column("reference_version", Integer, nullable=True),
    Column("thresholds", JSON, nullable=False),
    Column("schedule_enabled", Boolean, nullable=False),
    Column("delay_minutes", Integer, nullable=False),
    # The end of the newest window evaluated, and when the worker should look again: the
    # worker's query is "next_due_at <= now", and it claims a run by moving last_window_end.
    Column("last_window_end", UtcDateTime, nullable=True),
    Column("next_due_at", UtcDateTime, nullable=True, index=True),
    # The span of prediction times whose labels arrived after their window was judged: the
    # worker re-judges those windows' label checks and clears it. NULL: nothing to re-judge.
    Column("relabel_from", UtcDateTime, nullable=True),
    Column("relabel_to", UtcDateTime, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("model_id", "name", name="uq_monitors_model_id_name"),
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    # No foreign key to monitors: a deleted monitor's history stays readable.
    Column("monitor_id", Integer, nullable=False, index=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("check", String(32), nullable=False),
    Column("column_name", String(256), nullable=True),
    Column("metric", String(64), nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    # The series query: one model's check (and column) over time.
    Index("ix_metric_points_series", "model_id", "check", "column_name", "window_end"),
    # /metrics: a monitor's newest window (monitors.last_window_end) in one indexed lookup.
    Index("ix_metric_points_monitor_window", "monitor_id", "window_end"),
)

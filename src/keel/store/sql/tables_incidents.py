"""Alert rules, incidents and incident timelines (migration 0008)."""

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
    Text,
    UniqueConstraint,
)

from keel.store.sql.tables import UtcDateTime, metadata

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("check", String(32), nullable=False),
    Column("column_name", String(256), nullable=True),
    Column("metric", String(64), nullable=True),
    Column("comparison", String(16), nullable=False),
    Column("threshold", Float, nullable=True),
    Column("windows", Integer, nullable=False),
    Column("severity", String(2), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("auto_resolve", Boolean, nullable=False),
    # The monitor whose creation added this rule (a default rule); None for rules people wrote.
    Column("monitor_id", Integer, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("model_id", "name", name="uq_alert_rules_model_id_name"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(512), nullable=False, index=True),
    # The key while the incident is open, NULL once resolved: the unique constraint makes
    # "one open incident per key" hold even when two workers alert at once.
    Column("open_key", String(512), nullable=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=True),
    # No foreign key to alert_rules: a deleted rule's incidents stay readable.
    Column("rule_id", Integer, nullable=True),
    Column("title", String(300), nullable=False),
    Column("severity", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("check", String(32), nullable=True),
    Column("column_name", String(256), nullable=True),
    Column("assignee", String(256), nullable=True),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("acknowledged_at", UtcDateTime, nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("postmortem", Text, nullable=False),
    # Set on a drill's incident (migration 0024): every real query leaves these rows out.
    Column("drill_id", Integer, nullable=True, index=True),
    UniqueConstraint("open_key", name="uq_incidents_open_key"),
    Index("ix_incidents_model_status", "model_id", "status"),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
)

"""Incident drills, their schedules, and the drill mark on incidents (migration 0024).

See `keel.services.drills` for why drill incidents share the incidents table (marked with
``drill_id``) while everything else a drill makes lives in these tables.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, ForeignKey, Integer, String, Table

from keel.store.sql.tables import UtcDateTime, metadata

drills = Table(
    "drills",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, index=True),
    Column("scenario", String(32), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version", Integer, nullable=True),
    Column("live", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("scheduled", Boolean, nullable=False),
    # The job that ran the drill: a retried job finds its drill instead of starting another.
    Column("job_id", Integer, nullable=True, unique=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("detected_at", UtcDateTime, nullable=True),
    Column("paged_at", UtcDateTime, nullable=True),
    Column("acknowledged_at", UtcDateTime, nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    # No foreign key: the drill incident is in `incidents`, marked with this drill's id.
    Column("incident_id", Integer, nullable=True, index=True),
    Column("detection_wait_s", Float, nullable=True),
    # The synthetic metric points, playbook steps, failures and outbox ids: the drill's report.
    Column("report", JSON, nullable=False),
)

drill_schedules = Table(
    "drill_schedules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("scenario", String(32), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("every_days", Integer, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

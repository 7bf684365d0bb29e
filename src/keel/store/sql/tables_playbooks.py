"""Playbook, rollback and retraining tables (migrations 0010, 0012)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from keel.store.sql.tables import UtcDateTime, metadata

# Every apply of a playbook is a new version of its name; the newest version is in force
# (an apply with `enabled: false` switches it off without losing its history).
playbooks = Table(
    "playbooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("scope", String(16), nullable=False),
    Column("target", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    Column("document", JSON, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("uq_playbooks_name_version", "name", "version", unique=True),
)

# One run of a playbook on an incident; `next_action` is where a require_ack stop resumes.
playbook_runs = Table(
    "playbook_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("playbook_id", Integer, ForeignKey("playbooks.id"), nullable=False),
    Column("incident_id", Integer, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("next_action", Integer, nullable=False),
    Column("outcomes", JSON, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# A rollback is a promotion (same alias move, same records) plus why and from which incident.
rollbacks = Table(
    "rollbacks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("promotion_id", Integer, ForeignKey("promotions.id"), nullable=False, unique=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, index=True),
    Column("from_version", Integer, nullable=False),
    Column("to_version", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("incident_id", Integer, nullable=True),
    Column("rolled_back_by", String(256), nullable=False),
    Column("rolled_back_at", UtcDateTime, nullable=False),
)

retraining_jobs = Table(
    "retraining_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("command", JSON, nullable=False),
    Column("timeout_s", Integer, nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("schedule_every_s", Integer, nullable=True),
    Column("updated_by", String(256), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("code_paths", JSON, nullable=False, server_default="[]"),  # 0012
    Column("memory_mb", Integer, nullable=False, server_default="4096"),  # 0012
)

retrain_runs = Table(
    "retrain_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, index=True),
    Column("trigger", String(16), nullable=False),
    Column("incident_id", Integer, nullable=True),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("data_dir", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_by", String(256), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("output_tail", Text, nullable=False),
    Column("registered_version", Integer, nullable=True),
    Column("reason", Text, nullable=False, server_default=""),  # 0012
)

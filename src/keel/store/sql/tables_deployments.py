"""Deployment tables (migration 0018): one row per deployment, and its timeline."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text

from keel.store.sql.tables import UtcDateTime, metadata

# `revision` is the id of the deployment's latest event that changed what serves: event ids only
# grow, so a model's plan revision keeps increasing across its deployments too.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, index=True),
    Column("strategy", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("stable_version", Integer, nullable=True),
    Column("plan", JSON, nullable=False),
    Column("step", Integer, nullable=False),
    Column("step_started_at", UtcDateTime, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("break_glass", Boolean, nullable=False),
    Column("justification", Text, nullable=False),
    Column("switched_at", UtcDateTime, nullable=True),
    Column("blue_until", UtcDateTime, nullable=True),
    Column("incident_id", Integer, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

deployment_events = Table(
    "deployment_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("details", JSON, nullable=False),
)

"""Risk assessments: every EU AI Act classification of a model, with its answers."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table, Text

from keel.store.sql.tables import UtcDateTime, metadata

risk_assessments = Table(
    "risk_assessments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, index=True),
    Column("tier", String(32), nullable=False),
    Column("previous_tier", String(32), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("answers", JSON, nullable=False),
    Column("questionnaire_version", Integer, nullable=False),
    Column("assessed_by", String(256), nullable=False),
    Column("assessed_at", UtcDateTime, nullable=False),
)

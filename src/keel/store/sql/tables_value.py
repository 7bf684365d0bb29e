"""Value models and maturity attestations (migration 0016)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from keel.store.sql.tables import UtcDateTime, metadata

# One value model per model; replacing it is audited with the old and new figures.
value_models = Table(
    "value_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amounts", JSON, nullable=False),
    # The business case: what the model was expected to earn a month.
    Column("expected_monthly_value", Float, nullable=True),
    Column("updated_by", String(256), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# An admin's word for a maturity criterion Keel cannot observe; the newest one per subject and
# criterion counts.
maturity_attestations = Table(
    "maturity_attestations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(8), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("criterion", String(64), nullable=False),
    Column("comment", Text, nullable=False),
    Column("attested_by", String(256), nullable=False),
    Column("attested_at", UtcDateTime, nullable=False),
    Index("ix_maturity_attestations_subject", "scope", "subject"),
)

"""Governance tables: policy versions, gate results, approvals and promotions (migration 0004)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from keel.store.sql.tables import UtcDateTime, metadata

policies = Table(
    "policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tier", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("document", JSON, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("uq_policies_tier_version", "tier", "version", unique=True),
)

gate_results = Table(
    "gate_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("gate", String(32), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("evidence_digest", String(64), nullable=False),
    Column("policy_tier", String(32), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("evaluated_by", String(256), nullable=False),
    Column("evaluated_at", UtcDateTime, nullable=False),
    Index("ix_gate_results_version_id_gate", "version_id", "gate"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False, index=True),
    Column("decision", String(16), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("teams", JSON, nullable=False),
    Column("comment", Text, nullable=False),
    # gate -> evidence digest of the result the approver saw
    Column("saw", JSON, nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("void", Boolean, nullable=False),
    Column("void_reason", Text, nullable=True),
    Column("voided_at", UtcDateTime, nullable=True),
)

promotions = Table(
    "promotions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False, index=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("previous_version", Integer, nullable=True),
    Column("promoted_by", String(256), nullable=False),
    Column("promoted_at", UtcDateTime, nullable=False),
    Column("break_glass", Boolean, nullable=False),
    Column("justification", Text, nullable=False),
    Column("overridden", JSON, nullable=False),
    Column("policy_tier", String(32), nullable=True),
    Column("policy_version", Integer, nullable=True),
)

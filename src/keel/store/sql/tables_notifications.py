"""Webhook subscriptions, the delivery outbox, and SLO definitions (migration 0009).

The subscription's secret is stored as given, in plain text: it must be readable to sign every
delivery, and Keel has no key management to encrypt it with. Protect the metadata database as
you protect the tokens in it; the secret is never logged, never in an audit event, and never
returned by the API after the response that created it.
"""

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

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret", String(256), nullable=False),
    Column("slack", Boolean, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Removed subscriptions stay (soft delete) so their deliveries' history stays readable.
    Column("removed_at", UtcDateTime, nullable=True),
)

# The outbox: one row per (event, subscription). The worker claims due rows by pushing
# next_attempt_at forward by a lease and stamping claim_token, in one short transaction
# (FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite), then sends outside it and
# records the outcome only if its token still holds the row.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("subscription_id", Integer, ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("claim_token", String(32), nullable=True),
    Column("last_error", String(1024), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    UniqueConstraint("idempotency_key", name="uq_webhook_deliveries_idempotency_key"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

slos = Table(
    "slos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("objective", Float, nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("latency_threshold_ms", Float, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("model_id", "name", name="uq_slos_model_id_name"),
)

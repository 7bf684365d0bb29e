"""Costs: imported FOCUS bills (summed per day, tag and pool), split rules, prices, budgets and the
budget alerts already sent (migration 0015)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from keel.store.sql.tables import UtcDateTime, metadata

# One row per imported file; the file's SHA-256 is unique, so importing it again adds nothing.
cost_imports = Table(
    "cost_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("filename", String(512), nullable=False),
    Column("file_format", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("effective_micros", BigInteger, nullable=False),
    Column("first_day", Date, nullable=True),
    Column("last_day", Date, nullable=True),
    Column("imported_by", String(256), nullable=False),
    Column("imported_at", UtcDateTime, nullable=False),
)

# A bill's rows summed per (day, model tag, team tag, pool, charge category): allocation reads
# these, never the raw rows, so a month costs the same to allocate whatever the bill's size.
cost_lines = Table(
    "cost_lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("import_id", Integer, ForeignKey("cost_imports.id", ondelete="CASCADE"), nullable=False),
    Column("day", Date, nullable=False),
    Column("model", String(256), nullable=True),
    Column("team", String(256), nullable=True),
    Column("pool", String(256), nullable=False),
    Column("charge_category", String(16), nullable=False),
    Column("effective_micros", BigInteger, nullable=False),
    Column("billed_micros", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Index("ix_cost_lines_day", "day"),
)

# How each pool of untagged cost is split (pool "*" = every pool without a rule of its own).
cost_split_rules = Table(
    "cost_split_rules",
    metadata,
    Column("pool", String(256), primary_key=True),
    Column("rule", String(32), nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Keel's own unit prices and the tag keys, one row per setting name (values as text).
cost_settings = Table(
    "cost_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

budgets = Table(
    "budgets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("target", String(256), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("thresholds", JSON, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("uq_budgets_scope_target", "scope", "target", unique=True),
)

# Each (budget, month, signal) alerts once: "threshold:80" or "forecast".
budget_alerts = Table(
    "budget_alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("budget_id", Integer, ForeignKey("budgets.id", ondelete="CASCADE"), nullable=False),
    Column("month", String(7), nullable=False),
    Column("signal", String(32), nullable=False),
    Column("incident_id", Integer, nullable=True),
    Column("details", JSON, nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
    Index("uq_budget_alerts_budget_month_signal", "budget_id", "month", "signal", unique=True),
)

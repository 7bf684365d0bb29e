"""Each SLO's budget as of its last evaluation, read by ``/metrics`` (migration 0021)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Integer, Table

from keel.store.sql.tables import UtcDateTime, metadata

# One row per SLO, replaced at every evaluation: a scrape reads O(number of SLOs) rows instead of
# scanning the SLO window's prediction logs again.
slo_budgets = Table(
    "slo_budgets",
    metadata,
    Column("slo_id", Integer, ForeignKey("slos.id"), primary_key=True),
    Column("budget_remaining", Float, nullable=False),
    Column("window_requests", BigInteger, nullable=False),
    Column("window_bad", BigInteger, nullable=False),
    Column("evaluated_at", UtcDateTime, nullable=False),
)

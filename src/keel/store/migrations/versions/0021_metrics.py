"""/metrics reads at bounded cost: SLO budgets as last evaluated; metric points by monitor window

Revision ID: 0021
Revises: 0014
Create Date: 2026-11-30 03:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slo_budgets",
        sa.Column("slo_id", sa.Integer(), nullable=False),
        sa.Column("budget_remaining", sa.Float(), nullable=False),
        sa.Column("window_requests", sa.BigInteger(), nullable=False),
        sa.Column("window_bad", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["slo_id"], ["slos.id"], name=op.f("fk_slo_budgets_slo_id_slos")),
        sa.PrimaryKeyConstraint("slo_id", name=op.f("pk_slo_budgets")),
    )
    op.create_index(
        "ix_metric_points_monitor_window", "metric_points", ["monitor_id", "window_end"]
    )


def downgrade() -> None:
    op.drop_index("ix_metric_points_monitor_window", table_name="metric_points")
    op.drop_table("slo_budgets")

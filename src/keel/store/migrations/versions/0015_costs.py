"""costs: FOCUS imports summed per day and tag, split rules, unit prices, budgets (issue 14)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cost_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("file_format", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("effective_micros", sa.BigInteger(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("imported_by", sa.String(256), nullable=False),
        sa.Column("imported_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cost_imports"),
        sa.UniqueConstraint("sha256", name="uq_cost_imports_sha256"),
    )
    op.create_table(
        "cost_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("team", sa.String(256), nullable=True),
        sa.Column("pool", sa.String(256), nullable=False),
        sa.Column("charge_category", sa.String(16), nullable=False),
        sa.Column("effective_micros", sa.BigInteger(), nullable=False),
        sa.Column("billed_micros", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["cost_imports.id"],
            name="fk_cost_lines_import_id_cost_imports",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_cost_lines"),
    )
    op.create_index("ix_cost_lines_day", "cost_lines", ["day"])
    op.create_table(
        "cost_split_rules",
        sa.Column("pool", sa.String(256), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("pool", name="pk_cost_split_rules"),
    )
    op.create_table(
        "cost_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cost_settings"),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budgets"),
    )
    op.create_index("uq_budgets_scope_target", "budgets", ["scope", "target"], unique=True)
    op.create_table(
        "budget_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("sent_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name="fk_budget_alerts_budget_id_budgets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_budget_alerts"),
    )
    op.create_index(
        "uq_budget_alerts_budget_month_signal",
        "budget_alerts",
        ["budget_id", "month", "signal"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("budget_alerts")
    op.drop_table("budgets")
    op.drop_table("cost_settings")
    op.drop_table("cost_split_rules")
    op.drop_index("ix_cost_lines_day", table_name="cost_lines")
    op.drop_table("cost_lines")
    op.drop_table("cost_imports")

"""value models and maturity attestations (issue 14, value, DORA and maturity)

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-30 03:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "value_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amounts", sa.JSON(), nullable=False),
        sa.Column("expected_monthly_value", sa.Float(), nullable=True),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_value_models_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_models")),
        sa.UniqueConstraint("model_id", name=op.f("uq_value_models_model_id")),
    )
    op.create_table(
        "maturity_attestations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("criterion", sa.String(length=64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("attested_by", sa.String(length=256), nullable=False),
        sa.Column("attested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maturity_attestations")),
    )
    op.create_index(
        "ix_maturity_attestations_subject",
        "maturity_attestations",
        ["scope", "subject"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_maturity_attestations_subject", table_name="maturity_attestations")
    op.drop_table("maturity_attestations")
    op.drop_table("value_models")

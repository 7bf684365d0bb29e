"""evaluation data and artifact scans (issue 4, filled by the evaluation work)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artifact_scans",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("scanner", sa.String(length=64), nullable=False),
        sa.Column("scanner_version", sa.String(length=32), nullable=False),
        sa.Column("safe", sa.Boolean(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_artifact_scans")),
    )
    op.create_table(
        "evaluation_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=256), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_evaluation_datasets_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_datasets")),
        sa.UniqueConstraint("version_id", name=op.f("uq_evaluation_datasets_version_id")),
    )
    with op.batch_alter_table("evaluation_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluation_datasets_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evaluation_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_datasets_sha256"))
    op.drop_table("evaluation_datasets")
    op.drop_table("artifact_scans")

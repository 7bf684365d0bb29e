"""MLflow registry API: key-value tags, version sources and stages, deletions (issue 15)

Revision ID: 0020
Revises: 0014
Create Date: 2026-11-30 03:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mlflow_model_tags",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "mlflow_version_tags",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "mlflow_versions",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("storage_location", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("run_link", sa.Text, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("deleted_at", _UTC, nullable=True),
    )
    op.create_index("ix_mlflow_versions_run_id", "mlflow_versions", ["run_id"])
    op.create_table(
        "mlflow_deleted_models",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("deleted_by", sa.String(256), nullable=False),
        sa.Column("deleted_at", _UTC, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mlflow_deleted_models")
    op.drop_index("ix_mlflow_versions_run_id", "mlflow_versions")
    op.drop_table("mlflow_versions")
    op.drop_table("mlflow_version_tags")
    op.drop_table("mlflow_model_tags")

"""Incident drills: the drills and drill_schedules tables, and incidents.drill_id

Revision ID: 0024
Revises: 0018
Create Date: 2026-11-30 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("scenario", sa.String(length=32), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=256), nullable=False),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("detection_wait_s", sa.Float(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_drills_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drills")),
        sa.UniqueConstraint("job_id", name=op.f("uq_drills_job_id")),
    )
    op.create_index(op.f("ix_drills_model_id"), "drills", ["model_id"])
    op.create_index(op.f("ix_drills_incident_id"), "drills", ["incident_id"])
    op.create_table(
        "drill_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("scenario", sa.String(length=32), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_drill_schedules_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_schedules")),
    )
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("drill_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_incidents_drill_id"), ["drill_id"])


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index(batch.f("ix_incidents_drill_id"))
        batch.drop_column("drill_id")
    op.drop_table("drill_schedules")
    op.drop_index(op.f("ix_drills_incident_id"), table_name="drills")
    op.drop_index(op.f("ix_drills_model_id"), table_name="drills")
    op.drop_table("drills")

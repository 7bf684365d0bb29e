"""retraining jobs run sandboxed: read-only code paths, a memory limit, a run's reason (issue 10)

Command jobs that exist before this revision were defined by whoever could write to the model's
team; they become ``unreviewed`` and do not run until an admin defines them again.

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("retraining_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_paths", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("memory_mb", sa.Integer(), nullable=False, server_default="4096")
        )
    with op.batch_alter_table("retrain_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
    op.execute("UPDATE retraining_jobs SET kind = 'unreviewed' WHERE kind = 'command'")


def downgrade() -> None:
    op.execute("UPDATE retraining_jobs SET kind = 'command' WHERE kind = 'unreviewed'")
    with op.batch_alter_table("retrain_runs", schema=None) as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("retraining_jobs", schema=None) as batch_op:
        batch_op.drop_column("memory_mb")
        batch_op.drop_column("code_paths")

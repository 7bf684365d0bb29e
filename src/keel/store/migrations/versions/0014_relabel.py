"""monitors remember which judged windows late labels touched (issue 10, labels after the window)

Revision ID: 0014
Revises: 0010
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("monitors") as batch:
        batch.add_column(sa.Column("relabel_from", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("relabel_to", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitors") as batch:
        batch.drop_column("relabel_to")
        batch.drop_column("relabel_from")

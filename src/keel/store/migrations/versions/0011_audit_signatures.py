"""audit event signatures (issue 10)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 00:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Events written before this revision keep NULL: `keel audit verify` reports them as
    # unsigned legacy events, not as tampering.
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("signature", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("signature")

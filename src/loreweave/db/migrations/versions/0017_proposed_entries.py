"""review before it counts, for created entries (issue 37): an entry a creation made in a session
under manual review is proposed — out of the session's view — until a person approves it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("lore_entries") as batch:
        batch.add_column(
            sa.Column("proposed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("lore_entries") as batch:
        batch.drop_column("proposed")

"""a creation's name, as its analysis found it in the turn (issue 42): the new entry's title

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("entity_creation_tasks") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entity_creation_tasks") as batch:
        batch.drop_column("name")

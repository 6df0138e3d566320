"""one world per name (in any case): worlds.name_key, unique; earlier duplicates renamed
"Eldoria (2)", "Eldoria (3)"… in the order they were created

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()  # models.world_key, as of this revision


def upgrade() -> None:
    with op.batch_alter_table("worlds") as batch:
        batch.add_column(sa.Column("name_key", sa.String(200), nullable=True))
    worlds = sa.table(
        "worlds", sa.column("id"), sa.column("name"), sa.column("name_key"), sa.column("created_at")
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(worlds.c.id, worlds.c.name).order_by(worlds.c.created_at, worlds.c.id)
    ).all()
    taken: set[str] = set()
    for world_id, name in rows:
        renamed, number = name, 1
        while _key(renamed) in taken:
            number += 1
            renamed = f"{name.strip()[:190]} ({number})"
        taken.add(_key(renamed))
        connection.execute(
            worlds.update()
            .where(worlds.c.id == world_id)
            .values(name=renamed, name_key=_key(renamed))
        )
    with op.batch_alter_table("worlds") as batch:
        batch.alter_column("name_key", existing_type=sa.String(200), nullable=False)
        batch.create_unique_constraint("uq_worlds_name_key", ["name_key"])


def downgrade() -> None:
    with op.batch_alter_table("worlds") as batch:
        batch.drop_constraint("uq_worlds_name_key", type_="unique")
        batch.drop_column("name_key")

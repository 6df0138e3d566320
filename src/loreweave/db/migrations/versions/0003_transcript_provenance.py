"""provenance for the transcript's operations: an entry's origin turn and a person's edit, the
alternatives of a turn's reply

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("lore_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_turn_index", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("edited_by_person", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alternatives", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
    # entries created before provenance was kept: their creation task knows the turn
    op.execute(
        "UPDATE lore_entries SET origin_turn_index = ("
        " SELECT min(t.turn_index) FROM entity_creation_tasks t"
        " WHERE t.created_lore_entry_id = lore_entries.id AND t.outcome = 'created')"
        " WHERE is_dynamically_generated"
    )


def downgrade() -> None:
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.drop_column("alternatives")
    with op.batch_alter_table("lore_entries", schema=None) as batch_op:
        batch_op.drop_column("edited_by_person")
        batch_op.drop_column("origin_turn_index")

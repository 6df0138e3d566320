"""priorities and batches: when a session's latest turn arrived; a batched creation's followups

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.add_column(sa.Column("last_turn_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_chat_sessions_last_turn_at", ["last_turn_at"])
    op.execute(
        "UPDATE chat_sessions SET last_turn_at = (SELECT max(created_at) FROM chat_turns "
        "WHERE chat_turns.session_id = chat_sessions.id)"
    )
    with op.batch_alter_table("entity_creation_tasks") as batch:
        batch.add_column(
            sa.Column("followups", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("entity_creation_tasks") as batch:
        batch.drop_column("followups")
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_index("ix_chat_sessions_last_turn_at")
        batch.drop_column("last_turn_at")

"""forks remember their origin, sessions when a proxied request last matched them, and whether
a person archived them: the abandoned side of a branch is listed apart, archived or deleted

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.add_column(sa.Column("forked_from_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("forked_at_turn", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_matched_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            "fk_chat_sessions_forked_from",
            "chat_sessions",
            ["forked_from_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_chat_sessions_forked_from", ["forked_from_id"])


def downgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_index("ix_chat_sessions_forked_from")
        batch.drop_constraint("fk_chat_sessions_forked_from", type_="foreignkey")
        for column in ("archived_at", "last_matched_at", "forked_at_turn", "forked_from_id"):
            batch.drop_column(column)

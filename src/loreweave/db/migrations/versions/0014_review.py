"""review before it counts (DESIGN §1.7): a world's and a session's review mode, and the note
changes that wait for a person

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("worlds") as batch:
        batch.add_column(
            sa.Column("review", sa.String(length=10), nullable=False, server_default="auto")
        )
    with op.batch_alter_table("chat_sessions") as batch:
        batch.add_column(sa.Column("review", sa.String(length=10), nullable=True))
    op.create_table(
        "note_proposals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("lore_entry_id", sa.Uuid(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("task_ids", sa.JSON(), nullable=False),
        sa.Column("turns", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_note_proposals_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lore_entry_id"],
            ["lore_entries.id"],
            name=op.f("fk_note_proposals_lore_entry_id_lore_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_note_proposals")),
        sa.UniqueConstraint(
            "session_id", "lore_entry_id", name=op.f("uq_note_proposals_session_id")
        ),
    )
    with op.batch_alter_table("note_proposals") as batch:
        batch.create_index(
            batch.f("ix_note_proposals_lore_entry_id"), ["lore_entry_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("note_proposals")
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_column("review")
    with op.batch_alter_table("worlds") as batch:
        batch.drop_column("review")

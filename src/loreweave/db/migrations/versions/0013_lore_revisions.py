"""canon drift (DESIGN §1.7): a lore entry's earlier texts, kept when a person changes it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "lore_entry_revisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lore_entry_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lore_entry_id"],
            ["lore_entries.id"],
            name=op.f("fk_lore_entry_revisions_lore_entry_id_lore_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_lore_entry_revisions_session_id_chat_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lore_entry_revisions")),
        sa.UniqueConstraint(
            "lore_entry_id", "version", name=op.f("uq_lore_entry_revisions_lore_entry_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("lore_entry_revisions")

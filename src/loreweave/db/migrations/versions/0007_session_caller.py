"""the caller of a proxied chat: the proxy matches a request only against its caller's chats

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.add_column(sa.Column("caller", sa.String(64), nullable=True))
        batch.create_index("ix_chat_sessions_world_caller", ["world_id", "caller"])


def downgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_index("ix_chat_sessions_world_caller")
        batch.drop_column("caller")

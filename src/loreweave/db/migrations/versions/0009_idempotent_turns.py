"""a turn's idempotency key: a client retrying a turn after a cut connection records it once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_turns") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
        batch.create_unique_constraint(
            "uq_chat_turns_session_idempotency_key", ["session_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("chat_turns") as batch:
        batch.drop_constraint("uq_chat_turns_session_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")

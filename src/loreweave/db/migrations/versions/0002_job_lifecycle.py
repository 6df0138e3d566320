"""one job life-cycle: failed attempts counted alike on turns, indexes for flat claiming

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.alter_column("attempts", new_column_name="retry_count")
        batch_op.create_index(
            batch_op.f("ix_chat_turns_session_status"),
            ["session_id", "processing_status", "turn_index"],
            unique=False,
        )
    # ``attempts`` counted claims; ``retry_count`` counts failed attempts: a done turn failed
    # attempts - 1 times, a failed one all of them.
    op.execute(
        "UPDATE chat_turns SET retry_count = retry_count - 1 "
        "WHERE processing_status = 'done' AND retry_count > 0"
    )
    with op.batch_alter_table("entity_creation_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_entity_creation_tasks_session")
        batch_op.create_index(
            "ix_entity_creation_tasks_session",
            ["session_id", "status", "turn_index"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("entity_creation_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_entity_creation_tasks_session")
        batch_op.create_index(
            "ix_entity_creation_tasks_session", ["session_id", "turn_index"], unique=False
        )
    op.execute(
        "UPDATE chat_turns SET processing_status = 'done' WHERE processing_status = 'skipped'"
    )
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_turns_session_status"))
        batch_op.alter_column("retry_count", new_column_name="attempts")
    op.execute("UPDATE note_update_tasks SET status = 'done' WHERE status = 'skipped'")
    op.execute("UPDATE entity_creation_tasks SET status = 'done' WHERE status = 'skipped'")

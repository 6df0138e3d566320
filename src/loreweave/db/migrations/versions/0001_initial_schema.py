"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sync_counters",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_counters")),
    )
    op.bulk_insert(
        sa.table("sync_counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": "vectors", "value": 0}],
    )
    op.create_table(
        "worlds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worlds")),
    )
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("world_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["world_id"],
            ["worlds.id"],
            name=op.f("fk_chat_sessions_world_id_worlds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
    )
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_sessions_world_id"), ["world_id"], unique=False)

    op.create_table(
        "chat_turns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("turn_index", sa.Integer(), nullable=False),
        sa.Column("user_message", sa.Text(), nullable=False),
        sa.Column("assistant_message", sa.Text(), nullable=False),
        sa.Column("used_entry_ids", sa.JSON(), nullable=False),
        sa.Column(
            "processing_status", sa.String(length=20), server_default="pending", nullable=False
        ),
        sa.Column("last_processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processing_errors", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_turns_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_turns")),
        sa.UniqueConstraint("session_id", "turn_index", name=op.f("uq_chat_turns_session_id")),
    )
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chat_turns_claim", ["processing_status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "lore_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("world_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column(
            "is_dynamically_generated", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.Column("origin_session_id", sa.Uuid(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_lore_entries_origin_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["world_id"],
            ["worlds.id"],
            name=op.f("fk_lore_entries_world_id_worlds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lore_entries")),
    )
    with op.batch_alter_table("lore_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lore_entries_world_origin", ["world_id", "origin_session_id"], unique=False
        )

    op.create_table(
        "entity_creation_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("creation_summary", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("created_lore_entry_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("turn_index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_lore_entry_id"],
            ["lore_entries.id"],
            name=op.f("fk_entity_creation_tasks_created_lore_entry_id_lore_entries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_entity_creation_tasks_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_creation_tasks")),
    )
    with op.batch_alter_table("entity_creation_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entity_creation_tasks_claim", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_entity_creation_tasks_session", ["session_id", "turn_index"], unique=False
        )

    op.create_table(
        "entity_vectors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("world_id", sa.Uuid(), nullable=False),
        sa.Column("lore_entry_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_entity_vectors_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["world_id"],
            ["worlds.id"],
            name=op.f("fk_entity_vectors_world_id_worlds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entity_vectors")),
    )
    with op.batch_alter_table("entity_vectors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entity_vectors_session_version", ["session_id", "version"], unique=False
        )
        batch_op.create_index(
            "ix_entity_vectors_world_version", ["world_id", "version"], unique=False
        )
        batch_op.create_index(
            "uq_entity_vectors_base",
            ["lore_entry_id"],
            unique=True,
            sqlite_where=sa.text("session_id IS NULL"),
            postgresql_where=sa.text("session_id IS NULL"),
        )
        batch_op.create_index(
            "uq_entity_vectors_overlay",
            ["lore_entry_id", "session_id"],
            unique=True,
            sqlite_where=sa.text("session_id IS NOT NULL"),
            postgresql_where=sa.text("session_id IS NOT NULL"),
        )

    op.create_table(
        "note_update_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lore_entry_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("update_summary", sa.Text(), nullable=False),
        sa.Column("applied_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("turn_index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["lore_entry_id"],
            ["lore_entries.id"],
            name=op.f("fk_note_update_tasks_lore_entry_id_lore_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_note_update_tasks_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_note_update_tasks")),
    )
    with op.batch_alter_table("note_update_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_note_update_tasks_claim", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_note_update_tasks_key",
            ["session_id", "lore_entry_id", "status", "turn_index"],
            unique=False,
        )

    op.create_table(
        "session_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("lore_entry_id", sa.Uuid(), nullable=False),
        sa.Column("note_content", sa.Text(), nullable=False),
        sa.Column("last_updated_turn", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lore_entry_id"],
            ["lore_entries.id"],
            name=op.f("fk_session_notes_lore_entry_id_lore_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_session_notes_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_notes")),
        sa.UniqueConstraint(
            "session_id", "lore_entry_id", name=op.f("uq_session_notes_session_id")
        ),
    )
    with op.batch_alter_table("session_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_notes_lore_entry_id"), ["lore_entry_id"], unique=False
        )

    op.create_table(
        "session_note_revisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("note_content", sa.Text(), nullable=False),
        sa.Column("last_updated_turn", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["session_notes.id"],
            name=op.f("fk_session_note_revisions_note_id_session_notes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_note_revisions")),
        sa.UniqueConstraint("note_id", "version", name=op.f("uq_session_note_revisions_note_id")),
    )


def downgrade() -> None:
    op.drop_table("session_note_revisions")
    with op.batch_alter_table("session_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_notes_lore_entry_id"))

    op.drop_table("session_notes")
    with op.batch_alter_table("note_update_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_note_update_tasks_key")
        batch_op.drop_index("ix_note_update_tasks_claim")

    op.drop_table("note_update_tasks")
    with op.batch_alter_table("entity_vectors", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_entity_vectors_overlay",
            sqlite_where=sa.text("session_id IS NOT NULL"),
            postgresql_where=sa.text("session_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_entity_vectors_base",
            sqlite_where=sa.text("session_id IS NULL"),
            postgresql_where=sa.text("session_id IS NULL"),
        )
        batch_op.drop_index("ix_entity_vectors_world_version")
        batch_op.drop_index("ix_entity_vectors_session_version")

    op.drop_table("entity_vectors")
    with op.batch_alter_table("entity_creation_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_entity_creation_tasks_session")
        batch_op.drop_index("ix_entity_creation_tasks_claim")

    op.drop_table("entity_creation_tasks")
    with op.batch_alter_table("lore_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_lore_entries_world_origin")

    op.drop_table("lore_entries")
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_turns_claim")

    op.drop_table("chat_turns")
    with op.batch_alter_table("chat_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_sessions_world_id"))

    op.drop_table("chat_sessions")
    op.drop_table("worlds")
    op.drop_table("sync_counters")

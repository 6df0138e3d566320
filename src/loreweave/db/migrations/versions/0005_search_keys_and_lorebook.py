"""several search keys per document (``entity_vectors.part``); lorebook activation fields on
entries (secondary keys and their logic, constant, enabled, placement), filled from imported
World Info; a
world's imported lorebook fields (``worlds.extra``); what a turn's prompt was given
(``chat_turns.prompt_lore``)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

WORLD_INFO = "sillytavern_world_info"
LOGIC = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}


def _indexes(batch_op: Any, columns: list[str], create: bool) -> None:
    for name, where, extra in (
        ("uq_entity_vectors_base", "session_id IS NULL", []),
        ("uq_entity_vectors_overlay", "session_id IS NOT NULL", ["session_id"]),
    ):
        clause = {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}
        if create:
            batch_op.create_index(name, ["lore_entry_id", *extra, *columns], unique=True, **clause)
        else:
            batch_op.drop_index(name, **clause)


def upgrade() -> None:
    with op.batch_alter_table("entity_vectors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("part", sa.String(length=32), server_default="document", nullable=False)
        )
        _indexes(batch_op, [], create=False)
        _indexes(batch_op, ["part"], create=True)
    with op.batch_alter_table("lore_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("secondary_keys", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("key_logic", sa.String(length=10), server_default="and_any", nullable=False)
        )
        batch_op.add_column(
            sa.Column("constant", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("placement", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
    with op.batch_alter_table("worlds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("extra", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prompt_lore", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
    _from_world_info()


def _from_world_info() -> None:
    """Entries imported from World Info had their secondary keys folded into their aliases (and
    so activating on their own): give them their own fields back."""
    connection = op.get_bind()
    entries = sa.table(
        "lore_entries",
        sa.column("id", sa.Uuid()),
        sa.column("aliases", sa.JSON()),
        sa.column("extra", sa.JSON()),
        sa.column("secondary_keys", sa.JSON()),
        sa.column("key_logic", sa.String()),
        sa.column("constant", sa.Boolean()),
        sa.column("enabled", sa.Boolean()),
        sa.column("placement", sa.JSON()),
    )
    for entry_id, aliases, extra in connection.execute(
        sa.select(entries.c.id, entries.c.aliases, entries.c.extra)
    ):
        extra = json.loads(extra) if isinstance(extra, str) else extra
        source = (extra or {}).get(WORLD_INFO)
        if not isinstance(source, dict):
            continue
        secondary = [k.strip() for k in source.get("keysecondary") or [] if isinstance(k, str)]
        if source.get("selective") is False:
            secondary = []  # SillyTavern ignores secondary keys of a non-selective entry
        lowered = {k.lower() for k in secondary}
        primary = {k.strip().lower() for k in source.get("key") or [] if isinstance(k, str)}
        aliases = json.loads(aliases) if isinstance(aliases, str) else aliases or []
        logic = source.get("selectiveLogic")
        kept = [a for a in aliases if a.lower() not in lowered or a.lower() in primary]
        connection.execute(
            entries.update()
            .where(entries.c.id == entry_id)
            .values(
                aliases=kept,
                secondary_keys=[k for k in secondary if k],
                key_logic=LOGIC.get(logic, "and_any") if isinstance(logic, int) else "and_any",
                constant=bool(source.get("constant")),
                enabled=not source.get("disable"),
                placement={
                    k: source[k]
                    for k in ("order", "position", "depth", "probability")
                    if isinstance(source.get(k), int) and not isinstance(source.get(k), bool)
                },
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("chat_turns", schema=None) as batch_op:
        batch_op.drop_column("prompt_lore")
    with op.batch_alter_table("worlds", schema=None) as batch_op:
        batch_op.drop_column("extra")
    with op.batch_alter_table("lore_entries", schema=None) as batch_op:
        batch_op.drop_column("placement")
        batch_op.drop_column("enabled")
        batch_op.drop_column("constant")
        batch_op.drop_column("key_logic")
        batch_op.drop_column("secondary_keys")
    # several keys per document cannot go back to one row each: keep the documents only
    op.execute("DELETE FROM entity_vectors WHERE part <> 'document'")
    with op.batch_alter_table("entity_vectors", schema=None) as batch_op:
        _indexes(batch_op, ["part"], create=False)
        _indexes(batch_op, [], create=True)
        batch_op.drop_column("part")

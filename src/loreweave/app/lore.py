"""Lore use cases shared by the HTTP API, the command line and the importers: create worlds;
create, edit, delete and promote entries; roll a note back.  Each commits its own unit of work, then
brings the entry's vectors up to date."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from loreweave.app.importing import Imported, Progress, import_entries
from loreweave.db.engine import Database
from loreweave.db.models import LoreEntry, LoreEntryRevision, SessionNote, World
from loreweave.db.repositories import visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.errors import Conflict, InvalidInput, NotFound
from loreweave.vectors.service import CompositeVectorService

EDITABLE = (
    "title",
    "entity_type",
    "content",
    "tags",
    "aliases",
    "secondary_keys",
    "key_logic",
    "constant",
    "enabled",
    "placement",
)


@dataclass(frozen=True)
class EntryFilter:
    entity_type: str | None = None
    tag: str | None = None
    dynamic: bool | None = None
    text: str | None = None
    session_id: uuid.UUID | None = None  # include this session's created entries


class LoreService:
    def __init__(self, database: Database, vectors: CompositeVectorService) -> None:
        self.database = database
        self.vectors = vectors

    def create_world(self, name: str, description: str = "") -> World:
        """A new world; its name must be free in any case (Conflict names the world that has
        it)."""
        with self.database.uow() as uow:
            world = uow.worlds.add(World(name=name, description=description))
            uow.commit()
        return world

    def world_named(self, name: str) -> World | None:
        """The world of this name, in any case, or None."""
        with self.database.uow(read_only=True) as uow:
            return uow.worlds.named(name)

    def create(self, world_id: uuid.UUID, **fields: Any) -> LoreEntry:
        """A new entry of the world, its vectors written."""
        with self.database.uow() as uow:
            uow.worlds.require(world_id)
            entry = uow.entries.add(LoreEntry(world_id=world_id, **fields))
            uow.commit()
        self.vectors.sync_entry(entry.id)
        return entry

    def import_entries(
        self,
        world_id: uuid.UUID,
        entries: Sequence[Any],
        fields: dict[str, Any] | None = None,
        *,
        progress: Progress | None = None,
    ) -> Imported:
        """Import many entries, all or nothing, with their vectors (``app.importing``)."""
        return import_entries(
            self.database, self.vectors, world_id, entries, fields, progress=progress
        )

    def list(self, world_id: uuid.UUID, where: EntryFilter) -> Sequence[LoreEntry]:
        with self.database.uow(read_only=True) as uow:
            uow.worlds.require(world_id)
            query = select(LoreEntry).where(LoreEntry.world_id == world_id)
            if where.session_id is None:
                query = query.where(LoreEntry.origin_session_id.is_(None))
            else:
                session = uow.sessions.require(where.session_id)
                query = query.where(visible_in(session))
            if where.entity_type:
                query = query.where(LoreEntry.entity_type == where.entity_type)
            if where.dynamic is not None:
                query = query.where(LoreEntry.is_dynamically_generated.is_(where.dynamic))
            if where.text:
                pattern = f"%{_literal(where.text)}%"  # the text as typed: no wildcards of its own
                query = query.where(
                    or_(
                        LoreEntry.title.ilike(pattern, escape="\\"),
                        LoreEntry.content.ilike(pattern, escape="\\"),
                    )
                )
            entries = uow.session.scalars(query.order_by(LoreEntry.title, LoreEntry.id)).all()
        if where.tag:
            entries = [e for e in entries if where.tag in (e.tags or [])]
        return entries

    def get(self, entry_id: uuid.UUID) -> LoreEntry:
        with self.database.uow(read_only=True) as uow:
            return uow.entries.require(entry_id)

    def update(self, entry_id: uuid.UUID, changes: dict[str, Any]) -> LoreEntry:
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
        with self.database.uow() as uow:
            entry = _changeable(uow, entry_id)
            if "content" in changes and changes["content"] != entry.content:
                keep_revision(uow, entry, "edit")
            for key, value in changes.items():
                setattr(entry, key, value)
            entry.edited_by_person = True  # undoing the turn that created it keeps it
            uow.commit()
        self.vectors.sync_entry(entry_id)
        return entry

    def delete(self, entry_id: uuid.UUID) -> None:
        """Delete an entry and its notes; its vectors become tombstones in the same commit."""
        with self.database.uow() as uow:
            entry = uow.entries.require(entry_id)
            self.vectors.forget_entry(uow, entry_id)
            uow.entries.delete(entry)
            uow.commit()

    def promote(self, entry_id: uuid.UUID) -> LoreEntry:
        """A session-created entry becomes lore of the whole world."""
        with self.database.uow() as uow:
            entry = _changeable(uow, entry_id)
            if entry.origin_session_id is None:
                raise Conflict(f"lore entry {entry_id} is already world lore")
            entry.origin_session_id = None
            uow.commit()
        self.vectors.sync_entry(entry_id)
        return entry

    def edit_note(self, session_id: uuid.UUID, entry_id: uuid.UUID, content: str) -> SessionNote:
        """A person rewrites a session's note of an entry the session can see."""
        if not content.strip():
            raise InvalidInput("the note is empty")
        with self.database.uow() as uow:
            session = uow.sessions.require(session_id)
            uow.entries.require_visible(entry_id, session)
            note = uow.notes.for_entry(session_id, entry_id)
            turn = note.last_updated_turn if note else None
            note = uow.notes.write(session_id, entry_id, content.strip(), turn=turn, reason="edit")
            uow.commit()
        self.vectors.sync_entry(entry_id, session_id)
        return note

    def rollback_note(
        self, session_id: uuid.UUID, entry_id: uuid.UUID, version: int
    ) -> SessionNote:
        """Make an earlier version of a note current again (as a new version), and re-embed."""
        with self.database.uow() as uow:
            note = uow.notes.for_entry(session_id, entry_id)
            if note is None:
                raise NotFound("session note", f"{session_id}/{entry_id}")
            if version == note.version:
                raise Conflict(f"version {version} is already the current note")
            old = next((r for r in uow.notes.revisions(note.id) if r.version == version), None)
            if old is None:
                raise NotFound("note version", version)
            note = uow.notes.write(
                session_id,
                entry_id,
                old.note_content,
                turn=old.last_updated_turn,
                reason="rollback",
            )
            uow.commit()
        self.vectors.sync_entry(entry_id, session_id)
        return note

    # -- lore revisions and canon (DESIGN §1.7) ------------------------------------------------
    def revisions(self, entry_id: uuid.UUID) -> Sequence[LoreEntryRevision]:
        with self.database.uow(read_only=True) as uow:
            uow.entries.require(entry_id)
            return lore_revisions(uow, entry_id)

    def restore(self, entry_id: uuid.UUID, version: int) -> LoreEntry:
        """Make an earlier text of the entry its lore again (the text it replaces is kept as a
        revision too): the undo of an edit or of a canon."""
        with self.database.uow() as uow:
            entry = uow.entries.require(entry_id)
            old = next((r for r in lore_revisions(uow, entry_id) if r.version == version), None)
            if old is None:
                raise NotFound("lore revision", version)
            keep_revision(uow, entry, "restore")
            entry.content = old.content
            entry.edited_by_person = True
            uow.commit()
        self.vectors.sync_entry(entry_id)
        return entry

    def canon(
        self, session_id: uuid.UUID, entry_id: uuid.UUID, content: str
    ) -> tuple[LoreEntry, SessionNote, int]:
        """A person's merged text becomes the entry's lore (the lore it replaces kept as a
        revision, whose version is returned); the session's note restarts empty (a new version,
        its text kept as a revision): the events folded into it are in the canon now, and those
        not yet folded make its next text."""
        if not content.strip():
            raise InvalidInput("the canon text is empty")
        with self.database.uow() as uow:
            session = uow.sessions.require(session_id)
            entry = uow.entries.require_visible(entry_id, session)
            note = uow.notes.for_entry(session_id, entry_id)
            if note is None or not note.note_content:
                raise NotFound("session note", f"{session_id}/{entry_id}")
            revision = keep_revision(uow, entry, "canon", session_id=session_id)
            entry.content = content.strip()
            entry.edited_by_person = True
            note = uow.notes.write(
                session_id, entry_id, "", turn=note.last_updated_turn, reason="canon"
            )
            uow.commit()
        self.vectors.sync_entry(entry_id)
        return entry, note, revision.version


def lore_revisions(uow: UnitOfWork, entry_id: uuid.UUID) -> Sequence[LoreEntryRevision]:
    query = select(LoreEntryRevision).where(LoreEntryRevision.lore_entry_id == entry_id)
    return uow.session.scalars(query.order_by(LoreEntryRevision.version)).all()


def keep_revision(
    uow: UnitOfWork, entry: LoreEntry, reason: str, *, session_id: uuid.UUID | None = None
) -> LoreEntryRevision:
    """Keep the entry's lore as it is now, before a person changes it."""
    latest = uow.session.scalar(
        select(func.max(LoreEntryRevision.version)).where(
            LoreEntryRevision.lore_entry_id == entry.id
        )
    )
    revision = LoreEntryRevision(
        lore_entry_id=entry.id,
        version=(latest or 0) + 1,
        content=entry.content,
        reason=reason,
        session_id=session_id,
    )
    uow.session.add(revision)
    uow.session.flush()
    return revision


def _literal(text: str) -> str:
    """``text`` for a LIKE pattern that matches it literally: ``%``, ``_`` and the escape
    character itself escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _changeable(uow: UnitOfWork, entry_id: uuid.UUID) -> LoreEntry:
    """An entry a person may edit or promote: not one waiting for review (DESIGN §1.7), which
    is approved (optionally with an edit) or rejected first."""
    entry = uow.entries.require(entry_id)
    if entry.proposed:
        raise Conflict(f"lore entry {entry_id} waits for review: approve or reject it first")
    return entry

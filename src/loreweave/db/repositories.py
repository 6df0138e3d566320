"""Repositories: the queries the services need, each in one place, over one SQLAlchemy session."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from loreweave.db.dialect import is_postgresql
from loreweave.db.models import (
    Base,
    ChatSession,
    ChatTurn,
    LoreEntry,
    SessionNote,
    SessionNoteRevision,
    World,
    world_key,
)
from loreweave.errors import Conflict, NotFound

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    model: type[M]
    kind: str

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: M) -> M:
        self.session.add(obj)
        self.session.flush()
        return obj

    def get(self, key: uuid.UUID) -> M | None:
        return self.session.get(self.model, key)

    def require(self, key: uuid.UUID) -> M:
        obj = self.get(key)
        if obj is None:
            raise NotFound(self.kind, key)
        return obj

    def delete(self, obj: M) -> None:
        self.session.delete(obj)
        self.session.flush()


class WorldRepository(Repository[World]):
    model = World
    kind = "world"

    def list(self) -> Sequence[World]:
        return self.session.scalars(select(World).order_by(World.created_at)).all()

    def named(self, name: str) -> World | None:
        """The world of this name, in any case (names are unique: :func:`world_key`)."""
        return self.session.scalars(select(World).where(World.name_key == world_key(name))).first()

    def add(self, obj: World) -> World:
        """A new world; its name must be free (409: the world that has it, by id)."""
        existing = self.named(obj.name)
        if existing is not None and existing is not obj:
            raise Conflict(f"a world named {existing.name!r} already exists (id {existing.id})")
        return super().add(obj)


# What a chat session can see -- the one predicate, in SQL and in Python: its world's lore, minus
# the entries other sessions created (until they are promoted to the world).


def visible_in(session: ChatSession, *, proposed: bool = False) -> ColumnElement[bool]:
    """The filter for entries ``session`` may see: its world's lore and what it created, but no
    entry that waits for a person's review (``proposed``: those of the session too)."""
    return and_(
        LoreEntry.world_id == session.world_id,
        or_(LoreEntry.origin_session_id.is_(None), LoreEntry.origin_session_id == session.id),
        true() if proposed else LoreEntry.proposed.is_(False),
    )


def can_see(
    session: ChatSession,
    world_id: uuid.UUID,
    origin_session_id: uuid.UUID | None,
    proposed: bool,
) -> bool:
    """:func:`visible_in` for an entry's world, origin session and review state."""
    return world_id == session.world_id and origin_session_id in (None, session.id) and not proposed


def is_visible(entry: LoreEntry, session: ChatSession) -> bool:
    """:func:`visible_in` for one loaded entry."""
    return can_see(session, entry.world_id, entry.origin_session_id, entry.proposed)


class LoreEntryRepository(Repository[LoreEntry]):
    model = LoreEntry
    kind = "lore entry"

    def in_world(self, world_id: uuid.UUID) -> Sequence[LoreEntry]:
        query = select(LoreEntry).where(LoreEntry.world_id == world_id)
        return self.session.scalars(query.order_by(LoreEntry.created_at, LoreEntry.id)).all()

    def visible_to(self, session: ChatSession) -> Sequence[LoreEntry]:
        query = select(LoreEntry).where(visible_in(session))
        return self.session.scalars(query.order_by(LoreEntry.created_at, LoreEntry.id)).all()

    def require_visible(self, entry_id: uuid.UUID, session: ChatSession) -> LoreEntry:
        """The entry, if ``session`` may see it; otherwise NotFound (never another world's)."""
        query = select(LoreEntry).where(LoreEntry.id == entry_id, visible_in(session))
        entry = self.session.scalars(query).one_or_none()
        if entry is None:
            raise NotFound(self.kind, entry_id)
        return entry


class ChatSessionRepository(Repository[ChatSession]):
    model = ChatSession
    kind = "session"

    def lock(self, session_id: uuid.UUID) -> ChatSession:
        """The session, its row locked until commit (PostgreSQL; SQLite's write transactions
        are serial already): what serialises a session's turn numbering and creations."""
        query = select(ChatSession).where(ChatSession.id == session_id)
        if is_postgresql(self.session):
            query = query.with_for_update()
        session = self.session.scalars(query).one_or_none()
        if session is None:
            raise NotFound(self.kind, session_id)
        return session

    def in_world(self, world_id: uuid.UUID) -> Sequence[ChatSession]:
        query = select(ChatSession).where(ChatSession.world_id == world_id)
        return self.session.scalars(query.order_by(ChatSession.created_at)).all()


class ChatTurnRepository(Repository[ChatTurn]):
    model = ChatTurn
    kind = "turn"

    def next_index(self, session_id: uuid.UUID) -> int:
        query = select(func.max(ChatTurn.turn_index)).where(ChatTurn.session_id == session_id)
        last = self.session.scalar(query)
        return 0 if last is None else last + 1

    def recent(
        self, session_id: uuid.UUID, limit: int, before: int | None = None
    ) -> list[ChatTurn]:
        """Up to ``limit`` turns of a session, oldest first, ending before turn ``before``."""
        query = select(ChatTurn).where(ChatTurn.session_id == session_id)
        if before is not None:
            query = query.where(ChatTurn.turn_index < before)
        query = query.order_by(ChatTurn.turn_index.desc()).limit(limit)
        return list(reversed(self.session.scalars(query).all()))


class SessionNoteRepository(Repository[SessionNote]):
    model = SessionNote
    kind = "session note"

    def for_entry(
        self, session_id: uuid.UUID, entry_id: uuid.UUID, *, lock: bool = False
    ) -> SessionNote | None:
        """The note; with ``lock``, its row locked until commit (PostgreSQL), so a
        read-compare-write of the note cannot interleave with another."""
        query = select(SessionNote).where(
            SessionNote.session_id == session_id, SessionNote.lore_entry_id == entry_id
        )
        if lock and is_postgresql(self.session):
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(query).one_or_none()

    def in_session(self, session_id: uuid.UUID) -> Sequence[SessionNote]:
        query = select(SessionNote).where(SessionNote.session_id == session_id)
        return self.session.scalars(query.order_by(SessionNote.created_at)).all()

    def write(
        self,
        session_id: uuid.UUID,
        entry_id: uuid.UUID,
        content: str,
        *,
        turn: int | None,
        reason: str = "rewrite",
    ) -> SessionNote:
        """Create or replace a note; the text it replaces is kept as a revision."""
        note = self.for_entry(session_id, entry_id, lock=True)
        if note is None:
            return self.add(
                SessionNote(
                    session_id=session_id,
                    lore_entry_id=entry_id,
                    note_content=content,
                    last_updated_turn=turn,
                    version=1,
                )
            )
        self.session.add(
            SessionNoteRevision(
                note_id=note.id,
                version=note.version,
                note_content=note.note_content,
                last_updated_turn=note.last_updated_turn,
                reason=reason,
            )
        )
        note.note_content = content
        note.last_updated_turn = turn
        note.version += 1
        self.session.flush()
        return note

    def revisions(self, note_id: uuid.UUID) -> Sequence[SessionNoteRevision]:
        query = select(SessionNoteRevision).where(SessionNoteRevision.note_id == note_id)
        return self.session.scalars(query.order_by(SessionNoteRevision.version)).all()

"""Finding a world or a session the way a person names it: its id, an unambiguous prefix of the
id, or its name (title), case-insensitively.  Ambiguity is an error that lists the candidates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select

from loreweave.db.models import ChatSession, World
from loreweave.db.uow import UnitOfWork
from loreweave.errors import InvalidInput, NotFound

MIN_PREFIX = 4


Named = Sequence[tuple[uuid.UUID, str]]


def _pick(kind: str, ref: str, by_name: Named, rows: Named) -> uuid.UUID:
    matches = list(by_name)
    if not matches and len(ref) >= MIN_PREFIX:
        matches = [(i, n) for i, n in rows if str(i).startswith(ref.lower())]
    if len(matches) == 1:
        return matches[0][0]
    if not matches:
        raise NotFound(kind, repr(ref))
    listed = ", ".join(f"{str(i)[:8]} ({n or 'untitled'})" for i, n in matches[:5])
    raise InvalidInput(f"{ref!r} matches {len(matches)} {kind}s: {listed}; give more of the id")


def find_world(uow: UnitOfWork, ref: str) -> World:
    try:
        return uow.worlds.require(uuid.UUID(ref))
    except ValueError:
        pass
    named = uow.worlds.named(ref)  # names are unique
    if named is not None:
        return named
    rows = [(w.id, w.name) for w in uow.worlds.list()]
    return uow.worlds.require(_pick("world", ref, [], rows))


def find_session(uow: UnitOfWork, ref: str, world_id: uuid.UUID | None = None) -> ChatSession:
    try:
        session = uow.sessions.require(uuid.UUID(ref))
    except ValueError:
        query = select(ChatSession.id, ChatSession.title)
        if world_id is not None:
            query = query.where(ChatSession.world_id == world_id)
        rows = [(i, t) for i, t in uow.session.execute(query).all()]
        named = [(i, t) for i, t in rows if t.strip().lower() == ref.strip().lower()]
        session = uow.sessions.require(_pick("session", ref, named, rows))
    if world_id is not None and session.world_id != world_id:
        raise InvalidInput(f"session {session.id} is not in that world")
    return session


def session_counts(uow: UnitOfWork) -> dict[uuid.UUID, int]:
    query = select(ChatSession.world_id, func.count()).group_by(ChatSession.world_id)
    return {world: int(n) for world, n in uow.session.execute(query).all()}

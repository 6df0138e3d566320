"""The sides of a branch (issue 25): when the proxy cannot tell "delete the last messages, then
send" from a branch, it forks, and the side the app no longer shows stays a session of its own,
holding what was deleted.  Such a side is *abandoned*: a session of a fork family (a fork, or a
session forked from) that a related session — its origin or one of its forks — has been matched
by a request since it last was.  Abandoned sides are listed apart (API, UI, CLI) and a person
archives them (no request matches them any more; their memory is kept) or deletes them with
their memory.  Nothing is deleted without being asked."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select

from loreweave.db.models import ChatSession
from loreweave.db.uow import UnitOfWork


def _seen(session: ChatSession) -> datetime:
    return session.last_matched_at or session.created_at


def abandoned(uow: UnitOfWork, world_id: uuid.UUID) -> dict[uuid.UUID, uuid.UUID]:
    """The world's abandoned sides: session id → the related session matched since."""
    sessions = {
        s.id: s
        for s in uow.session.scalars(
            select(ChatSession).where(
                ChatSession.world_id == world_id,
                or_(
                    ChatSession.forked_from_id.is_not(None),
                    ChatSession.id.in_(
                        select(ChatSession.forked_from_id).where(ChatSession.world_id == world_id)
                    ),
                ),
            )
        )
    }
    related: dict[uuid.UUID, set[uuid.UUID]] = {s: set() for s in sessions}
    for session in sessions.values():
        parent = session.forked_from_id
        if parent in sessions:
            related[session.id].add(parent)
            related[parent].add(session.id)
    found = {}
    for session_id, others in related.items():
        session = sessions[session_id]
        if session.archived_at is not None:
            continue
        newer = [
            o for o in others if sessions[o].last_matched_at and _seen(sessions[o]) > _seen(session)
        ]
        if newer:
            found[session_id] = max(newer, key=lambda o: _seen(sessions[o]))
    return found

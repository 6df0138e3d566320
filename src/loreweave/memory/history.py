"""Time travel (DESIGN §1.7): a session's notes as they were after turn *n*, and what one
observer knew then, built from note revisions and events without an LLM call.

The narrator's note as of *n* is the note before the first event of a turn after *n* was folded
into it (:func:`loreweave.memory.transcript.note_as_of`, what a cut and a fork use); an
observer's view as of *n* is the events of turns up to *n* that it knew (DESIGN §1.6), and the
narrator's note of then only where it knew every one of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from loreweave.db.models import ChatSession, LoreEntry, NoteUpdateTask, SessionNote
from loreweave.db.repositories import visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.memory import observer as observers
from loreweave.memory.changes import Names
from loreweave.memory.observer import Observer
from loreweave.memory.transcript import note_as_of


@dataclass(frozen=True)
class EventThen:
    turn_index: int
    summary: str
    status: str
    known_by: list[str]  # witnesses by name; empty: public


@dataclass(frozen=True)
class NoteThen:
    lore_entry_id: uuid.UUID
    title: str
    text: str
    version: int  # 0: no narrator's note in the view
    last_turn: int | None
    events: list[EventThen]


@dataclass(frozen=True)
class _Narrated:
    text: str
    version: int
    last_turn: int | None


def _narrated(
    uow: UnitOfWork, note: SessionNote, tasks: Sequence[NoteUpdateTask], turn: int
) -> _Narrated | None:
    """The narrator's note after turn ``turn`` (None: it had none yet)."""
    before = note_as_of(uow.notes.revisions(note.id), tasks, turn + 1)
    if before is None:
        return _Narrated(note.note_content, note.version, note.last_updated_turn)
    if before.version == 0:
        return None
    return _Narrated(before.text, before.version, before.last_turn)


def notes_as_of(
    uow: UnitOfWork, session: ChatSession, turn: int, viewer: Observer | None
) -> list[NoteThen]:
    """The session's notes after turn ``turn``: the narrator's (``viewer`` None), or what
    ``viewer`` knew of each entity then, with the events it knew."""
    entries = {
        e.id: e
        for e in uow.session.scalars(select(LoreEntry).where(visible_in(session)))
        if e.origin_session_id != session.id or (e.origin_turn_index or 0) <= turn
    }
    all_tasks = uow.session.scalars(
        select(NoteUpdateTask)
        .where(NoteUpdateTask.session_id == session.id)
        .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at, NoteUpdateTask.id)
    ).all()
    events = {
        entry_id: [e for e in rows if e.turn_index <= turn]
        for entry_id, rows in observers.events_by_entry(uow, session.id, entries).items()
    }
    met = observers.met_by(uow, session.id, entries) if viewer is not None else {}
    names = Names(uow)
    found = []
    for note in uow.notes.in_session(session.id):
        entry = entries.get(note.lore_entry_id)
        if entry is None:
            continue
        key_tasks = [t for t in all_tasks if t.lore_entry_id == entry.id]
        narrated = _narrated(uow, note, key_tasks, turn)
        then = events.get(entry.id, [])
        if viewer is None:
            if narrated is not None:
                found.append(_then(entry, narrated, then, names))
            continue
        if not observers.sees(viewer, entry, session.id, met.get(entry.id, [])):
            continue
        known = [e for e in then if viewer.knows(e.known_by or [])]
        if not known:
            continue
        if narrated is not None and observers.knows_all(viewer, then):
            found.append(_then(entry, narrated, known, names))
        else:
            text = "\n".join(e.update_summary for e in known)
            found.append(_then(entry, _Narrated(text, 0, known[-1].turn_index), known, names))
    return sorted(found, key=lambda n: (n.title, str(n.lore_entry_id)))


def _then(
    entry: LoreEntry, narrated: _Narrated, events: Sequence[NoteUpdateTask], names: Names
) -> NoteThen:
    return NoteThen(
        entry.id,
        entry.title,
        narrated.text,
        narrated.version,
        narrated.last_turn,
        [
            EventThen(e.turn_index, e.update_summary, e.status, names.witnesses(e.known_by or []))
            for e in events
        ],
    )

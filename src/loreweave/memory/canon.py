"""Canon drift (DESIGN §1.7): per lore entry, the sessions whose note departs from its lore, and
a merge of a note into the lore proposed by the rewrite model (never applied by itself: a person
writes the canon, :meth:`loreweave.app.lore.LoreService.canon`).

A note written into canon restarts empty (the revision that replaced its text says ``canon``):
the turns a note covers are those of the events folded into it since.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from loreweave.config import LLMConfig
from loreweave.db.models import ChatSession, LoreEntry, NoteUpdateTask, SessionNote
from loreweave.db.uow import UnitOfWork
from loreweave.llm.prompts.rewrite import REWRITE, rewrite_max_tokens
from loreweave.llm.types import ChatModel
from loreweave.memory.rewrite import clean_rewrite

CANON = "canon"  # the reason of the note revision a canon writes


@dataclass(frozen=True)
class DriftedNote:
    session_id: uuid.UUID
    session_title: str
    text: str
    version: int
    turns: list[int]


@dataclass(frozen=True)
class Drift:
    lore_entry_id: uuid.UUID
    title: str
    lore: str
    notes: list[DriftedNote]


def _departs(note: SessionNote, entry: LoreEntry) -> bool:
    text = " ".join(note.note_content.split())
    return bool(text) and text != " ".join(entry.content.split())


def canon_version(uow: UnitOfWork, note: SessionNote) -> int:
    """The note version its last canon wrote (0: never written into canon)."""
    written = [r.version + 1 for r in uow.notes.revisions(note.id) if r.reason == CANON]
    return max(written, default=0)


def _turns(uow: UnitOfWork, note: SessionNote) -> list[int]:
    since = canon_version(uow, note)
    folded = uow.session.scalars(
        select(NoteUpdateTask.turn_index).where(
            NoteUpdateTask.session_id == note.session_id,
            NoteUpdateTask.lore_entry_id == note.lore_entry_id,
            NoteUpdateTask.applied_version > since,
        )
    )
    return sorted(set(folded))


def drift(uow: UnitOfWork, world_id: uuid.UUID) -> list[Drift]:
    """The world's entries that some session's note departs from, by title, each with those
    notes (their text, size and the turns they cover)."""
    uow.worlds.require(world_id)
    rows = uow.session.execute(
        select(SessionNote, LoreEntry, ChatSession)
        .join(LoreEntry, LoreEntry.id == SessionNote.lore_entry_id)
        .join(ChatSession, ChatSession.id == SessionNote.session_id)
        .where(ChatSession.world_id == world_id)
        .order_by(LoreEntry.title, LoreEntry.id, ChatSession.created_at)
    ).all()
    found: dict[uuid.UUID, Drift] = {}
    for note, entry, session in rows:
        if not _departs(note, entry):
            continue
        item = found.setdefault(entry.id, Drift(entry.id, entry.title, entry.content, []))
        item.notes.append(
            DriftedNote(
                session.id, session.title, note.note_content, note.version, _turns(uow, note)
            )
        )
    return list(found.values())


def propose(
    chat_model: ChatModel,
    config: LLMConfig,
    entry: LoreEntry,
    note: str,
    *,
    target_words: int | None,
) -> str:
    """The rewrite model's merge of a session's note into the entry's lore: the lore, rewritten
    with the note as its new event (the rewrite prompt, its answer checked as a note is)."""
    events: Sequence[str] = [note]
    request = REWRITE.request(
        config,
        max_tokens=rewrite_max_tokens(target_words),
        title=entry.title,
        entity_type=entry.entity_type,
        lore_entry_content=entry.content,
        current_session_note=entry.content,
        events=list(events),
        target_words=target_words,
    )
    answer = chat_model.complete(request)
    return clean_rewrite(answer.text, before=entry.content, lore=entry.content, events=[note])

"""Composite documents (DESIGN §1.3): one text per entity per session view, and the search keys
that find it.  This module is the only place that builds either.

    with a note:    f"[Base Lore]\\n{lore_content}\\n\\n[Session-Specific Notes]\\n{note_content}"
    without a note: f"[Base Lore]\\n{lore_content}"

Which documents an entry has: a world-level entry has a *base* document (no session) and one
*overlay* document per session holding a note on it; an entry a session created has only its
overlay document in that session, until it is promoted to the world.

What the chat model receives is always the whole document.  It is *found* through several search
keys, each a vector row: the document itself, the note alone (the entity's current state, not
diluted by its older lore), and, when the lore or the note is longer than ``chunk_words``, chunks
of it, so that an embedder's input limit never silently cuts the newest facts of a long note.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from loreweave.config import CompositeDocumentConfig
from loreweave.db.models import LoreEntry, SessionNote

DOCUMENT_PART = "document"
KNOWN_PREFIX = "[Known to {observer}]"  # an observer's view: what it knows of the entity
CHUNK_OVERLAP = 0.2  # of a chunk, repeated at the start of the next one
_WORDS = re.compile(r"\S+")


def composite_text(
    lore_content: str, note_content: str | None, config: CompositeDocumentConfig
) -> str:
    base = f"{config.base_lore_prefix}\n{lore_content}"
    if not note_content:
        return base
    return f"{base}{config.separator}{config.session_notes_prefix}\n{note_content}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DocumentKey:
    """Which document: ``session_id`` None is the world tier's base document."""

    lore_entry_id: uuid.UUID
    session_id: uuid.UUID | None


@dataclass(frozen=True)
class SearchKey:
    """One vector of a document: ``part`` is ``document``, ``note``, ``note.N`` or ``lore.N``."""

    part: str
    text: str

    @property
    def hash(self) -> str:
        return text_hash(self.text)


@dataclass(frozen=True)
class CompositeDocument:
    key: DocumentKey
    world_id: uuid.UUID
    lore: str
    note: str | None
    text: str

    @property
    def hash(self) -> str:
        return text_hash(self.text)


def compose(
    key: DocumentKey,
    world_id: uuid.UUID,
    lore: str,
    note: str | None,
    config: CompositeDocumentConfig,
) -> CompositeDocument:
    """The one builder of composite documents."""
    note = note or None
    return CompositeDocument(key, world_id, lore, note, composite_text(lore, note, config))


def observer_text(
    lore_content: str, events: Sequence[str], observer: str, config: CompositeDocumentConfig
) -> str:
    """An entity as one observer knows it (DESIGN §1.6): its base lore, then the events of it
    that the observer witnessed or that are public, oldest first, one a line::

        f"[Base Lore]\\n{lore}\\n\\n[Known to {observer}]\\n- {event}\\n- {event}"

    Without such events, the base document alone.  Never a session note: the note is the
    narrator's, and may hold what this observer must not know."""
    base = f"{config.base_lore_prefix}\n{lore_content}"
    if not events:
        return base
    lines = "\n".join(f"- {event}" for event in events)
    return f"{base}{config.separator}{KNOWN_PREFIX.format(observer=observer)}\n{lines}"


def chunks(text: str, words: int) -> list[str]:
    """``text`` in pieces of at most ``words`` words, each repeating the end of the previous
    one; a text that fits is one piece."""
    tokens = _WORDS.findall(text)
    if len(tokens) <= words:
        return [text]
    step = max(1, words - int(words * CHUNK_OVERLAP))
    starts = range(0, len(tokens) - words + step, step)
    return [" ".join(tokens[start : start + words]) for start in starts]


def search_keys(document: CompositeDocument, chunk_words: int) -> list[SearchKey]:
    """The search keys of ``document``, always in the same order for the same text."""
    keys = [SearchKey(DOCUMENT_PART, document.text)]
    if document.note:
        pieces = chunks(document.note, chunk_words)
        if len(pieces) == 1:
            keys.append(SearchKey("note", document.note))
        else:
            keys += [SearchKey(f"note.{i}", piece) for i, piece in enumerate(pieces)]
    lore = chunks(document.lore, chunk_words)
    if len(lore) > 1:
        keys += [SearchKey(f"lore.{i}", piece) for i, piece in enumerate(lore)]
    return keys


def session_view(
    entry: LoreEntry,
    note: SessionNote | None,
    session_id: uuid.UUID,
    config: CompositeDocumentConfig,
) -> CompositeDocument:
    """The document of ``entry`` as session ``session_id`` sees it (``note``: its note there)."""
    overlay = note is not None or entry.origin_session_id == session_id
    key = DocumentKey(entry.id, session_id if overlay else None)
    return compose(key, entry.world_id, entry.content, note.note_content if note else None, config)


def documents_for(
    entry: LoreEntry, notes: list[SessionNote], config: CompositeDocumentConfig
) -> list[CompositeDocument]:
    """Every document ``entry`` should have, given its notes (of any sessions)."""
    by_session = {note.session_id: note for note in notes}
    if entry.origin_session_id is not None:
        note = by_session.get(entry.origin_session_id)
        key = DocumentKey(entry.id, entry.origin_session_id)
        return [
            compose(key, entry.world_id, entry.content, note.note_content if note else None, config)
        ]
    documents = [compose(DocumentKey(entry.id, None), entry.world_id, entry.content, None, config)]
    for session_id, note in sorted(by_session.items(), key=lambda item: str(item[0])):
        key = DocumentKey(entry.id, session_id)
        documents.append(compose(key, entry.world_id, entry.content, note.note_content, config))
    return documents

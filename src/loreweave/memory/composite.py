"""Composite documents (DESIGN §1.3): one text per entity per session view.

    with a note:    f"[Base Lore]\\n{lore_content}\\n\\n[Session-Specific Notes]\\n{note_content}"
    without a note: f"[Base Lore]\\n{lore_content}"

Which documents an entry has: a world-level entry has a *base* document (no session) and one
*overlay* document per session holding a note on it; an entry a session created has only its
overlay document in that session, until it is promoted to the world.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from loreweave.config import CompositeDocumentConfig
from loreweave.db.models import LoreEntry, SessionNote


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
class CompositeDocument:
    key: DocumentKey
    world_id: uuid.UUID
    text: str

    @property
    def hash(self) -> str:
        return text_hash(self.text)


def documents_for(
    entry: LoreEntry, notes: list[SessionNote], config: CompositeDocumentConfig
) -> list[CompositeDocument]:
    """Every document ``entry`` should have, given its notes (of any sessions)."""
    by_session = {note.session_id: note for note in notes}
    if entry.origin_session_id is not None:
        note = by_session.get(entry.origin_session_id)
        text = composite_text(entry.content, note.note_content if note else None, config)
        key = DocumentKey(entry.id, entry.origin_session_id)
        return [CompositeDocument(key, entry.world_id, text)]
    documents = [
        CompositeDocument(
            DocumentKey(entry.id, None), entry.world_id, composite_text(entry.content, None, config)
        )
    ]
    for session_id, note in sorted(by_session.items(), key=lambda item: str(item[0])):
        text = composite_text(entry.content, note.note_content, config)
        documents.append(CompositeDocument(DocumentKey(entry.id, session_id), entry.world_id, text))
    return documents

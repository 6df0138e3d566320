"""NoteRewriteWorker (the spec's steps): load the entry and the current note, fold the pending
events of one (session, entry) key into ONE rewrite call, then — in one transaction — save the
note (version + 1, with a revision of the previous text), mark the events done, and write the
composite document's new vector.  The save is a compare-and-set on the note version that was
read.  On any failure the previous note stays."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from loreweave.db.models import NoteUpdateTask
from loreweave.errors import ConcurrentChange, InvalidResponse
from loreweave.llm.templates import render
from loreweave.llm.types import ChatRequest, Matrix, Message
from loreweave.memory.composite import CompositeDocument, DocumentKey, compose
from loreweave.memory.ports import Job, Outcome
from loreweave.memory.task_worker import MemoryWorker

log = logging.getLogger("loreweave.rewrite")

ECHOED_LABELS = ("New Session Note:", "Session Note:")
MIN_RUNAWAY_LIMIT = 4_000
CAS_ATTEMPTS = 3  # rewrites of one job when the note keeps changing under it


@dataclass(frozen=True)
class Batch:
    """The claimed events of one key, in turn order."""

    task_ids: list[uuid.UUID]
    session_id: uuid.UUID
    lore_entry_id: uuid.UUID
    events: list[str]
    last_turn: int

    @classmethod
    def of(cls, tasks: Sequence[NoteUpdateTask]) -> Batch:
        return cls(
            [t.id for t in tasks],
            tasks[0].session_id,
            tasks[0].lore_entry_id,
            [t.update_summary for t in tasks],
            max(t.turn_index for t in tasks),
        )

    def describe(self) -> str:
        return f"key=({self.session_id}, {self.lore_entry_id}) events={len(self.task_ids)}"


def clean_rewrite(text: str, *, before: str, lore: str, events: list[str]) -> str:
    """The note an LLM answered, or InvalidResponse when it is empty or runs away."""
    note = text.strip()
    for label in ECHOED_LABELS:
        if note.startswith(label):
            note = note[len(label) :].strip()
    if not note:
        raise InvalidResponse("the rewrite is empty")
    limit = max(MIN_RUNAWAY_LIMIT, 3 * (len(before) + len(lore) + sum(map(len, events))))
    if len(note) > limit:
        raise InvalidResponse(f"the rewrite runs away: {len(note)} characters (limit {limit})")
    return note


class _NoteChanged(Exception):
    """The note is no longer the version the rewrite read."""


@dataclass(frozen=True)
class NoteRead:
    """What a rewrite is based on: the note version it read (0: no note yet)."""

    version: int
    before: str
    lore: str
    world_id: uuid.UUID
    prompt: str


class NoteRewriteWorker(MemoryWorker):
    def handle(self, job: Job[NoteUpdateTask]) -> Outcome:
        """Fold the claimed events of one key into one rewrite, saved only over the note version
        it read: when the note changed meanwhile (a rollback, a person's edit), read again and
        rewrite again, so such a change is never silently undone."""
        batch = Batch.of(job.rows)
        for _ in range(CAS_ATTEMPTS):
            read = self._read(batch)
            reply = self.chat_model.complete(
                ChatRequest(
                    (Message("user", read.prompt),),
                    self.llm_config.rewrite_model,
                    self.llm_config.temperature_rewrite,
                    prompt="rewrite",
                )
            )
            new_note = clean_rewrite(
                reply.text, before=read.before, lore=read.lore, events=batch.events
            )
            key = DocumentKey(batch.lore_entry_id, batch.session_id)
            document = compose(key, read.world_id, read.lore, new_note, self.vectors.config)
            matrix = self.vectors.embed([document])
            try:
                version = self._save(job, batch, read, new_note, document, matrix)
            except _NoteChanged:
                log.info("note of %s changed during its rewrite; rewriting", batch.describe())
                continue
            return Outcome(f"note version {version}")
        raise ConcurrentChange(
            f"the note changed during each of {CAS_ATTEMPTS} rewrites; trying again later"
        )

    def _read(self, batch: Batch) -> NoteRead:
        with self.uow(read_only=True) as uow:
            entry = uow.entries.require(batch.lore_entry_id)
            note = uow.notes.for_entry(batch.session_id, entry.id)
            before = note.note_content if note else ""
            prompt = render(
                "rewrite",
                title=entry.title,
                entity_type=entry.entity_type,
                lore_entry_content=entry.content,
                current_session_note=before,
                events=batch.events,
            )
            return NoteRead(
                note.version if note else 0, before, entry.content, entry.world_id, prompt
            )

    def _save(
        self,
        job: Job[NoteUpdateTask],
        batch: Batch,
        read: NoteRead,
        new_note: str,
        document: CompositeDocument,
        matrix: Matrix,
    ) -> int:
        """Save the note, its revision, the events' done status and the composite vector in one
        transaction — or raise _NoteChanged (nothing saved) if the note is not the version read."""
        resync = False
        with job.finishing() as uow:
            current = uow.notes.for_entry(batch.session_id, batch.lore_entry_id, lock=True)
            if (current.version if current else 0) != read.version:
                raise _NoteChanged
            last_turn = max(batch.last_turn, (current.last_updated_turn or 0) if current else 0)
            note = uow.notes.write(batch.session_id, batch.lore_entry_id, new_note, turn=last_turn)
            for task_id in batch.task_ids:
                uow.session.get_one(NoteUpdateTask, task_id).applied_version = note.version
            entry = uow.entries.require(batch.lore_entry_id)
            if entry.content == read.lore:
                self.vectors.write(uow, [document], matrix)
            else:
                resync = True  # the lore was edited meanwhile: embed what is true now
            version = note.version
        if resync:
            self.vectors.sync_entry(batch.lore_entry_id, batch.session_id)
        return version

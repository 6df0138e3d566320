"""NoteRewriteWorker (the spec's steps): load the entry and the current note, fold the pending
events of one (session, entry) key into ONE rewrite call, then — in one transaction — save the
note (version + 1, with a revision of the previous text), mark the events done, and write the
composite document's new vector.  The save is a compare-and-set on the note version that was
read.  On any failure the previous note stays.

When several entities of a session wait together, one call rewrites their notes
(``rewrite.batch``, answered as JSON); each note is checked on its own, and an entity whose part
is missing or unusable is rewritten alone with the spec's prompt.  The notes are saved in one
transaction.  The prompt asks for notes of about ``note_target_words`` words, so a long session
does not make every rewrite longer and dearer.  A note that does not exist yet is its events
(``rewrite_first_note`` off, the default): rewriting nothing with them costs a call and says
no more."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loreweave.config import LLMConfig
from loreweave.db.models import NoteUpdateTask
from loreweave.errors import ConcurrentChange, InvalidResponse
from loreweave.llm.prompts.rewrite import REWRITE, REWRITE_BATCH, BatchRewriteResult
from loreweave.llm.types import ChatModel, ChatRequest, Matrix
from loreweave.memory.batch import each_or_alone
from loreweave.memory.composite import CompositeDocument, DocumentKey, compose
from loreweave.memory.ports import Job, Outcome, UnitOfWorkFactory, VectorWriter
from loreweave.memory.task_worker import MemoryWorker

log = logging.getLogger("loreweave.rewrite")

ECHOED_LABELS = ("New Session Note:", "Session Note:")
MIN_RUNAWAY_LIMIT = 4_000
CAS_ATTEMPTS = 3  # rewrites of one job when a note keeps changing under it


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

    @classmethod
    def per_key(cls, tasks: Sequence[NoteUpdateTask]) -> list[Batch]:
        """The claimed tasks grouped by entry, keys in the order they were claimed."""
        keys: dict[uuid.UUID, list[NoteUpdateTask]] = {}
        for task in tasks:
            keys.setdefault(task.lore_entry_id, []).append(task)
        return [cls.of(key_tasks) for key_tasks in keys.values()]

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
    """A note is no longer the version the rewrite read."""


@dataclass(frozen=True)
class NoteRead:
    """What a rewrite is based on: the note version it read (0: no note yet)."""

    batch: Batch
    version: int
    before: str
    lore: str
    title: str
    entity_type: str
    world_id: uuid.UUID

    def context(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "entity_type": self.entity_type,
            "lore_entry_content": self.lore,
            "current_session_note": self.before,
            "events": self.batch.events,
        }

    def clean(self, text: str) -> str:
        return clean_rewrite(text, before=self.before, lore=self.lore, events=self.batch.events)


class NoteRewriteWorker(MemoryWorker):
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        chat_model: ChatModel,
        vectors: VectorWriter,
        llm_config: LLMConfig,
        target_words: int | None = None,
        *,
        rewrite_first_note: bool = False,
    ) -> None:
        super().__init__(uow, chat_model, vectors, llm_config)
        self.target_words = target_words
        self.rewrite_first_note = rewrite_first_note

    def handle(self, job: Job[NoteUpdateTask]) -> Outcome:
        """Fold the claimed events of each key into its new note — one call for all the keys —
        saved only over the note versions it read: when a note changed meanwhile (a rollback, a
        person's edit), read again and rewrite again, so such a change is never silently
        undone."""
        batches = Batch.per_key(job.rows)
        for _ in range(CAS_ATTEMPTS):
            reads = [self._read(batch) for batch in batches]
            notes = self._rewrite(reads)
            documents = [
                compose(
                    DocumentKey(read.batch.lore_entry_id, read.batch.session_id),
                    read.world_id,
                    read.lore,
                    note,
                    self.vectors.config,
                )
                for read, note in zip(reads, notes, strict=True)
            ]
            matrix = self.vectors.embed(documents)
            try:
                versions = self._save(job, reads, notes, documents, matrix)
            except _NoteChanged:
                log.info("a note of %s changed during its rewrite; rewriting", job.rows[0].id)
                continue
            if len(versions) == 1:
                return Outcome(f"note version {versions[0]}")
            return Outcome(f"{len(versions)} notes, versions {versions}")
        raise ConcurrentChange(
            f"a note changed during each of {CAS_ATTEMPTS} rewrites; trying again later"
        )

    # -- the LLM --------------------------------------------------------------------------------
    def _rewrite(self, reads: list[NoteRead]) -> list[str]:
        """The new note of each read.  A note that does not exist yet is its events, in order
        (all a rewrite of nothing can say; no call), unless ``rewrite_first_note``; the others
        by one call for all, and alone those it did not do well."""
        notes: dict[int, str] = {}
        for i, read in enumerate(reads):
            if not read.before and not self.rewrite_first_note:
                notes[i] = read.clean(" ".join(event.strip() for event in read.batch.events))
        asked = [read for i, read in enumerate(reads) if i not in notes]
        written = iter(self._ask(asked) if asked else [])
        return [notes[i] if i in notes else next(written) for i in range(len(reads))]

    def _ask(self, reads: list[NoteRead]) -> list[str]:
        """The new notes of ``reads`` from the LLM: one call for all, alone those it spoiled."""
        if len(reads) == 1:
            return [self._alone(reads[0])]
        request = REWRITE_BATCH.request(
            self.llm_config,
            entities=[{"ref": f"E{i}", **read.context()} for i, read in enumerate(reads, 1)],
            target_words=self.target_words,
            parts=[self._single(read) for read in reads],
        )
        return each_or_alone(
            self.chat_model,
            request,
            BatchRewriteResult,
            lambda answer: answer.notes,
            [(f"E{i}", read) for i, read in enumerate(reads, 1)],
            lambda read, note: read.clean(note),
            self._alone,
        )

    def _single(self, read: NoteRead) -> ChatRequest:
        return REWRITE.request(self.llm_config, **read.context(), target_words=self.target_words)

    def _alone(self, read: NoteRead) -> str:
        return read.clean(self.chat_model.complete(self._single(read)).text)

    # -- the database ---------------------------------------------------------------------------
    def _read(self, batch: Batch) -> NoteRead:
        with self.uow(read_only=True) as uow:
            entry = uow.entries.require(batch.lore_entry_id)
            note = uow.notes.for_entry(batch.session_id, entry.id)
            return NoteRead(
                batch,
                note.version if note else 0,
                note.note_content if note else "",
                entry.content,
                entry.title,
                entry.entity_type,
                entry.world_id,
            )

    def _save(
        self,
        job: Job[NoteUpdateTask],
        reads: list[NoteRead],
        notes: list[str],
        documents: list[CompositeDocument],
        matrix: Matrix,
    ) -> list[int]:
        """Save the notes, their revisions, the events' done status and the composite vectors in
        one transaction — or raise _NoteChanged (nothing saved) if a note is not the version
        read."""
        matrices = self.vectors.per_document(documents, matrix)
        resync: list[NoteRead] = []
        versions = []
        with job.finishing() as uow:
            for row, (read, new_note, document) in enumerate(
                zip(reads, notes, documents, strict=True)
            ):
                batch = read.batch
                current = uow.notes.for_entry(batch.session_id, batch.lore_entry_id, lock=True)
                if (current.version if current else 0) != read.version:
                    raise _NoteChanged
                last_turn = max(batch.last_turn, (current.last_updated_turn or 0) if current else 0)
                note = uow.notes.write(
                    batch.session_id, batch.lore_entry_id, new_note, turn=last_turn
                )
                for task_id in batch.task_ids:
                    uow.session.get_one(NoteUpdateTask, task_id).applied_version = note.version
                entry = uow.entries.require(batch.lore_entry_id)
                if entry.content == read.lore:
                    self.vectors.write(uow, [document], matrices[row])
                else:
                    resync.append(read)  # the lore was edited meanwhile: embed what is true now
                versions.append(note.version)
        for read in resync:
            self.vectors.sync_entry(read.batch.lore_entry_id, read.batch.session_id)
        return versions

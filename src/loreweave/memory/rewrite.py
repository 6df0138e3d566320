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

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from loreweave.db.models import LoreEntry, NoteUpdateTask
from loreweave.db.repositories import visible_in
from loreweave.errors import ConcurrentChange, InvalidResponse
from loreweave.llm.prompts.rewrite import (
    REWRITE,
    REWRITE_BATCH,
    REWRITE_LABELS,
    REWRITE_NOTE,
    batch_rewrite_schema,
    note_max_chars,
    note_schema,
    rewrite_max_tokens,
)
from loreweave.llm.structured import repair_request
from loreweave.llm.types import ChatRequest, ChatResponse, Matrix
from loreweave.memory import answers, review
from loreweave.memory.batch import each_or_alone
from loreweave.memory.composite import CompositeDocument, DocumentKey, compose
from loreweave.memory.grounding import new_names
from loreweave.memory.ports import Job, Outcome
from loreweave.memory.task_worker import MemoryWorker
from loreweave.memory.usable import (
    copied_placeholder,
    joined_without_repeats,
    repetition,
    without_labels,
)
from loreweave.validation import scrub

log = logging.getLogger("loreweave.rewrite")

# the rewrite prompts' own words: a note that borrows one ("Rewrite", "Event") names no stranger
PROMPT_WORDS = f"{REWRITE.wording()}\n{REWRITE_BATCH.wording()}"
MIN_RUNAWAY_LIMIT = 4_000
CAS_ATTEMPTS = 3  # rewrites of one job when a note keeps changing under it
REPAIR_NOTE = (
    "Your note could not be used: {error}.\n"
    "Write the complete note again: say each thing once, only what the lore, the current note "
    "and the events say, and nothing before or after the note."
)


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


def _not_a_note(note: str, asked: str, inputs: str) -> str | None:
    """Why ``note`` is no note at all: JSON, its prompt echoed, a placeholder copied."""
    placeholder = copied_placeholder(note)
    if placeholder is not None:
        return f"the rewrite copies the prompt's placeholder {placeholder!r}"
    return answers.as_json(note) or answers.echoed(note, asked, inputs)


def without_prompt_labels(text: str) -> str:
    """A rewrite's answer without what it echoed of its prompt: the rewrite prompts' labels
    ("New Session Note:", "[New Event]:") and sentences about the note rather than of it ("The
    note remains unchanged.", "I've added a detail…")."""
    return without_labels(text, REWRITE_LABELS)


def clean_rewrite(
    text: str,
    *,
    before: str,
    lore: str,
    events: list[str],
    title: str = "",
    entity_type: str = "",
    grounded: bool = False,
    max_chars: int | None = None,
    asked: str = "",
) -> str:
    """The note an LLM answered, or InvalidResponse when it is empty, is JSON, echoes its
    prompt (``asked``), runs away, repeats itself (what the note and its events already
    repeated aside), copies a placeholder, or (with ``grounded``) names someone its title,
    lore, old note and events never do.  The prompts' labels it echoed are taken off first."""
    note = without_prompt_labels(scrub(text))
    if not note:
        raise InvalidResponse("the rewrite is empty")
    no_note = _not_a_note(note, asked, "\n".join([title, lore, before, *events]))
    if no_note is not None:
        raise InvalidResponse(no_note)
    limit = max(MIN_RUNAWAY_LIMIT, 3 * (len(before) + len(lore) + sum(map(len, events))))
    if len(note) > limit:
        raise InvalidResponse(f"the rewrite runs away: {len(note)} characters (limit {limit})")
    if max_chars is not None and len(note) > max_chars:
        raise InvalidResponse(
            f"the note is {len(note)} characters, over its bound of {max_chars}: keep what "
            "matters now, shorter"
        )
    loop = repetition(note, given="\n".join([before, *events]))
    if loop is not None:
        raise InvalidResponse(f"the rewrite {loop}")
    if grounded:
        given = "\n".join([title, entity_type, PROMPT_WORDS, lore, before, *events])
        strangers = new_names(note, given)
        if strangers:
            raise InvalidResponse(f"the rewrite names what its inputs never do: {strangers[:5]}")
    return note


def _asked(request: ChatRequest) -> str:
    """The prompt of a rewrite request (what an answer must not echo)."""
    return request.messages[0].content


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
    known: str = ""  # the names of the entities the session can see (grounding: not strangers)

    def context(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "entity_type": self.entity_type,
            "lore_entry_content": self.lore,
            "current_session_note": self.before,
            "events": self.batch.events,
        }

    def clean(
        self, text: str, *, grounded: bool, max_chars: int | None = None, asked: str = ""
    ) -> str:
        return clean_rewrite(
            text,
            before=self.before,
            lore=self.lore,
            events=self.batch.events,
            title=f"{self.title}\n{self.known}",
            entity_type=self.entity_type,
            grounded=grounded,
            max_chars=max_chars,
            asked=asked,
        )


class NoteRewriteWorker(MemoryWorker):
    @property
    def target_words(self) -> int | None:
        return self.limits.note_target_words

    @property
    def _checks(self) -> dict[str, Any]:
        """What a rewritten note is held to: grounding, and its bound (from its target)."""
        bound = note_max_chars(self.target_words)
        return {"grounded": self.limits.ground_notes, "max_chars": bound}

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
        (all a rewrite of nothing can say; no call), unless ``rewrite_first_note``; in the lean
        mode every note is its events appended while it stays within its bound.  The others by
        one call for all (in the lean mode: a condensation), and alone those it did not do
        well."""
        notes: dict[int, str] = {}
        for i, read in enumerate(reads):
            appended = self._appended(read)
            if appended is not None:
                notes[i] = appended
        asked = [read for i, read in enumerate(reads) if i not in notes]
        written = iter(self._ask(asked) if asked else [])
        return [notes[i] if i in notes else next(written) for i in range(len(reads))]

    def _appended(self, read: NoteRead) -> str | None:
        """The note as its events appended, when that needs no call: any note in the lean
        mode, a first note in the full one (unless ``rewrite_first_note``); None when it would
        pass the note's bound (longer events are written into a note) or a rewrite is asked
        for."""
        if self.limits.mode != "lean" and (read.before or self.limits.rewrite_first_note):
            return None
        appended = joined_without_repeats(read.batch.events, after=read.before)
        return appended if len(appended) <= note_max_chars(self.target_words) else None

    def _ask(self, reads: list[NoteRead]) -> list[str]:
        """The new notes of ``reads`` from the LLM: one call for all, alone those it spoiled."""
        if len(reads) == 1:
            return [self._alone(reads[0])]
        refs = [f"E{i}" for i in range(1, len(reads) + 1)]
        request = REWRITE_BATCH.request(
            self.llm_config,
            schema=batch_rewrite_schema(refs, self.target_words),
            max_tokens=rewrite_max_tokens(self.target_words, len(reads)),
            entities=[
                {"ref": ref, **read.context()} for ref, read in zip(refs, reads, strict=True)
            ],
            target_words=self.target_words,
            parts=[self._single(read, plain=True) for read in reads],
        )
        return each_or_alone(
            self.chat_model,
            request,
            REWRITE_BATCH,
            lambda answer: answer.notes,
            list(zip(refs, reads, strict=True)),
            lambda read, note: read.clean(
                note, asked=_asked(self._single(read, plain=True)), **self._checks
            ),
            self._alone,
        )

    def _single(self, read: NoteRead, *, plain: bool = False) -> ChatRequest:
        """The rewrite of one note: the spec's plain text, or JSON with the note's bound in
        its schema (``rewrite_json``; a batch's parts stay plain)."""
        if self.limits.rewrite_json and not plain:
            return REWRITE_NOTE.request(
                self.llm_config,
                schema=note_schema(self.target_words),
                max_tokens=rewrite_max_tokens(self.target_words),
                **read.context(),
                target_words=self.target_words,
                as_json=True,
            )
        return REWRITE.request(
            self.llm_config,
            max_tokens=rewrite_max_tokens(self.target_words),
            **read.context(),
            target_words=self.target_words,
        )

    def _alone(self, read: NoteRead) -> str:
        """The spec's rewrite of one note; an unusable answer gets one repair request quoting
        its problem (as a structured answer does), then InvalidResponse: the note stays."""
        request = self._single(read)
        checks = {**self._checks, "asked": _asked(request)}
        if request.json_schema is not None:
            answer = REWRITE_NOTE.ask(self.chat_model, request)
            try:
                return read.clean(answer.note, **checks)
            except InvalidResponse as first:
                wrote = json.dumps({"note": answer.note}, ensure_ascii=False)
                repair = repair_request(request, wrote, REPAIR_NOTE.format(error=first))
                again = REWRITE_NOTE.ask(self.chat_model, repair)
                return read.clean(again.note, **checks)
        response = self.chat_model.complete(request)
        try:
            return self._usable(read, response, checks)
        except InvalidResponse as first:
            repair = repair_request(request, response.text, REPAIR_NOTE.format(error=first))
            return self._usable(read, self.chat_model.complete(repair), checks)

    @staticmethod
    def _usable(read: NoteRead, response: ChatResponse, checks: dict[str, Any]) -> str:
        if response.truncated:
            raise InvalidResponse("the rewrite was cut off at the token limit")
        return read.clean(response.text, **checks)

    # -- the database ---------------------------------------------------------------------------
    def _read(self, batch: Batch) -> NoteRead:
        with self.uow(read_only=True) as uow:
            entry = uow.entries.require(batch.lore_entry_id)
            note = uow.notes.for_entry(batch.session_id, entry.id)
            known = ""
            if self.limits.ground_notes:
                session = uow.sessions.require(batch.session_id)
                rows = uow.session.execute(
                    select(LoreEntry.title, LoreEntry.aliases).where(visible_in(session))
                )
                known = "\n".join(f"{title} {' '.join(aliases or [])}" for title, aliases in rows)
            return NoteRead(
                batch,
                note.version if note else 0,
                note.note_content if note else "",
                entry.content,
                entry.title,
                entry.entity_type,
                entry.world_id,
                known,
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
                if review.hold(
                    uow,
                    batch.session_id,
                    batch.lore_entry_id,
                    batch.task_ids,
                    version=read.version,
                    before=read.before,
                    after=new_note,
                ):
                    versions.append(read.version)  # proposed: a person applies it, or not
                    continue
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

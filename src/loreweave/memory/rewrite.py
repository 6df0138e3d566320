"""NoteRewriteWorker (the spec's steps): load the entry and the current note, fold the pending
events of one (session, entry) key into ONE rewrite call, then — in one transaction — save the
note (version + 1, with a revision of the previous text), mark the events done, and write the
composite document's new vector.  On any failure the previous note stays."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from loreweave.db.models import NoteUpdateTask, TaskStatus, utcnow
from loreweave.errors import InvalidResponse, LoreweaveError
from loreweave.llm.templates import render
from loreweave.llm.types import ChatRequest, Matrix, Message
from loreweave.memory.composite import CompositeDocument, DocumentKey, composite_text
from loreweave.memory.task_worker import TaskWorker
from loreweave.queue import claims

log = logging.getLogger("loreweave.rewrite")

ECHOED_LABELS = ("New Session Note:", "Session Note:")
MIN_RUNAWAY_LIMIT = 4_000


@dataclass(frozen=True)
class Batch:
    """The claimed events of one key, in turn order."""

    task_ids: list[uuid.UUID]
    session_id: uuid.UUID
    lore_entry_id: uuid.UUID
    events: list[str]
    last_turn: int
    attempt: int  # 1 for a first try

    def describe(self) -> str:
        ids = ",".join(str(i)[:8] for i in self.task_ids)
        return (
            f"tasks={ids} key=({self.session_id}, {self.lore_entry_id}) "
            f"events={len(self.task_ids)} attempt={self.attempt}"
        )


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


class NoteRewriteWorker(TaskWorker):
    def claim(self, worker_id: str) -> Batch | None:
        with self.database.uow() as uow:
            tasks = claims.claim_note_updates(
                uow.session,
                worker_id,
                self.queue_config.lease_seconds,
                self.queue_config.batch_size,
            )
            if not tasks:
                return None
            batch = Batch(
                [t.id for t in tasks],
                tasks[0].session_id,
                tasks[0].lore_entry_id,
                [t.update_summary for t in tasks],
                max(t.turn_index for t in tasks),
                max(t.retry_count for t in tasks) + 1,
            )
            uow.commit()
        return batch

    def run_once(self, worker_id: str) -> bool:
        batch = self.claim(worker_id)
        if batch is None:
            return False
        started = time.perf_counter()
        try:
            outcome = self._process(batch, worker_id)
        except LoreweaveError as exc:
            self.record_failure(NoteUpdateTask, batch.task_ids, worker_id, exc)
            log.warning("note rewrite %s failed: %s", batch.describe(), exc)
            return True
        log.info(
            "note rewrite %s: %s in %.2fs", batch.describe(), outcome, time.perf_counter() - started
        )
        self.notifier.notify("note_updates")  # later events of this key may be waiting
        return True

    def _process(self, batch: Batch, worker_id: str) -> str:
        with self.database.uow(read_only=True) as uow:
            entry = uow.entries.require(batch.lore_entry_id)
            note = uow.notes.for_entry(batch.session_id, entry.id)
            lore, before = entry.content, note.note_content if note else ""
            prompt = render(
                "rewrite",
                title=entry.title,
                entity_type=entry.entity_type,
                lore_entry_content=lore,
                current_session_note=before,
                events=batch.events,
            )
            world_id = entry.world_id
        reply = self.chat_model.complete(
            ChatRequest(
                (Message("user", prompt),),
                self.llm_config.rewrite_model,
                self.llm_config.temperature_rewrite,
                prompt="rewrite",
            )
        )
        new_note = clean_rewrite(reply.text, before=before, lore=lore, events=batch.events)
        document = CompositeDocument(
            DocumentKey(entry.id, batch.session_id),
            world_id,
            composite_text(lore, new_note, self.vectors.config),
        )
        matrix = self.vectors.embed([document])
        return self._save(batch, worker_id, new_note, document, lore, matrix)

    def _save(
        self,
        batch: Batch,
        worker_id: str,
        new_note: str,
        document: CompositeDocument,
        lore: str,
        matrix: Matrix,
    ) -> str:
        resync = False
        with self.database.uow() as uow:
            if not claims.still_owned(uow.session, NoteUpdateTask, batch.task_ids, worker_id):
                return "lease lost; discarded (another worker applies these events)"
            note = uow.notes.write(
                batch.session_id, batch.lore_entry_id, new_note, turn=batch.last_turn
            )
            now = utcnow()
            for task_id in batch.task_ids:
                task = uow.session.get_one(NoteUpdateTask, task_id)
                task.status = TaskStatus.DONE.value
                task.applied_version = note.version
                task.processed_at = now
                task.worker_id = None
                task.locked_until = None
            entry = uow.entries.require(batch.lore_entry_id)
            if entry.content == lore:
                self.vectors.write(uow, [document], matrix)
            else:
                resync = True  # the lore was edited meanwhile: embed what is true now
            uow.commit()
            version = note.version
        if resync:
            self.vectors.sync_entry(batch.lore_entry_id, batch.session_id)
        return f"note version {version}"

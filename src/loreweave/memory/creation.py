"""EntityCreationWorker (the spec's steps): the creation LLM writes a LoreEntry as JSON; it is
validated, then de-duplicated against every entry visible to the session — including creations
that committed while this one was in flight, since the check runs inside the write transaction,
serialised per session.  A duplicate becomes a note update of the existing entry, never a second
entity; a new entry is ``is_dynamically_generated`` with ``origin_session_id``, and its first
vector is written in the same transaction."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from loreweave.db.models import (
    ChatSession,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    TaskStatus,
    utcnow,
)
from loreweave.db.repositories import visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.errors import LoreweaveError
from loreweave.llm.schemas import CreatedEntity
from loreweave.llm.structured import complete_structured
from loreweave.llm.templates import render
from loreweave.llm.types import ChatRequest, Matrix, Message
from loreweave.memory.composite import CompositeDocument, DocumentKey, composite_text
from loreweave.memory.task_worker import TaskWorker
from loreweave.queue import claims
from loreweave.vectors.keywords import normalise_name

log = logging.getLogger("loreweave.creation")

MAX_TAGS = 20


@dataclass(frozen=True)
class CreationJob:
    task_id: uuid.UUID
    session_id: uuid.UUID
    entity_type: str
    summary: str
    turn_index: int
    attempt: int


def find_duplicate(uow: UnitOfWork, session: ChatSession, title: str) -> LoreEntry | None:
    """An entry visible to the session whose normalised title or alias equals ``title``'s."""
    wanted = normalise_name(title)
    for entry in uow.session.scalars(select(LoreEntry).where(visible_in(session))):
        names = [entry.title, *(entry.aliases or [])]
        if any(normalise_name(name) == wanted for name in names):
            return entry
    return None


class EntityCreationWorker(TaskWorker):
    def run_once(self, worker_id: str) -> bool:
        with self.database.uow() as uow:
            tasks = claims.claim_creations(
                uow.session,
                worker_id,
                self.queue_config.lease_seconds,
                self.queue_config.batch_size,
            )
            jobs = [
                CreationJob(
                    t.id,
                    t.session_id,
                    t.entity_type,
                    t.creation_summary,
                    t.turn_index,
                    t.retry_count + 1,
                )
                for t in tasks
            ]
            uow.commit()
        for job in jobs:
            self._run(job, worker_id)
        return bool(jobs)

    def _run(self, job: CreationJob, worker_id: str) -> None:
        started = time.perf_counter()
        try:
            outcome = self._process(job, worker_id)
        except LoreweaveError as exc:
            self.record_failure(EntityCreationTask, [job.task_id], worker_id, exc)
            log.warning(
                "entity creation task=%s attempt=%d failed: %s", job.task_id, job.attempt, exc
            )
            return
        log.info(
            "entity creation task=%s session=%s attempt=%d: %s in %.2fs",
            job.task_id,
            job.session_id,
            job.attempt,
            outcome,
            time.perf_counter() - started,
        )

    def _process(self, job: CreationJob, worker_id: str) -> str:
        request = ChatRequest(
            (
                Message(
                    "user",
                    render("creation", entity_type=job.entity_type, creation_summary=job.summary),
                ),
            ),
            self.llm_config.creation_model,
            self.llm_config.temperature_creation,
            prompt="creation",
        )
        created = complete_structured(self.chat_model, request, CreatedEntity)
        with self.database.uow(read_only=True) as uow:
            world_id = uow.sessions.require(job.session_id).world_id
        entry_id = uuid.uuid4()
        document = CompositeDocument(
            DocumentKey(entry_id, job.session_id),
            world_id,
            composite_text(created.content, None, self.vectors.config),
        )
        matrix = self.vectors.embed([document])
        return self._save(job, worker_id, created, entry_id, document, matrix)

    def _save(
        self,
        job: CreationJob,
        worker_id: str,
        created: CreatedEntity,
        entry_id: uuid.UUID,
        document: CompositeDocument,
        matrix: Matrix,
    ) -> str:
        with self.database.uow() as uow:
            session = self._lock_session(uow, job.session_id)
            if not claims.still_owned(uow.session, EntityCreationTask, [job.task_id], worker_id):
                return "lease lost; discarded"
            task = uow.session.get_one(EntityCreationTask, job.task_id)
            duplicate = find_duplicate(uow, session, created.title)
            if duplicate is not None:
                uow.session.add(
                    NoteUpdateTask(
                        lore_entry_id=duplicate.id,
                        session_id=job.session_id,
                        update_summary=job.summary,
                        turn_index=job.turn_index,
                    )
                )
                task.outcome, task.created_lore_entry_id = "merged", duplicate.id
                outcome = f"duplicate of {duplicate.title!r}: merged as a note update"
            else:
                uow.entries.add(
                    LoreEntry(
                        id=entry_id,
                        world_id=session.world_id,
                        title=created.title,
                        entity_type=job.entity_type,
                        content=created.content,
                        tags=list(dict.fromkeys(created.tags))[:MAX_TAGS],
                        aliases=[],
                        is_dynamically_generated=True,
                        origin_session_id=job.session_id,
                    )
                )
                self.vectors.write(uow, [document], matrix)
                task.outcome, task.created_lore_entry_id = "created", entry_id
                outcome = f"created {created.title!r}"
            task.status = TaskStatus.DONE.value
            task.processed_at = utcnow()
            task.worker_id, task.locked_until, task.error_message = None, None, None
            uow.commit()
        if duplicate is not None:
            self.notifier.notify("note_updates")
        return outcome

    @staticmethod
    def _lock_session(uow: UnitOfWork, session_id: uuid.UUID) -> ChatSession:
        """Serialise creations per session (SQLite: the write lock already does)."""
        query = select(ChatSession).where(ChatSession.id == session_id)
        if uow.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        session = uow.session.scalars(query).one_or_none()
        if session is None:
            return uow.sessions.require(session_id)
        return session

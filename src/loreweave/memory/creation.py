"""EntityCreationWorker (the spec's steps): the creation LLM writes a LoreEntry as JSON; it is
validated, then de-duplicated against every entry visible to the session — including creations
that committed while this one was in flight, since the check runs inside the write transaction,
serialised per session, and a session's creations run one at a time in turn order.  A duplicate
becomes a note update of the existing entry at its turn's place, never a second entity; a new
entry is ``is_dynamically_generated`` with ``origin_session_id``, and its first vector is
written in the same transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from loreweave.db.models import ChatSession, EntityCreationTask, LoreEntry, NoteUpdateTask
from loreweave.db.repositories import visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.llm.schemas import CreatedEntity
from loreweave.llm.structured import complete_structured
from loreweave.llm.templates import render
from loreweave.llm.types import ChatRequest, Matrix, Message
from loreweave.memory.composite import CompositeDocument, DocumentKey, compose
from loreweave.memory.ports import Job, Outcome
from loreweave.memory.task_worker import MemoryWorker
from loreweave.vectors.keywords import normalise_name

MAX_TAGS = 20


def find_duplicate(uow: UnitOfWork, session: ChatSession, title: str) -> LoreEntry | None:
    """An entry visible to the session whose normalised title or alias equals ``title``'s."""
    wanted = normalise_name(title)
    for entry in uow.session.scalars(select(LoreEntry).where(visible_in(session))):
        names = [entry.title, *(entry.aliases or [])]
        if any(normalise_name(name) == wanted for name in names):
            return entry
    return None


class EntityCreationWorker(MemoryWorker):
    def handle(self, job: Job[EntityCreationTask]) -> Outcome:
        task = job.rows[0]
        request = ChatRequest(
            (
                Message(
                    "user",
                    render(
                        "creation",
                        entity_type=task.entity_type,
                        creation_summary=task.creation_summary,
                    ),
                ),
            ),
            self.llm_config.creation_model,
            self.llm_config.temperature_creation,
            prompt="creation",
        )
        created = complete_structured(self.chat_model, request, CreatedEntity)
        with self.uow(read_only=True) as uow:
            world_id = uow.sessions.require(task.session_id).world_id
        entry_id = uuid.uuid4()
        key = DocumentKey(entry_id, task.session_id)
        document = compose(key, world_id, created.content, None, self.vectors.config)
        matrix = self.vectors.embed([document])
        return self._save(job, created, entry_id, document, matrix)

    def _save(
        self,
        job: Job[EntityCreationTask],
        created: CreatedEntity,
        entry_id: uuid.UUID,
        document: CompositeDocument,
        matrix: Matrix,
    ) -> Outcome:
        claimed = job.rows[0]
        with job.finishing() as uow:
            session = uow.sessions.lock(claimed.session_id)  # one creation at a time per session
            task = uow.session.get_one(EntityCreationTask, claimed.id)
            duplicate = find_duplicate(uow, session, created.title)
            if duplicate is not None:
                # the event joins the entry's note updates at its turn's place (the updates of
                # this turn and later ones wait for the session's creations up to this turn)
                uow.session.add(
                    NoteUpdateTask(
                        lore_entry_id=duplicate.id,
                        session_id=claimed.session_id,
                        update_summary=claimed.creation_summary,
                        turn_index=claimed.turn_index,
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
                        entity_type=claimed.entity_type,
                        content=created.content,
                        tags=list(dict.fromkeys(created.tags))[:MAX_TAGS],
                        aliases=[],
                        is_dynamically_generated=True,
                        origin_session_id=claimed.session_id,
                        origin_turn_index=claimed.turn_index,
                    )
                )
                self.vectors.write(uow, [document], matrix)
                task.outcome, task.created_lore_entry_id = "created", entry_id
                outcome = f"created {created.title!r}"
        # the session's later analyses and note updates waited for this creation
        return Outcome(outcome, {"note_updates": 1, "analysis": 1})

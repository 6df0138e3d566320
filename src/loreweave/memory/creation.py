"""EntityCreationWorker (the spec's steps): the creation LLM writes a LoreEntry as JSON; it is
validated, then de-duplicated against every entry visible to the session — including creations
that committed while this one was in flight, since the check runs inside the write transaction,
serialised per session, and a session's creations run one at a time in turn order.  A duplicate
becomes a note update of the existing entry at its turn's place, never a second entity; a new
entry is ``is_dynamically_generated`` with ``origin_session_id``, and its first vector is
written in the same transaction — or, in a session under manual review, it is stored proposed
(``review.hold_entry``): out of the session's view, its vector written once a person approves.

When several creations of a session wait together, one call writes them (``creation.batch``);
each entry is checked on its own, one whose part is missing or unusable is written alone with
the spec's prompt, and they are saved in order in one transaction, as if one by one."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from loreweave.db.models import ChatSession, EntityCreationTask, LoreEntry, NoteUpdateTask
from loreweave.db.repositories import visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.llm.prompts.creation import (
    CREATION,
    CREATION_BATCH,
    CREATION_NAMED,
    CreatedEntity,
    EntityContent,
    batch_creation_schema,
    created_entity_schema,
    creation_max_tokens,
)
from loreweave.llm.types import ChatRequest, Matrix
from loreweave.memory import answers, review
from loreweave.memory.batch import each_or_alone
from loreweave.memory.composite import CompositeDocument, DocumentKey, compose
from loreweave.memory.grounding import named_in
from loreweave.memory.names import normalise_name
from loreweave.memory.ports import ANALYSIS_QUEUE, NOTE_UPDATE_QUEUE, Job, Outcome
from loreweave.memory.task_worker import MemoryWorker
from loreweave.memory.transcript import refold
from loreweave.memory.usable import copied_placeholder

# what a title copied from the creation prompts is ("Entity name", "Creation Summary"…)
PROMPT_LABELS = frozenset(
    normalise_name(label) for label in (*CREATION.labels(), *CREATION_BATCH.labels())
)


def find_duplicate(uow: UnitOfWork, session: ChatSession, title: str) -> LoreEntry | None:
    """An entry visible to the session, or one it created that waits for review, whose
    normalised title or alias equals ``title``'s."""
    wanted = normalise_name(title)
    for entry in uow.session.scalars(select(LoreEntry).where(visible_in(session, proposed=True))):
        names = [entry.title, *(entry.aliases or [])]
        if any(normalise_name(name) == wanted for name in names):
            return entry
    return None


def named(name: str, written: EntityContent) -> CreatedEntity:
    """The entry of a newcomer its analysis named: that name, the model's content and tags
    (those copying a prompt's placeholder refused)."""
    return CreatedEntity(title=name, content=written.content, tags=usable_tags(written.tags))


def usable_tags(tags: list[str]) -> list[str]:
    """Tags once each, at most ``answers.MAX_TAGS``, without those copying a placeholder
    ("<keyword>")."""
    kept = [tag for tag in dict.fromkeys(tags) if copied_placeholder(tag) is None]
    return kept[: answers.MAX_TAGS]


def entry_of(task: EntityCreationTask, part: object) -> CreatedEntity:
    """A batch's answer for ``task``, checked as the single prompt's would be."""
    if task.name:
        return named(task.name, EntityContent.model_validate(part))
    return CreatedEntity.model_validate(part)


class EntityCreationWorker(MemoryWorker):
    def handle(self, job: Job[EntityCreationTask]) -> Outcome:
        tasks = list(job.rows)
        created = [
            self._bounded(task, made) for task, made in zip(tasks, self._write(tasks), strict=True)
        ]
        with self.uow(read_only=True) as uow:
            world_id = uow.sessions.require(tasks[0].session_id).world_id
        entry_ids = [uuid.uuid4() for _ in tasks]
        config = self.vectors.config
        documents = [
            compose(DocumentKey(entry_id, task.session_id), world_id, made.content, None, config)
            for entry_id, task, made in zip(entry_ids, tasks, created, strict=True)
        ]
        matrix = self.vectors.embed(documents)
        return self._save(job, created, entry_ids, documents, matrix)

    def _bounded(self, task: EntityCreationTask, made: CreatedEntity) -> CreatedEntity:
        """``made`` as it may be stored (:func:`answers.entry`: its content within
        ``max_entry_chars``, which the schema leaves out when long); a named newcomer whose
        content copies the prompt's placeholder is described by its analysis's summary instead
        (checked there), rather than lost."""
        if task.name and copied_placeholder(made.content) is not None:
            made = made.model_copy(update={"content": task.creation_summary})
        return answers.entry(made, self.limits.max_entry_chars)

    # -- the LLM --------------------------------------------------------------------------------
    def _write(self, tasks: list[EntityCreationTask]) -> list[CreatedEntity]:
        """The new entry of each task: one call for all, and alone those it did not do well;
        in the lean mode a newcomer its analysis named is its summary, with no call."""
        if self.limits.mode == "lean":
            summarised = {
                task.id: CreatedEntity(title=task.name, content=task.creation_summary, tags=[])
                for task in tasks
                if task.name
            }
            rest = [task for task in tasks if task.id not in summarised]
            written = iter(self._written(rest) if rest else [])
            return [summarised.get(task.id) or next(written) for task in tasks]
        return self._written(tasks)

    def _written(self, tasks: list[EntityCreationTask]) -> list[CreatedEntity]:
        """The new entry of each task by the creation model: one call for all, and alone those
        it did not do well."""
        if len(tasks) == 1:
            return [self._alone(tasks[0])]
        refs = [f"C{i}" for i in range(1, len(tasks) + 1)]
        chars = self.limits.max_entry_chars
        request = CREATION_BATCH.request(
            self.llm_config,
            schema=batch_creation_schema(refs, chars, [bool(task.name) for task in tasks]),
            max_tokens=creation_max_tokens(chars, len(tasks)),
            creations=[
                {
                    "ref": ref,
                    "entity_type": task.entity_type,
                    "name": task.name,
                    "creation_summary": task.creation_summary,
                }
                for ref, task in zip(refs, tasks, strict=True)
            ],
            parts=[self._single(task) for task in tasks],
        )
        return each_or_alone(
            self.chat_model,
            request,
            CREATION_BATCH,
            lambda answer: answer.entries,
            list(zip(refs, tasks, strict=True)),
            entry_of,
            self._alone,
        )

    def _single(self, task: EntityCreationTask) -> ChatRequest:
        chars = self.limits.max_entry_chars
        return CREATION.request(
            self.llm_config,
            schema=created_entity_schema(chars, named=bool(task.name)),
            max_tokens=creation_max_tokens(chars),
            entity_type=task.entity_type,
            name=task.name,
            creation_summary=task.creation_summary,
        )

    def _alone(self, task: EntityCreationTask) -> CreatedEntity:
        if task.name:
            written = CREATION_NAMED.ask(self.chat_model, self._single(task))
            return named(task.name, written)
        return CREATION.ask(self.chat_model, self._single(task))

    # -- the database ---------------------------------------------------------------------------
    def _ungrounded(
        self, uow: UnitOfWork, task: EntityCreationTask, made: CreatedEntity
    ) -> str | None:
        """Why the entry cannot be saved: its name occurs in none of the turns its analysis
        saw (its own and the earlier ones shown), or it copies a prompt's placeholder."""
        placeholder = copied_placeholder(f"{made.title}\n{made.content}")
        if placeholder is not None:
            return f"creation rejected: it copies the prompt's placeholder {placeholder!r}"
        if normalise_name(made.title) in PROMPT_LABELS:
            return f"creation rejected: its title {made.title!r} is the prompt's own label"
        if not self.limits.ground_creations:
            return None
        seen = uow.turns.recent(
            task.session_id, self.limits.analysis_history_turns + 1, before=task.turn_index + 1
        )
        said = "\n".join(f"{t.user_message}\n{t.assistant_message}" for t in seen)
        if named_in(made.title, said):
            return None
        return (
            f"creation of {made.title!r} rejected: the turn never names it "
            f"(summary: {task.creation_summary[:120]})"
        )

    def _add(
        self,
        uow: UnitOfWork,
        task: EntityCreationTask,
        entry: LoreEntry,
        document: CompositeDocument,
        matrix: Matrix,
    ) -> None:
        """A new entry, live with its first vector; under manual review, proposed instead
        (DESIGN §1.7): its vector is written once a person approves it."""
        uow.entries.add(entry)
        if not review.hold_entry(uow, entry, task):
            self.vectors.write(uow, [document], matrix)
        uow.session.flush()  # the next task of the batch sees it

    def _save(
        self,
        job: Job[EntityCreationTask],
        created: list[CreatedEntity],
        entry_ids: list[uuid.UUID],
        documents: list[CompositeDocument],
        matrix: Matrix,
    ) -> Outcome:
        """Each task in order, as if alone: a duplicate (also of an entry an earlier task of the
        batch just created) becomes a note update; the task's followups become the entry's note
        updates at their turns."""
        matrices = self.vectors.per_document(documents, matrix)
        outcomes = []
        updates = 0
        refolded: set[uuid.UUID] = set()
        with job.finishing() as uow:
            session = uow.sessions.lock(job.rows[0].session_id)  # one at a time per session
            for row, (claimed, made, entry_id) in enumerate(
                zip(job.rows, created, entry_ids, strict=True)
            ):
                task = uow.session.get_one(EntityCreationTask, claimed.id)
                duplicate = find_duplicate(uow, session, made.title)
                # an entity the session knows is no invention; a new one must be in the story
                ungrounded = None if duplicate else self._ungrounded(uow, task, made)
                if ungrounded is not None:
                    task.outcome, task.error_message = "rejected", ungrounded
                    for turn in uow.turns.recent(task.session_id, 1, before=task.turn_index + 1):
                        turn.processing_errors = "\n".join(
                            filter(None, [turn.processing_errors, ungrounded])
                        )
                    outcomes.append(ungrounded)
                    continue  # its followups were updates of an entity that is not
                if duplicate is not None:
                    # the event joins the entry's note updates at its turn's place (the updates
                    # of this turn and later ones wait for the session's creations up to it)
                    events = [(task.turn_index, task.creation_summary, task.known_by)]
                    task.outcome, task.created_lore_entry_id = "merged", duplicate.id
                    target = duplicate.id
                    outcomes.append(f"duplicate of {duplicate.title!r}: merged as a note update")
                else:
                    events = []
                    self._add(
                        uow,
                        task,
                        LoreEntry(
                            id=entry_id,
                            world_id=session.world_id,
                            title=made.title,
                            entity_type=task.entity_type,
                            content=made.content,
                            tags=usable_tags(made.tags),
                            aliases=[],
                            is_dynamically_generated=True,
                            origin_session_id=task.session_id,
                            origin_turn_index=task.turn_index,
                        ),
                        documents[row],
                        matrices[row],
                    )
                    task.outcome, task.created_lore_entry_id = "created", entry_id
                    target = entry_id
                    outcomes.append(f"created {made.title!r}")
                events += [
                    (f["turn_index"], f["update_summary"], f.get("known_by", []))
                    for f in task.followups
                ]
                added = []
                for turn_index, summary, known_by in events:
                    added.append(
                        NoteUpdateTask(
                            lore_entry_id=target,
                            session_id=task.session_id,
                            update_summary=summary,
                            turn_index=turn_index,
                            known_by=list(known_by),
                        )
                    )
                    uow.session.add(added[-1])
                    uow.session.flush()  # created_at order = the events' order
                # a creation retried after it was set aside comes after the entry's later
                # events: they are folded again after it, in order
                first = min(added, key=lambda t: t.turn_index) if added else None
                if duplicate is not None and first is not None and refold(uow, first).touched:
                    refolded.add(target)
                updates += len(events)
        for entry_id in refolded:
            self.vectors.sync_entry(entry_id, job.rows[0].session_id)
        # the session's later analyses and note updates waited for these creations
        wake = {NOTE_UPDATE_QUEUE: max(1, updates), ANALYSIS_QUEUE: 1}
        return Outcome("; ".join(outcomes), wake)

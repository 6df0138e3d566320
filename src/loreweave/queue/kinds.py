"""The spec's three job kinds (DESIGN §1.2, §3), each one object: its table, its claim, its
handler in the memory core, its settings, how its jobs read to a person.

Order is kept per key; a job that failed for good is set aside (a failure never stops the
story's memory) except a failed analysis, which holds its session's later turns:
- analysis: turns of a session in turn order, and after the creations of its earlier turns on
  their way or whose entry waits for review (the analysis must see the entities they created,
  and a creation merged as a duplicate becomes a note update that must come before the next
  turn's updates); a failed creation holds only its own follow-ups (they ride on it);
- note updates: per (session, entry) in (turn, creation) order, and after the session's
  creations of earlier turns on their way (one merged as a duplicate becomes an earlier event);
  a failed event is passed over, and its retry folds it in its place again (``refold``);
- entity creations: per session in (turn, creation) order.

Candidates are read in ``next_attempt_at`` order along the claim index and checked against
their key with the key indexes, so claiming stays flat as the backlog grows.  Batching (several
jobs in one LLM call) happens only when work waits.

A new kind is one more :class:`~loreweave.queue.jobs.JobKind` here (or in an application,
passed to ``bootstrap.build(kinds=KINDS.plus(...))``), beside its table and its handler.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from loreweave.config import (
    AnalysisQueueConfig,
    EntityCreationQueueConfig,
    NoteUpdateQueueConfig,
)
from loreweave.db.lifecycle import JobTables
from loreweave.db.models import (
    ON_ITS_WAY,
    UNFINISHED,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteProposal,
    NoteUpdateTask,
    TaskStatus,
)
from loreweave.db.uow import UnitOfWork
from loreweave.memory.analysis import AnalysisService
from loreweave.memory.creation import EntityCreationWorker
from loreweave.memory.ports import ANALYSIS_QUEUE, ENTITY_CREATION_QUEUE, NOTE_UPDATE_QUEUE
from loreweave.memory.rewrite import NoteRewriteWorker
from loreweave.memory.transcript import Reverted, lock_session, refold
from loreweave.queue.jobs import (
    Claim,
    Handler,
    JobKind,
    Kinds,
    Parts,
    earlier,
    is_ready,
    locking,
    ready,
    session_head,
)


# -- analysis -------------------------------------------------------------------------------------
@cache  # statements are immutable: built once (an alias costs more to build than to run)
def _earlier_creations_unfinished() -> ColumnElement[bool]:
    """True while a creation of the turn's session and of an earlier turn is on its way (one
    that failed for good is set aside: the analysis goes on as if its entity did not exist), or
    its entry waits for a person's review (approved, the analysis must see it; rejected, not)."""
    creation = aliased(EntityCreationTask)
    proposal = aliased(NoteProposal)
    entry = aliased(LoreEntry)
    return or_(
        exists().where(
            creation.session_id == ChatTurn.session_id,
            creation.status.in_(ON_ITS_WAY),
            creation.turn_index < ChatTurn.turn_index,
        ),
        exists().where(
            proposal.session_id == ChatTurn.session_id,
            entry.id == proposal.lore_entry_id,
            entry.proposed.is_(True),
            entry.origin_turn_index < ChatTurn.turn_index,
        ),
    )


def _analysis_candidates(db: Session, claim: Claim, config: AnalysisQueueConfig) -> list[ChatTurn]:
    """The earliest unfinished turn of a session (a failed one holds the later turns), and
    the session's next consecutive turns while they are ready (one analysis call covers them)."""
    head = session_head(
        ChatTurn, db, claim, held_by=UNFINISHED, also=[~_earlier_creations_unfinished()]
    )
    if head is None:
        return []
    batch = [head]
    if config.batch_size > 1:
        followers = (
            select(ChatTurn)
            .where(ChatTurn.session_id == head.session_id, ChatTurn.turn_index > head.turn_index)
            .order_by(ChatTurn.turn_index)
            .limit(config.batch_size - 1)
        )
        for turn in db.scalars(locking(db, followers, ChatTurn)):
            if not is_ready(turn, claim.now) or turn.turn_index != batch[-1].turn_index + 1:
                break
            batch.append(turn)
    return batch


def _analysis_handler(parts: Parts) -> Handler:
    settings = parts.settings
    service = AnalysisService(
        parts.uow, parts.chat_model, settings.llm_config, settings.pipeline_config
    )
    return service.handle


def _task_handler(
    worker: type[NoteRewriteWorker | EntityCreationWorker],
) -> Callable[[Parts], Handler]:
    """The handler of one of the core's two task workers (note rewrite, entity creation)."""

    def build(parts: Parts) -> Handler:
        settings = parts.settings
        return worker(
            parts.uow,
            parts.chat_model,
            parts.vectors,
            settings.llm_config,
            settings.pipeline_config,
        ).handle

    return build


def _describe_turn(turn: ChatTurn) -> dict[str, Any]:
    return {"kind": "analysis", "summary": turn.user_message[:200]}


# -- note updates ---------------------------------------------------------------------------------
def _same_key(other: Any) -> ColumnElement[bool]:
    return and_(
        other.session_id == NoteUpdateTask.session_id,
        other.lore_entry_id == NoteUpdateTask.lore_entry_id,
    )


@cache  # statements are immutable: built once (an alias costs more to build than to run)
def _note_heads() -> Select[NoteUpdateTask]:
    """Note tasks that head their (session, entry) key, with no rewrite of the key running, no
    change of it waiting for a person's review, and no creation of an earlier turn of the
    session unfinished (merged as a duplicate, it becomes
    an earlier event of some entry; a batched analysis writes later turns' updates before)."""
    other = aliased(NoteUpdateTask)
    creation = aliased(EntityCreationTask)
    return select(NoteUpdateTask).where(
        ~exists().where(
            _same_key(other), other.status.in_(ON_ITS_WAY), earlier(other, NoteUpdateTask)
        ),
        ~exists().where(_same_key(other), other.status == TaskStatus.PROCESSING.value),
        ~exists().where(_same_key(NoteProposal)),  # a change waits for a person (review)
        ~exists().where(
            creation.session_id == NoteUpdateTask.session_id,
            creation.status.in_(ON_ITS_WAY),
            creation.turn_index < NoteUpdateTask.turn_index,
        ),
    )


def _first_unfinished_creation(db: Session, session_id: Any) -> int | None:
    return db.scalar(
        select(func.min(EntityCreationTask.turn_index)).where(
            EntityCreationTask.session_id == session_id,
            EntityCreationTask.status.in_(ON_ITS_WAY),
        )
    )


def _key_events(
    db: Session, head: NoteUpdateTask, claim: Claim, limit: int, before: int | None
) -> list[NoteUpdateTask]:
    """The head and its key's next events while they are ready, and while they come no later
    than the session's first unfinished creation (``before``): one rewrite folds them."""
    events = [head]
    if limit > 1:
        followers = (
            select(NoteUpdateTask)
            .where(
                NoteUpdateTask.session_id == head.session_id,
                NoteUpdateTask.lore_entry_id == head.lore_entry_id,
                NoteUpdateTask.status.in_(ON_ITS_WAY),
                NoteUpdateTask.id != head.id,
            )
            .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
            .limit(limit - 1)
        )
        for task in db.scalars(locking(db, followers, NoteUpdateTask)):
            if not is_ready(task, claim.now) or (before is not None and task.turn_index > before):
                break  # a later event never overtakes one that waits, backs off or failed
            events.append(task)
    return events


def _note_candidates(
    db: Session, claim: Claim, config: NoteUpdateQueueConfig
) -> list[NoteUpdateTask]:
    """The head of one (session, entry) key with its ready events; then, in a wide claim, the
    heads of the same session's other keys that are ready too, with theirs (one call rewrites
    those notes)."""
    query = (
        _note_heads()
        .where(ready(NoteUpdateTask, claim.now), claim.scope.where(NoteUpdateTask))
        .order_by(NoteUpdateTask.next_attempt_at)
        .limit(1)
    )
    head = db.scalars(locking(db, query, NoteUpdateTask)).first()
    if head is None:
        return []
    before = _first_unfinished_creation(db, head.session_id) if config.batch_size > 1 else None
    batch = _key_events(db, head, claim, config.batch_size, before)
    entities = config.entities_per_call if claim.wide else 1
    if entities > 1:
        others = (
            _note_heads()
            .where(
                ready(NoteUpdateTask, claim.now),
                NoteUpdateTask.session_id == head.session_id,
                NoteUpdateTask.lore_entry_id != head.lore_entry_id,
            )
            .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
            .limit(entities - 1)
        )
        for other in db.scalars(locking(db, others, NoteUpdateTask)).all():
            batch.extend(_key_events(db, other, claim, config.batch_size, before))
    return batch


def _same_entry(first: Any, row: Any) -> bool:
    return bool(row.lore_entry_id == first.lore_entry_id)


def _refold_before_retry(
    uow: UnitOfWork, task: NoteUpdateTask, tables: JobTables
) -> Reverted | None:
    """A set-aside event is retried in its place: its note goes back to the version before the
    events folded since it, and they are folded again after it (DESIGN §3)."""
    lock_session(uow, task.session_id, tables)  # in the workers' order: jobs, then the session
    return refold(uow, task) if task.status == TaskStatus.FAILED.value else None


def _describe_update(task: NoteUpdateTask) -> dict[str, Any]:
    return {
        "kind": "note_update",
        "lore_entry_id": str(task.lore_entry_id),
        "update_summary": task.update_summary,
        "summary": task.update_summary,
        "applied_version": task.applied_version,
    }


# -- entity creations -----------------------------------------------------------------------------
def _creation_candidates(
    db: Session, claim: Claim, config: EntityCreationQueueConfig
) -> list[EntityCreationTask]:
    """A session's earliest unfinished creation, and its next ones while they are ready (one
    call writes them; they are still saved one by one, in order)."""
    head = session_head(EntityCreationTask, db, claim)
    if head is None:
        return []
    batch = [head]
    if config.batch_size > 1:
        followers = (
            select(EntityCreationTask)
            .where(
                EntityCreationTask.session_id == head.session_id,
                EntityCreationTask.status.in_(ON_ITS_WAY),
                EntityCreationTask.id != head.id,
            )
            .order_by(EntityCreationTask.turn_index, EntityCreationTask.created_at)
            .limit(config.batch_size - 1)
        )
        for task in db.scalars(locking(db, followers, EntityCreationTask)):
            if not is_ready(task, claim.now):
                break
            batch.append(task)
    return batch


def _describe_creation(task: EntityCreationTask) -> dict[str, Any]:
    created = task.created_lore_entry_id
    return {
        "kind": "entity_creation",
        "entity_type": task.entity_type,
        "creation_summary": task.creation_summary,
        "summary": task.creation_summary,
        "outcome": task.outcome,
        "created_lore_entry_id": str(created) if created else None,
    }


# -- the registry ---------------------------------------------------------------------------------
# the spec's targets (seconds): a note update within 30 s, a creation within 45 s
ANALYSIS_KIND: JobKind[AnalysisQueueConfig] = JobKind(
    ANALYSIS_QUEUE,
    ChatTurn,
    "analysis job",
    _analysis_candidates,
    _analysis_handler,
    lambda settings: settings.dual_queue_config.analysis_queue,
    backlog_target=30.0,
    describe=_describe_turn,
    when_failed="they hold their session's later turns until retried or skipped",
)
NOTE_UPDATE_KIND: JobKind[NoteUpdateQueueConfig] = JobKind(
    NOTE_UPDATE_QUEUE,
    NoteUpdateTask,
    "note update task",
    _note_candidates,
    _task_handler(NoteRewriteWorker),
    lambda settings: settings.dual_queue_config.note_update_queue,
    backlog_target=30.0,
    same_key=_same_entry,
    describe=_describe_update,
    on_retry=_refold_before_retry,
    when_failed="set aside: the memory goes on without them until they are retried (folded in "
    "their place) or skipped",
    # in the lean mode a note job calls the model only to condense a note: it takes every ready
    # entity of its session at once (one embedding call, one transaction)
    always_wide=lambda settings: settings.pipeline_config.mode == "lean",
)
ENTITY_CREATION_KIND: JobKind[EntityCreationQueueConfig] = JobKind(
    ENTITY_CREATION_QUEUE,
    EntityCreationTask,
    "entity creation task",
    _creation_candidates,
    _task_handler(EntityCreationWorker),
    lambda settings: settings.dual_queue_config.entity_creation_queue,
    backlog_target=45.0,
    describe=_describe_creation,
    when_failed="set aside: the memory goes on without them (their own follow-ups wait) until "
    "they are retried or skipped",
)

# in the default priority order (``priority_config.queue_order`` may put others first)
KINDS = Kinds((ANALYSIS_KIND, ENTITY_CREATION_KIND, NOTE_UPDATE_KIND))

"""The job kinds (DESIGN §3): a registry of them, how each finds its ready jobs, and claim,
retry, skip and sweep for all of them; what each step does to a row is ``db.lifecycle``'s.

Every job row — a turn's analysis (``chat_turns``), a note update, an entity creation — has the
same life: ``pending → processing → done``, back to ``pending`` with back-off after a failed
attempt, ``failed`` after ``max_retries`` failed attempts (or at once for an error no retry can
fix), and from ``failed`` a person retries it (``pending``) or skips it (``skipped``).  A claim
holds a lease; an attempt that crashes or whose lease expires counts as a failed attempt.

Order is kept per key; a job that failed for good is set aside (DESIGN §3: a failure never
stops the story's memory) except a failed analysis, which holds its session's later turns:
- analysis: turns of a session in turn order, and after the creations of its earlier turns on
  their way (the analysis must see the entities they created, and a creation merged as a
  duplicate becomes a note update that must come before the next turn's updates); a failed
  creation holds only its own follow-ups (they ride on it);
- note updates: per (session, entry) in (turn, creation) order, and after the session's
  creations of earlier turns on their way (one merged as a duplicate becomes an earlier event);
  a failed event is passed over, and its retry folds it in its place again (``refold``);
- entity creations: per session in (turn, creation) order.

Candidates are read in ``next_attempt_at`` order along the claim index and checked against
their key with the key indexes, so claiming stays flat as the backlog grows.  On PostgreSQL the
candidate rows are locked ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased

from loreweave.config import QueueConfig, Settings
from loreweave.db import lifecycle
from loreweave.db.dialect import is_postgresql
from loreweave.db.models import (
    ON_ITS_WAY,
    UNFINISHED,
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    NoteUpdateTask,
    TaskStatus,
    utcnow,
)
from loreweave.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    RequestRejected,
)
from loreweave.queue.notify import QueueName

T = TypeVar("T")


@dataclass(frozen=True)
class Tier:
    """Which sessions a claim serves: those played now (a turn since ``since``) or the others;
    ``since`` None serves every session."""

    live: bool
    since: datetime | None = None

    def where(self, model: Any) -> ColumnElement[bool]:
        if self.since is None:
            return true()
        played = select(ChatSession.id).where(ChatSession.last_turn_at >= self.since)
        column: ColumnElement[Any] = model.session_id
        return column.in_(played) if self.live else column.not_in(played)


ANY_SESSION = Tier(live=True)

Candidates = Callable[[Session, datetime, Any, Tier], list[Any]]


@dataclass(frozen=True)
class JobKind:
    """One kind of job: its table, how the ready ones are found, and its settings."""

    name: QueueName
    model: type[Any]
    label: str  # for messages: "note update task"
    candidates: Candidates  # ready rows, heads of their keys, locked where it matters
    settings: Callable[[Settings], QueueConfig]
    # which rows of a failed call share the failure of its first: the events of one entry
    # folded into one rewrite do; another turn, entity or creation of a batch goes back untried
    same_key: Callable[[Any, Any], bool] = lambda first, row: row.id == first.id


def _locking(db: Session, query: Select[T], model: Any) -> Select[T]:
    if is_postgresql(db):
        return query.with_for_update(skip_locked=True, of=model)
    return query


def _ready(model: Any, now: datetime) -> ColumnElement[bool]:
    return and_(model.status == TaskStatus.PENDING.value, model.next_attempt_at <= now)


def _is_ready(row: Any, now: datetime) -> bool:
    return bool(row.status == TaskStatus.PENDING.value and row.next_attempt_at <= now)


def _earlier_creations_unfinished() -> ColumnElement[bool]:
    """True while a creation of the turn's session and of an earlier turn is on its way (one
    that failed for good is set aside: the analysis goes on as if its entity did not exist)."""
    creation = aliased(EntityCreationTask)
    return exists().where(
        creation.session_id == ChatTurn.session_id,
        creation.status.in_(ON_ITS_WAY),
        creation.turn_index < ChatTurn.turn_index,
    )


# -- the candidates of each kind ------------------------------------------------------------------
# Each kind finds the head of one key (the oldest ready job that nothing earlier of its key waits
# for), then — batching, only when work waits — the ready jobs that may share its LLM call.
def _analysis_candidates(
    db: Session, now: datetime, config: QueueConfig, tier: Tier
) -> list[ChatTurn]:
    """The earliest unfinished turn of a session, and the session's next consecutive turns
    while they are ready (one analysis call covers them)."""
    earlier = aliased(ChatTurn)
    query = (
        select(ChatTurn)
        .where(
            _ready(ChatTurn, now),
            tier.where(ChatTurn),
            ~exists().where(
                earlier.session_id == ChatTurn.session_id,
                earlier.processing_status.in_(UNFINISHED),
                earlier.turn_index < ChatTurn.turn_index,
            ),
            ~_earlier_creations_unfinished(),
        )
        .order_by(ChatTurn.next_attempt_at)
        .limit(1)
    )
    head = db.scalars(_locking(db, query, ChatTurn)).first()
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
        for turn in db.scalars(_locking(db, followers, ChatTurn)):
            if not _is_ready(turn, now) or turn.turn_index != batch[-1].turn_index + 1:
                break
            batch.append(turn)
    return batch


def _same_key(other: Any) -> ColumnElement[bool]:
    return and_(
        other.session_id == NoteUpdateTask.session_id,
        other.lore_entry_id == NoteUpdateTask.lore_entry_id,
    )


def _earlier(other: Any, model: Any) -> ColumnElement[bool]:
    return or_(
        other.turn_index < model.turn_index,
        and_(other.turn_index == model.turn_index, other.created_at < model.created_at),
    )


def _note_heads() -> Select[NoteUpdateTask]:
    """Note tasks that head their (session, entry) key, with no rewrite of the key running and
    no creation of an earlier turn of the session unfinished (merged as a duplicate, it becomes
    an earlier event of some entry; a batched analysis writes later turns' updates before)."""
    other = aliased(NoteUpdateTask)
    creation = aliased(EntityCreationTask)
    return select(NoteUpdateTask).where(
        ~exists().where(
            _same_key(other), other.status.in_(ON_ITS_WAY), _earlier(other, NoteUpdateTask)
        ),
        ~exists().where(_same_key(other), other.status == TaskStatus.PROCESSING.value),
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
    db: Session, head: NoteUpdateTask, now: datetime, limit: int, before: int | None
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
        for task in db.scalars(_locking(db, followers, NoteUpdateTask)):
            if not _is_ready(task, now) or (before is not None and task.turn_index > before):
                break  # a later event never overtakes one that waits, backs off or failed
            events.append(task)
    return events


def _note_candidates(
    db: Session, now: datetime, config: QueueConfig, tier: Tier
) -> list[NoteUpdateTask]:
    """The head of one (session, entry) key with its ready events; then the heads of the same
    session's other keys that are ready too, with theirs (one call rewrites those notes)."""
    query = (
        _note_heads()
        .where(_ready(NoteUpdateTask, now), tier.where(NoteUpdateTask))
        .order_by(NoteUpdateTask.next_attempt_at)
        .limit(1)
    )
    head = db.scalars(_locking(db, query, NoteUpdateTask)).first()
    if head is None:
        return []
    before = _first_unfinished_creation(db, head.session_id) if config.batch_size > 1 else None
    batch = _key_events(db, head, now, config.batch_size, before)
    entities = getattr(config, "entities_per_call", 1)
    if entities > 1:
        others = (
            _note_heads()
            .where(
                _ready(NoteUpdateTask, now),
                NoteUpdateTask.session_id == head.session_id,
                NoteUpdateTask.lore_entry_id != head.lore_entry_id,
            )
            .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
            .limit(entities - 1)
        )
        for other in db.scalars(_locking(db, others, NoteUpdateTask)).all():
            batch.extend(_key_events(db, other, now, config.batch_size, before))
    return batch


def _creation_candidates(
    db: Session, now: datetime, config: QueueConfig, tier: Tier
) -> list[EntityCreationTask]:
    """A session's earliest unfinished creation, and its next ones while they are ready (one
    call writes them; they are still saved one by one, in order)."""
    other = aliased(EntityCreationTask)
    query = (
        select(EntityCreationTask)
        .where(
            _ready(EntityCreationTask, now),
            tier.where(EntityCreationTask),
            ~exists().where(
                other.session_id == EntityCreationTask.session_id,
                other.status.in_(ON_ITS_WAY),
                _earlier(other, EntityCreationTask),
            ),
        )
        .order_by(EntityCreationTask.next_attempt_at)
        .limit(1)
    )
    head = db.scalars(_locking(db, query, EntityCreationTask)).first()
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
        for task in db.scalars(_locking(db, followers, EntityCreationTask)):
            if not _is_ready(task, now):
                break
            batch.append(task)
    return batch


def _queues(settings: Settings) -> Any:
    return settings.dual_queue_config


KINDS: dict[QueueName, JobKind] = {
    "analysis": JobKind(
        "analysis",
        ChatTurn,
        "analysis job",
        _analysis_candidates,
        lambda s: _queues(s).analysis_queue,
    ),
    "note_updates": JobKind(
        "note_updates",
        NoteUpdateTask,
        "note update task",
        _note_candidates,
        lambda s: _queues(s).note_update_queue,
        lambda first, row: row.lore_entry_id == first.lore_entry_id,
    ),
    "entity_creations": JobKind(
        "entity_creations",
        EntityCreationTask,
        "entity creation task",
        _creation_candidates,
        lambda s: _queues(s).entity_creation_queue,
    ),
}


def kind_of(name: str) -> JobKind:
    try:
        return KINDS[name]  # type: ignore[index]
    except KeyError:
        names = ", ".join(KINDS)
        raise InvalidInput(f"unknown queue {name!r}; one of {names}") from None


# -- the life-cycle -------------------------------------------------------------------------------
def claim(
    db: Session, kind: JobKind, worker_id: str, config: QueueConfig, tier: Tier = ANY_SESSION
) -> list[Any]:
    """Lease the next ready job(s) of ``kind`` in ``tier``'s sessions to ``worker_id``; []
    when none is ready."""
    rows = kind.candidates(db, utcnow(), config, tier)
    lifecycle.lease(rows, lifecycle.claim_token(worker_id), config.lease_seconds)
    db.flush()
    return rows


def still_owned(db: Session, kind: JobKind, ids: Sequence[uuid.UUID], token: str) -> bool:
    """True if every job in ``ids`` is still held by the claim ``token`` (locks them on
    PostgreSQL)."""
    model = kind.model
    query = select(model.id).where(
        model.id.in_(ids),
        model.status == TaskStatus.PROCESSING.value,
        model.worker_id == token,
    )
    if is_postgresql(db):
        query = query.with_for_update()
    return len(db.scalars(query).all()) == len(ids)


def is_final(exc: BaseException) -> bool:
    """Errors that another attempt cannot fix: a bad key, a rejected request, a vanished row.
    Anything else (outages, rate limits, unusable LLM output, a crash) is worth another try."""
    return isinstance(exc, (AuthenticationFailed, RequestRejected, NotFound, InvalidInput))


def _require_failed(db: Session, kind: JobKind, job_id: uuid.UUID, action: str) -> Any:
    row = db.get(kind.model, job_id)
    if row is None:
        raise NotFound(kind.label, job_id)
    if row.status != TaskStatus.FAILED.value:
        raise Conflict(f"{kind.label} {job_id} is {row.status}; only failed jobs can be {action}")
    return row


def retry(db: Session, kind: JobKind, job_id: uuid.UUID) -> Any:
    """A person's retry: a failed job becomes pending now, with a fresh count."""
    row = _require_failed(db, kind, job_id, "retried")
    lifecycle.release([row])  # the last error stays shown until the next attempt ends
    row.retry_count = 0
    db.flush()
    return row


def skip(db: Session, kind: JobKind, job_id: uuid.UUID, by: str = "a person") -> Any:
    """A person's skip: a failed job is given up, recorded, and stops blocking its key."""
    row = _require_failed(db, kind, job_id, "skipped")
    row.status = TaskStatus.SKIPPED.value
    row.processed_at = utcnow()
    reason = f"skipped by {by}; last error: {row.error_message or '-'}"
    row.error_message = reason[: lifecycle.ERROR_LIMIT]
    db.flush()
    return row


def sweep(db: Session, settings: Settings) -> int:
    """Expired leases (a worker died or hung) count as failed attempts: back to pending, or
    ``failed`` after ``max_retries``.  Returns how many jobs were swept."""
    now = utcnow()
    count = 0
    for kind in KINDS.values():
        model, config = kind.model, kind.settings(settings)
        failed_for_good = model.retry_count + 1 >= config.max_retries
        result = db.execute(
            update(model)
            .where(model.status == TaskStatus.PROCESSING.value, model.locked_until < now)
            .values(
                {
                    model.status: case(
                        (failed_for_good, TaskStatus.FAILED.value),
                        else_=TaskStatus.PENDING.value,
                    ),
                    model.processed_at: case((failed_for_good, now), else_=None),
                    model.retry_count: model.retry_count + 1,
                    model.error_message: "lease expired: the worker stopped or hung before "
                    "finishing",
                    model.worker_id: None,
                    model.locked_until: None,
                    model.next_attempt_at: now,
                }
            )
            .execution_options(synchronize_session=False)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


def anything_ready(db: Session, kinds: Sequence[JobKind]) -> bool:
    """Whether some job of ``kinds`` is pending and due (a cheap read before a claim)."""
    now = utcnow()
    return any(
        db.scalar(select(kind.model.id).where(_ready(kind.model, now)).limit(1)) is not None
        for kind in kinds
    )


def ready_counts(db: Session) -> dict[QueueName, int]:
    """How many jobs of each queue are pending and due (to re-announce lost messages)."""
    now = utcnow()
    return {
        name: int(
            db.scalar(select(func.count()).select_from(kind.model).where(_ready(kind.model, now)))
            or 0
        )
        for name, kind in KINDS.items()
    }


def find(db: Session, job_id: uuid.UUID) -> tuple[JobKind, Any]:
    """The job with this id, whatever its kind (ids are UUIDs, unique across tables)."""
    for kind in KINDS.values():
        row = db.get(kind.model, job_id)
        if row is not None:
            return kind, row
    raise NotFound("job", job_id)

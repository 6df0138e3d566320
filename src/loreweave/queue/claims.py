"""Claiming work from the database with leases (DESIGN §3).

Three kinds of job, one pattern: a job is claimed by setting ``processing``, a ``worker_id`` and a
lease ``locked_until``; it is finished by whoever still owns it; the sweeper returns expired
leases to ``pending``.  Order is kept per key — turns per session, note updates per (session,
entry): a job is claimable only when no earlier job of its key is unfinished.  On PostgreSQL the
candidate rows are locked ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from loreweave.db.models import (
    ChatTurn,
    EntityCreationTask,
    NoteUpdateTask,
    TaskStatus,
    TurnStatus,
    utcnow,
)
from loreweave.errors import AuthenticationFailed, InvalidInput, NotFound, RequestRejected

T = TypeVar("T")
UNFINISHED = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value)


def _locking(db: Session, query: Select[T], *of: Any) -> Select[T]:
    if db.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=list(of) or None)
    return query


def _lease(task: Any, worker_id: str, seconds: float, now: datetime) -> None:
    task.status = TaskStatus.PROCESSING.value
    task.worker_id = worker_id
    task.locked_until = now + timedelta(seconds=seconds)


# -- analysis jobs (the turns) --------------------------------------------------------------------
def claim_turn(db: Session, worker_id: str, lease: float) -> ChatTurn | None:
    now = utcnow()
    earlier = aliased(ChatTurn)
    query = (
        select(ChatTurn)
        .where(
            ChatTurn.processing_status == TurnStatus.PENDING.value,
            ChatTurn.next_attempt_at <= now,
            ~exists().where(
                earlier.session_id == ChatTurn.session_id,
                earlier.turn_index < ChatTurn.turn_index,
                earlier.processing_status.in_(UNFINISHED),
            ),
        )
        .order_by(ChatTurn.created_at)
        .limit(1)
    )
    turn = db.scalars(_locking(db, query, ChatTurn)).first()
    if turn is None:
        return None
    turn.processing_status = TurnStatus.PROCESSING.value
    turn.worker_id = worker_id
    turn.locked_until = now + timedelta(seconds=lease)
    turn.attempts += 1
    db.flush()
    return turn


# -- note updates: ordered per (session, entry), coalesced ----------------------------------------
def _note_order(task: Any) -> Any:
    return (task.turn_index, task.created_at, task.id)


def claim_note_updates(
    db: Session, worker_id: str, lease: float, batch_size: int
) -> list[NoteUpdateTask]:
    """Claim the head of one key and up to ``batch_size`` ready events of that key, in order."""
    now = utcnow()
    other = aliased(NoteUpdateTask)
    same_key = and_(
        other.session_id == NoteUpdateTask.session_id,
        other.lore_entry_id == NoteUpdateTask.lore_entry_id,
    )
    earlier = or_(
        other.turn_index < NoteUpdateTask.turn_index,
        and_(
            other.turn_index == NoteUpdateTask.turn_index,
            other.created_at < NoteUpdateTask.created_at,
        ),
    )
    head_query = (
        select(NoteUpdateTask)
        .where(
            NoteUpdateTask.status == TaskStatus.PENDING.value,
            NoteUpdateTask.next_attempt_at <= now,
            ~exists().where(same_key, other.status.in_(UNFINISHED), earlier),
            ~exists().where(same_key, other.status == TaskStatus.PROCESSING.value),
        )
        .order_by(NoteUpdateTask.created_at)
        .limit(1)
    )
    head = db.scalars(_locking(db, head_query, NoteUpdateTask)).first()
    if head is None:
        return []
    followers_query = (
        select(NoteUpdateTask)
        .where(
            NoteUpdateTask.session_id == head.session_id,
            NoteUpdateTask.lore_entry_id == head.lore_entry_id,
            NoteUpdateTask.status == TaskStatus.PENDING.value,
            NoteUpdateTask.id != head.id,
        )
        .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
        .limit(batch_size - 1)
    )
    batch = [head]
    for task in db.scalars(_locking(db, followers_query, NoteUpdateTask)):
        if task.next_attempt_at > now:
            break  # a later event must not overtake one that is backing off
        batch.append(task)
    for task in batch:
        _lease(task, worker_id, lease, now)
    db.flush()
    return batch


# -- entity creations: per session, in turn order -------------------------------------------------
def claim_creations(
    db: Session, worker_id: str, lease: float, batch_size: int
) -> list[EntityCreationTask]:
    now = utcnow()
    query = (
        select(EntityCreationTask)
        .where(
            EntityCreationTask.status == TaskStatus.PENDING.value,
            EntityCreationTask.next_attempt_at <= now,
        )
        .order_by(EntityCreationTask.turn_index, EntityCreationTask.created_at)
        .limit(batch_size)
    )
    tasks = list(db.scalars(_locking(db, query, EntityCreationTask)))
    for task in tasks:
        _lease(task, worker_id, lease, now)
    db.flush()
    return tasks


# -- ownership, completion, failure ---------------------------------------------------------------
def still_owned(db: Session, model: Any, ids: Sequence[uuid.UUID], worker_id: str) -> bool:
    """True if every job in ``ids`` is still ours (locks them on PostgreSQL until commit)."""
    status = model.processing_status if model is ChatTurn else model.status
    query = select(model.id).where(
        model.id.in_(ids), status == TaskStatus.PROCESSING.value, model.worker_id == worker_id
    )
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return len(db.scalars(query).all()) == len(ids)


def is_final(exc: Exception) -> bool:
    """Errors that another attempt cannot fix: a bad key, a rejected request, a vanished row.
    Anything else (outages, rate limits, unusable LLM output) is worth another try."""
    return isinstance(exc, (AuthenticationFailed, RequestRejected, NotFound, InvalidInput))


def backoff(retry_delay: float, failures: int) -> timedelta:
    return timedelta(seconds=retry_delay * 2 ** max(0, failures - 1))


def fail_tasks(
    db: Session,
    tasks: Sequence[NoteUpdateTask | EntityCreationTask],
    error: str,
    *,
    retriable: bool,
    max_retries: int,
    retry_delay: float,
) -> bool:
    """Record a failed attempt: back to pending with back-off, or ``failed`` once ``max_retries``
    attempts have failed (or at once when the error is final).  Returns True if failed for good."""
    now = utcnow()
    final = False
    for task in tasks:
        task.retry_count += 1
        task.error_message = error[:2000]
        task.worker_id = None
        task.locked_until = None
        if not retriable or task.retry_count >= max_retries:
            task.status = TaskStatus.FAILED.value
            task.processed_at = now
            final = True
        else:
            task.status = TaskStatus.PENDING.value
            task.next_attempt_at = now + backoff(retry_delay, task.retry_count)
    db.flush()
    return final


def retry_task(db: Session, task: NoteUpdateTask | EntityCreationTask) -> None:
    """A manual retry: a failed task becomes pending now, with a fresh count."""
    task.status = TaskStatus.PENDING.value
    task.retry_count = 0
    task.next_attempt_at = utcnow()
    task.worker_id = None
    task.locked_until = None
    db.flush()


# -- the sweeper ----------------------------------------------------------------------------------
def sweep_expired_leases(db: Session) -> int:
    """Jobs whose worker vanished (lease expired) go back to pending.  Returns how many."""
    now = utcnow()
    count = 0
    for model in (NoteUpdateTask, EntityCreationTask):
        result = db.execute(
            update(model)
            .where(model.status == TaskStatus.PROCESSING.value, model.locked_until < now)
            .values(
                status=TaskStatus.PENDING.value,
                worker_id=None,
                locked_until=None,
                retry_count=model.retry_count + 1,
                error_message="lease expired: the worker stopped before finishing",
                next_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    result = db.execute(
        update(ChatTurn)
        .where(
            ChatTurn.processing_status == TurnStatus.PROCESSING.value, ChatTurn.locked_until < now
        )
        .values(
            processing_status=TurnStatus.PENDING.value,
            worker_id=None,
            locked_until=None,
            next_attempt_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count += int(getattr(result, "rowcount", 0) or 0)
    return count


def ready_counts(db: Session) -> dict[str, int]:
    """How many jobs of each queue could be claimed now (to re-announce lost messages)."""
    from sqlalchemy import func

    now = utcnow()
    counts = {}
    for name, model, status in (
        ("analysis", ChatTurn, ChatTurn.processing_status),
        ("note_updates", NoteUpdateTask, NoteUpdateTask.status),
        ("entity_creations", EntityCreationTask, EntityCreationTask.status),
    ):
        counts[name] = int(
            db.scalar(
                select(func.count())
                .select_from(model)
                .where(status == TaskStatus.PENDING.value, model.next_attempt_at <= now)
            )
            or 0
        )
    return counts

"""The life of a job row, written once (DESIGN §3): what a lease, done, a failed attempt, a
release, a re-pend, a cancel and a fork's copy do to a row of any job table (a turn's analysis in
``chat_turns``, a note update, an entity creation, a kind added since).  The queue claims and the
transcript cuts through these functions; neither writes a job's state by hand.  Which tables hold
jobs is the job kinds' registry's to say (``Kinds.models``): the functions that search take them.

A claim is fenced by its token (``worker_id``, unique per claim): whoever finishes a job checks
the token is still on every row it claimed, so a claim that a transcript operation broke is
released at once (:func:`release_broken_claims`) and the late answer is discarded, without
waiting for the lease to expire.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from loreweave.db.models import TaskStatus, utcnow

ERROR_LIMIT = 2000
JobTables = Sequence[type[Any]]


class JobRow(Protocol):
    """What every job table has (``chat_turns`` through synonyms)."""

    id: uuid.UUID
    session_id: uuid.UUID
    turn_index: int
    status: str
    retry_count: int
    error_message: str | None
    processed_at: datetime | None
    next_attempt_at: datetime
    locked_until: datetime | None
    worker_id: str | None
    created_at: datetime


def claim_token(worker_id: str) -> str:
    """The ``worker_id`` a claim writes on its rows: the worker's name and a nonce, so two
    claims of one worker are never taken for each other."""
    return f"{worker_id[:90]}#{secrets.token_hex(4)}"


def lease(rows: Sequence[JobRow], token: str, seconds: float) -> None:
    now = utcnow()
    for row in rows:
        row.status = TaskStatus.PROCESSING.value
        row.worker_id = token
        row.locked_until = now + timedelta(seconds=seconds)


def complete(rows: Sequence[JobRow]) -> None:
    now = utcnow()
    for row in rows:
        row.status = TaskStatus.DONE.value
        row.processed_at = now
        row.worker_id = None
        row.locked_until = None
        row.error_message = None


def release(rows: Sequence[JobRow]) -> None:
    """Back to pending now, as if never claimed (no attempt counted)."""
    for row in rows:
        row.status = TaskStatus.PENDING.value
        row.processed_at = None
        row.worker_id = None
        row.locked_until = None
        row.next_attempt_at = utcnow()


def repend(row: JobRow) -> None:
    """A job to do again from the start (not a failed attempt): released, with a fresh count."""
    release([row])
    row.retry_count = 0
    row.error_message = None


def cancel(db: Session, model: type[Any], session_id: uuid.UUID, from_turn: int) -> int:
    """The jobs of ``model`` that serve turns ``from_turn``… of a session are gone (a transcript
    cut): a claim that held one can no longer finish, its late answer is discarded.  Returns how
    many were."""
    removed = db.execute(
        delete(model)
        .where(model.session_id == session_id, model.turn_index >= from_turn)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(removed, "rowcount", 0) or 0)


def carried(row: JobRow) -> dict[str, Any]:
    """A job's state as a fork copies it: what was in flight in the original is to do in the
    fork (no attempt counted); done, failed or skipped stays so, with its error and count."""
    status = row.status
    if status == TaskStatus.PROCESSING.value:
        status = TaskStatus.PENDING.value
    return {
        "status": status,
        "retry_count": row.retry_count if status != TaskStatus.PENDING.value else 0,
        "error_message": row.error_message,
        "processed_at": row.processed_at,
        "next_attempt_at": utcnow(),
        "created_at": row.created_at,
    }


def backoff(retry_delay: float, failures: int) -> timedelta:
    return timedelta(seconds=retry_delay * 2 ** max(0, failures - 1))


def fail(
    rows: Sequence[JobRow], error: str, *, retriable: bool, max_retries: int, retry_delay: float
) -> bool:
    """Record a failed attempt: back to pending with back-off, or ``failed`` once
    ``max_retries`` attempts have failed (at once when not retriable).  True if failed."""
    now = utcnow()
    final = False
    for row in rows:
        row.retry_count += 1
        row.error_message = f"attempt {row.retry_count}: {error}"[:ERROR_LIMIT]
        row.worker_id = None
        row.locked_until = None
        if not retriable or row.retry_count >= max_retries:
            row.status = TaskStatus.FAILED.value
            row.processed_at = now
            final = True
        else:
            row.status = TaskStatus.PENDING.value
            row.next_attempt_at = now + backoff(retry_delay, row.retry_count)
    return final


Claims = dict[str, set[tuple[type[Any], uuid.UUID]]]


def claims_in(db: Session, session_id: uuid.UUID, tables: JobTables) -> Claims:
    """The claims that hold jobs of a session in ``tables``: token → its rows (table, id)."""
    held: Claims = defaultdict(set)
    for model in tables:
        rows = db.execute(
            select(model.id, model.worker_id).where(
                model.session_id == session_id,
                model.status == TaskStatus.PROCESSING.value,
                model.worker_id.is_not(None),
            )
        )
        for row_id, token in rows:
            held[token].add((model, row_id))
    return held


def release_broken_claims(db: Session, session_id: uuid.UUID, before: Claims) -> int:
    """After a transcript operation: every claim of ``before`` that lost a row (deleted or
    re-pended) can no longer finish, so the rows it still holds are released now.  Returns how
    many were."""
    db.flush()
    held = {model for rows in before.values() for model, _ in rows}  # the tables claims held
    after = claims_in(db, session_id, sorted(held, key=str))
    released = 0
    for token, rows in before.items():
        left = after.get(token, set())
        if left and left != rows:
            release([db.get_one(model, row_id) for model, row_id in sorted(left, key=str)])
            released += len(left)
    db.flush()
    return released


def release_held(db: Session, worker_prefix: str, tables: JobTables) -> int:
    """A worker (or process) that stops cleanly hands back what it still holds: the jobs in
    ``tables`` whose claim token starts with ``worker_prefix`` are pending now, no attempt
    counted."""
    released = 0
    for model in tables:
        rows = db.scalars(
            select(model).where(
                model.status == TaskStatus.PROCESSING.value,
                model.worker_id.startswith(worker_prefix, autoescape=True),
            )
        ).all()
        release(rows)
        released += len(rows)
    db.flush()
    return released

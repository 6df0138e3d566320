"""What the API, the UI and ``loreweave tasks`` show about the queues — the same for the
analysis jobs as for the two task queues — and a person's retries and skips."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loreweave.db.models import UNFINISHED, ChatTurn, NoteUpdateTask, TaskStatus, utcnow
from loreweave.memory.ports import UnitOfWorkFactory
from loreweave.memory.transcript import Reverted, lock_session, refold
from loreweave.queue import jobs

FAILED_SHOWN = 50


def _queue_figures(db: Session, kind: jobs.JobKind, live: jobs.Tier | None) -> dict[str, Any]:
    model = kind.model
    now = utcnow()
    counts = {s.value: 0 for s in TaskStatus}
    for value, count in db.execute(select(model.status, func.count()).group_by(model.status)):
        counts[str(value)] = int(count)
    played_now = None
    if live is not None:  # pending work of the sessions being played: it goes first
        played_now = int(
            db.scalar(
                select(func.count())
                .select_from(model)
                .where(model.status == TaskStatus.PENDING.value, live.where(model))
            )
            or 0
        )
    oldest = db.scalar(
        select(func.min(model.created_at)).where(model.status == TaskStatus.PENDING.value)
    )
    recent = db.execute(
        select(model.created_at, model.processed_at).where(
            model.status == TaskStatus.DONE.value,
            model.processed_at >= now - timedelta(minutes=1),
        )
    ).all()
    latencies = [(end - start).total_seconds() for start, end in recent if end is not None]
    failed = db.scalars(
        select(model)
        .where(model.status == TaskStatus.FAILED.value)
        .order_by(model.processed_at.desc())
        .limit(FAILED_SHOWN)
    )
    return {
        "counts": counts,
        "pending_played_now": played_now,
        "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else None,
        "done_last_minute": len(recent),
        "mean_latency_last_minute_seconds": (
            sum(latencies) / len(latencies) if latencies else None
        ),
        "failed": [job_dict(row) for row in failed],
    }


def job_dict(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(row.id),
        "session_id": str(row.session_id),
        "status": row.status,
        "turn_index": row.turn_index,
        "retry_count": row.retry_count,
        "error_message": row.error_message,
        "created_at": row.created_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "worker_id": row.worker_id,
    }
    if isinstance(row, ChatTurn):
        data.update(kind="analysis", summary=row.user_message[:200])
    elif isinstance(row, NoteUpdateTask):
        data.update(
            kind="note_update",
            lore_entry_id=str(row.lore_entry_id),
            update_summary=row.update_summary,
            summary=row.update_summary,
            applied_version=row.applied_version,
        )
    else:
        data.update(
            kind="entity_creation",
            entity_type=row.entity_type,
            creation_summary=row.creation_summary,
            summary=row.creation_summary,
            outcome=row.outcome,
            created_lore_entry_id=(
                str(row.created_lore_entry_id) if row.created_lore_entry_id else None
            ),
        )
    return data


def queue_status(db: Session, live: jobs.Tier | None = None) -> dict[str, Any]:
    """Per queue: counts per status (and how many pending jobs belong to sessions played now,
    given their ``live`` tier), oldest pending age, throughput, failed jobs."""
    return {name: _queue_figures(db, kind, live) for name, kind in jobs.KINDS.items()}


def session_jobs(db: Session, queue: str, session_id: uuid.UUID) -> list[dict[str, Any]]:
    model = jobs.kind_of(queue).model
    query = (
        select(model)
        .where(model.session_id == session_id)
        .order_by(model.turn_index, model.created_at)
    )
    return [job_dict(row) for row in db.scalars(query)]


def list_jobs(
    db: Session, queue: str, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    model = jobs.kind_of(queue).model
    query = select(model).order_by(model.created_at.desc()).limit(limit)
    if status:
        query = query.where(model.status == status)
    return [job_dict(row) for row in db.scalars(query)]


def retry(db: Session, queue: str, job_id: uuid.UUID) -> dict[str, Any]:
    """Make a failed job pending again (NotFound, or Conflict for any other status)."""
    return job_dict(jobs.retry(db, jobs.kind_of(queue), job_id))


def skip(db: Session, queue: str, job_id: uuid.UUID, by: str) -> dict[str, Any]:
    """Give up a failed job, recorded; its key's later jobs go ahead."""
    return job_dict(jobs.skip(db, jobs.kind_of(queue), job_id, by))


@dataclass(frozen=True)
class Acted:
    """A person's retry or skip: the job as it is now; the notes a retry took back (their
    vectors to sync) and their session."""

    job: dict[str, Any]
    reverted: Reverted | None = None
    session_id: uuid.UUID | None = None


def act(
    uow_factory: UnitOfWorkFactory,
    action: Literal["retry", "skip"],
    job_id: uuid.UUID,
    *,
    by: str,
    queue: str | None = None,
) -> Acted:
    """Retry or skip a failed job, in one transaction.  A set-aside note event is retried in
    its place: its note goes back to the version before the events folded since it, and they
    are folded again after it (DESIGN §3).  ``queue``: the job must be of it (else NotFound)."""
    with uow_factory() as uow:
        if queue is None:
            kind, row = jobs.find(uow.session, job_id)
        else:
            kind = jobs.kind_of(queue)
            row = uow.session.get(kind.model, job_id)
        reverted = None
        if action == "retry" and isinstance(row, NoteUpdateTask):
            lock_session(uow, row.session_id)
            if row.status == TaskStatus.FAILED.value:
                reverted = refold(uow, row)
        if action == "retry":
            job = retry(uow.session, kind.name, job_id)
        else:
            job = skip(uow.session, kind.name, job_id, by)
        uow.commit()
    return Acted(job, reverted, row.session_id if reverted else None)


def history(db: Session, minutes: int = 60) -> dict[str, Any]:
    """Per minute over the last ``minutes``, for each queue: jobs done, their mean latency
    (creation to completion), and the backlog (created, not yet finished) at the minute's end."""
    now = utcnow()
    start = now - timedelta(minutes=minutes)
    edges = [start + timedelta(minutes=i + 1) for i in range(minutes)]
    figures: dict[str, Any] = {"minutes": [edge.isoformat() for edge in edges]}
    for name, kind in jobs.KINDS.items():
        model = kind.model
        rows = db.execute(
            select(model.created_at, model.processed_at, model.status).where(
                (model.processed_at >= start)
                | (model.created_at >= start)
                | model.status.in_(UNFINISHED)
            )
        ).all()
        done = [0] * minutes
        spent = [0.0] * minutes
        backlog = [0] * minutes
        for created, finished, status in rows:
            if status == TaskStatus.DONE.value and finished is not None and finished >= start:
                slot = min(minutes - 1, int((finished - start).total_seconds() // 60))
                done[slot] += 1
                spent[slot] += (finished - created).total_seconds()
            for i, edge in enumerate(edges):
                if created <= edge and (finished is None or finished > edge):
                    backlog[i] += 1
        figures[name] = {
            "done": done,
            "latency": [spent[i] / done[i] if done[i] else None for i in range(minutes)],
            "backlog": backlog,
        }
    return figures

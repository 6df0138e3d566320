"""What the queues look like — the same for every job kind — read in one place for the API, the
UI, ``loreweave tasks``, ``/metrics`` and the alerts (a person's retries and skips are
``loreweave.app.jobs``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loreweave.db.models import UNFINISHED, TaskStatus, utcnow
from loreweave.queue import jobs

FAILED_SHOWN = 50


@dataclass(frozen=True)
class Figures:
    """One queue at one moment."""

    counts: dict[str, int]  # jobs per status (every status, 0 where none)
    oldest_pending_seconds: float | None  # the age of the oldest pending job
    done_recently: int  # jobs finished within the window asked for
    mean_latency_seconds: float | None  # creation to completion, of those
    newest_failed: list[Any] = field(default_factory=list)  # rows, newest first

    @property
    def failed(self) -> int:
        return self.counts[TaskStatus.FAILED.value]


def figures(
    db: Session,
    kind: jobs.JobKind[Any],
    now: datetime,
    *,
    window: timedelta | None = None,
    failed_shown: int = 0,
) -> Figures:
    """``kind``'s queue at ``now``: counts by status, the oldest pending job's age, the jobs
    done within ``window`` (None: not read) and their mean latency, the newest
    ``failed_shown`` failed jobs."""
    model = kind.model
    counts = {s.value: 0 for s in TaskStatus}
    for value, count in db.execute(select(model.status, func.count()).group_by(model.status)):
        counts[str(value)] = int(count)
    oldest = db.scalar(
        select(func.min(model.created_at)).where(model.status == TaskStatus.PENDING.value)
    )
    latencies: list[float] = []
    if window is not None:
        recent = db.execute(
            select(model.created_at, model.processed_at).where(
                model.status == TaskStatus.DONE.value, model.processed_at >= now - window
            )
        ).all()
        latencies = [(end - start).total_seconds() for start, end in recent if end is not None]
    newest_failed: list[Any] = []
    if failed_shown and counts[TaskStatus.FAILED.value]:
        newest_failed = list(
            db.scalars(
                select(model)
                .where(model.status == TaskStatus.FAILED.value)
                .order_by(model.processed_at.desc())
                .limit(failed_shown)
            )
        )
    return Figures(
        counts,
        (now - oldest).total_seconds() if oldest is not None else None,
        len(latencies),
        sum(latencies) / len(latencies) if latencies else None,
        newest_failed,
    )


def job_dict(kind: jobs.JobKind[Any], row: Any) -> dict[str, Any]:
    """A job as the API, the UI and the CLI show it: what every job has, then its kind's own
    fields (``kind``, ``summary``…)."""
    return {
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
        "kind": kind.name,
        "summary": "",
        **kind.describe(row),
    }


def _played_now(db: Session, kind: jobs.JobKind[Any], live: jobs.Scope) -> int:
    model = kind.model
    query = (
        select(func.count())
        .select_from(model)
        .where(model.status == TaskStatus.PENDING.value, live.where(model))
    )
    return int(db.scalar(query) or 0)


def queue_status(db: Session, kinds: jobs.Kinds, live: jobs.Scope | None = None) -> dict[str, Any]:
    """Per queue: counts per status (and how many pending jobs belong to sessions played now,
    given their ``live`` scope), oldest pending age, throughput, failed jobs."""
    now = utcnow()
    status = {}
    for kind in kinds:
        read = figures(db, kind, now, window=timedelta(minutes=1), failed_shown=FAILED_SHOWN)
        status[kind.name] = {
            "counts": read.counts,
            "pending_played_now": None if live is None else _played_now(db, kind, live),
            "oldest_pending_seconds": read.oldest_pending_seconds,
            "done_last_minute": read.done_recently,
            "mean_latency_last_minute_seconds": read.mean_latency_seconds,
            "failed": [job_dict(kind, row) for row in read.newest_failed],
        }
    return status


def session_jobs(
    db: Session, kind: jobs.JobKind[Any], session_id: uuid.UUID
) -> list[dict[str, Any]]:
    model = kind.model
    query = (
        select(model)
        .where(model.session_id == session_id)
        .order_by(model.turn_index, model.created_at)
    )
    return [job_dict(kind, row) for row in db.scalars(query)]


def list_jobs(
    db: Session, kind: jobs.JobKind[Any], status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    model = kind.model
    query = select(model).order_by(model.created_at.desc()).limit(limit)
    if status:
        query = query.where(model.status == status)
    return [job_dict(kind, row) for row in db.scalars(query)]


def history(db: Session, kinds: jobs.Kinds, minutes: int = 60) -> dict[str, Any]:
    """Per minute over the last ``minutes``, for each queue: jobs done, their mean latency
    (creation to completion), and the backlog (created, not yet finished) at the minute's end."""
    now = utcnow()
    start = now - timedelta(minutes=minutes)
    edges = [start + timedelta(minutes=i + 1) for i in range(minutes)]
    chart: dict[str, Any] = {"minutes": [edge.isoformat() for edge in edges]}
    for kind in kinds:
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
        chart[kind.name] = {
            "done": done,
            "latency": [spent[i] / done[i] if done[i] else None for i in range(minutes)],
            "backlog": backlog,
        }
    return chart

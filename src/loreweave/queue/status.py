"""What the API, the UI and ``loreweave tasks`` show about the queues, and manual retries."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loreweave.db.models import (
    ChatTurn,
    EntityCreationTask,
    NoteUpdateTask,
    TaskStatus,
    utcnow,
)
from loreweave.errors import Conflict, NotFound
from loreweave.queue import claims

TaskKind = Literal["note_updates", "entity_creations"]
TASK_MODELS: dict[str, Any] = {
    "note_updates": NoteUpdateTask,
    "entity_creations": EntityCreationTask,
}
FAILED_SHOWN = 50


def _queue_figures(db: Session, model: Any, status: Any, finished: Any) -> dict[str, Any]:
    now = utcnow()
    counts = {s.value: 0 for s in TaskStatus}
    for value, count in db.execute(select(status, func.count()).group_by(status)):
        counts[str(value)] = int(count)
    oldest = db.scalar(select(func.min(model.created_at)).where(status == TaskStatus.PENDING.value))
    recent = db.execute(
        select(model.created_at, finished).where(
            status == TaskStatus.DONE.value, finished >= now - timedelta(minutes=1)
        )
    ).all()
    latencies = [(end - start).total_seconds() for start, end in recent if end is not None]
    return {
        "counts": counts,
        "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else None,
        "done_last_minute": len(recent),
        "mean_latency_last_minute_seconds": (
            sum(latencies) / len(latencies) if latencies else None
        ),
    }


def task_dict(task: NoteUpdateTask | EntityCreationTask) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(task.id),
        "session_id": str(task.session_id),
        "status": task.status,
        "turn_index": task.turn_index,
        "retry_count": task.retry_count,
        "error_message": task.error_message,
        "created_at": task.created_at.isoformat(),
        "processed_at": task.processed_at.isoformat() if task.processed_at else None,
        "next_attempt_at": task.next_attempt_at.isoformat(),
        "worker_id": task.worker_id,
    }
    if isinstance(task, NoteUpdateTask):
        data.update(
            kind="note_update",
            lore_entry_id=str(task.lore_entry_id),
            update_summary=task.update_summary,
            applied_version=task.applied_version,
        )
    else:
        data.update(
            kind="entity_creation",
            entity_type=task.entity_type,
            creation_summary=task.creation_summary,
            outcome=task.outcome,
            created_lore_entry_id=(
                str(task.created_lore_entry_id) if task.created_lore_entry_id else None
            ),
        )
    return data


def queue_status(db: Session) -> dict[str, Any]:
    """Counts per status per queue, oldest pending age, throughput, failed tasks."""
    status: dict[str, Any] = {}
    for name, model in TASK_MODELS.items():
        figures = _queue_figures(db, model, model.status, model.processed_at)
        failed = db.scalars(
            select(model)
            .where(model.status == TaskStatus.FAILED.value)
            .order_by(model.processed_at.desc())
            .limit(FAILED_SHOWN)
        )
        figures["failed"] = [task_dict(task) for task in failed]
        status[name] = figures
    status["analysis"] = _queue_figures(
        db, ChatTurn, ChatTurn.processing_status, ChatTurn.last_processed_at
    )
    return status


def session_tasks(db: Session, kind: TaskKind, session_id: uuid.UUID) -> list[dict[str, Any]]:
    model = TASK_MODELS[kind]
    query = (
        select(model)
        .where(model.session_id == session_id)
        .order_by(model.turn_index, model.created_at)
    )
    return [task_dict(task) for task in db.scalars(query)]


def list_tasks(
    db: Session, kind: TaskKind, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    model = TASK_MODELS[kind]
    query = select(model).order_by(model.created_at.desc()).limit(limit)
    if status:
        query = query.where(model.status == status)
    return [task_dict(task) for task in db.scalars(query)]


def retry(db: Session, kind: TaskKind, task_id: uuid.UUID) -> dict[str, Any]:
    """Make a failed task pending again (409 for any other status)."""
    task = db.get(TASK_MODELS[kind], task_id)
    if task is None:
        raise NotFound(kind.rstrip("s").replace("_", " ") + " task", task_id)
    if task.status != TaskStatus.FAILED.value:
        raise Conflict(f"task {task_id} is {task.status}; only failed tasks can be retried")
    claims.retry_task(db, task)
    return task_dict(task)

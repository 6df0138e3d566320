"""The spec's dual-queue monitoring and retry endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from loreweave.api.deps import LW
from loreweave.queue import status

router = APIRouter(prefix="/api/dual-queue", tags=["dual-queue"])


@router.get("/status")
def queue_status(lw: LW) -> dict[str, Any]:
    """Both queues (and the analysis jobs): counts by status, oldest pending age, throughput
    over the last minute, failed tasks with their errors; and the workers of this process."""
    with lw.database.uow(read_only=True) as uow:
        figures = status.queue_status(uow.session)
    figures["backend"] = lw.settings.queue_backend
    figures["workers"] = lw.workers.counts() if lw.workers else {}
    return figures


@router.get("/note-updates/{session_id}")
def note_updates(session_id: uuid.UUID, lw: LW) -> list[dict[str, Any]]:
    with lw.database.uow(read_only=True) as uow:
        uow.sessions.require(session_id)
        return status.session_tasks(uow.session, "note_updates", session_id)


@router.get("/entity-creations/{session_id}")
def entity_creations(session_id: uuid.UUID, lw: LW) -> list[dict[str, Any]]:
    with lw.database.uow(read_only=True) as uow:
        uow.sessions.require(session_id)
        return status.session_tasks(uow.session, "entity_creations", session_id)


@router.post("/retry-note-update/{task_id}")
def retry_note_update(task_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    with lw.database.uow() as uow:
        task = status.retry(uow.session, "note_updates", task_id)
        uow.commit()
    lw.notifier.notify("note_updates")
    return task


@router.post("/retry-entity-creation/{task_id}")
def retry_entity_creation(task_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    with lw.database.uow() as uow:
        task = status.retry(uow.session, "entity_creations", task_id)
        uow.commit()
    lw.notifier.notify("entity_creations")
    return task

"""The spec's dual-queue monitoring — every job kind of the process, the spec's three and any
added — and a person's retry or skip of a failed job (analysis jobs are addressed by their
turn's id)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from loreweave.api.deps import LW
from loreweave.memory.ports import (
    ANALYSIS_QUEUE,
    ENTITY_CREATION_QUEUE,
    NOTE_UPDATE_QUEUE,
    QueueName,
)
from loreweave.queue import status

router = APIRouter(prefix="/api/dual-queue", tags=["dual-queue"])

# path segment → queue, as the spec names the endpoints of its three (``POST /retry/{id}`` and
# ``POST /skip/{id}`` take a job of any kind)
SEGMENTS: dict[str, QueueName] = {
    "analysis": ANALYSIS_QUEUE,
    "note-update": NOTE_UPDATE_QUEUE,
    "entity-creation": ENTITY_CREATION_QUEUE,
}


@router.get("/status")
def queue_status(lw: LW) -> dict[str, Any]:
    """The two queues and the analysis jobs: counts by status (pending ones of sessions played
    now apart), oldest pending age, throughput over the last minute, failed jobs with their
    errors; the workers of this process and the priority policy they follow."""
    scopes = lw.pipeline.scopes()
    with lw.database.uow(read_only=True) as uow:
        live = scopes[0] if len(scopes) > 1 else None
        figures = status.queue_status(uow.session, lw.kinds, live)
    figures["backend"] = lw.settings.queue_backend
    figures["workers"] = lw.workers.counts() if lw.workers else {}
    figures["priority"] = lw.pipeline.policy()
    return figures


@router.get("/note-updates/{session_id}")
def note_updates(session_id: uuid.UUID, lw: LW) -> list[dict[str, Any]]:
    with lw.database.uow(read_only=True) as uow:
        uow.sessions.require(session_id)
        return status.session_jobs(uow.session, lw.kinds.named(NOTE_UPDATE_QUEUE), session_id)


@router.get("/entity-creations/{session_id}")
def entity_creations(session_id: uuid.UUID, lw: LW) -> list[dict[str, Any]]:
    with lw.database.uow(read_only=True) as uow:
        uow.sessions.require(session_id)
        kind = lw.kinds.named(ENTITY_CREATION_QUEUE)
        return status.session_jobs(uow.session, kind, session_id)


@router.get("/history")
def queue_history(lw: LW, minutes: Annotated[int, Query(ge=5, le=24 * 60)] = 60) -> dict[str, Any]:
    """Per minute over the last ``minutes``: jobs done, mean latency and backlog of each queue
    (the Queues view's charts)."""
    with lw.database.uow(read_only=True) as uow:
        return status.history(uow.session, lw.kinds, minutes)


@router.get("/alerts", tags=["alerts"])
def alerts(lw: LW) -> list[dict[str, Any]]:
    """The alert conditions firing now, across every process of the deployment."""
    return [
        {
            "key": row.key,
            "summary": row.summary,
            "details": row.details,
            "since": row.first_fired_at.isoformat(),
            "last_seen": row.last_seen_at.isoformat(),
        }
        for row in lw.alerts.active()
    ]


def _register(action: Literal["retry", "skip"], segment: str, queue: QueueName | None) -> None:
    def endpoint(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
        return lw.act_on_job(action, job_id, by="the HTTP API", queue=queue)

    if queue is None:
        what, path = "job of any queue", f"/{action}/{{job_id}}"
    else:
        what = "turn's analysis" if queue == ANALYSIS_QUEUE else segment.replace("-", " ") + " task"
        path = f"/{action}-{segment}/{{job_id}}"
    endpoint.__name__ = f"{action}_{queue or 'job'}"
    endpoint.__doc__ = (
        f"{'Make a failed' if action == 'retry' else 'Skip a failed'} {what} "
        f"{'pending again' if action == 'retry' else '(recorded): later jobs of its key go ahead'}"
        "; 404 for an unknown id, 409 unless it is failed."
    )
    router.post(path, name=endpoint.__name__)(endpoint)


_action: Literal["retry", "skip"]
for _action in ("retry", "skip"):
    for _segment, _queue in SEGMENTS.items():
        _register(_action, _segment, _queue)
    _register(_action, "", None)

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


def _act(
    action: Literal["retry", "skip"], job_id: uuid.UUID, lw: LW, queue: QueueName | None = None
) -> dict[str, Any]:
    return lw.jobs.act(action, job_id, by="the HTTP API", queue=queue)


@router.post("/retry/{job_id}")
def retry_job(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Make a failed job of any queue pending again; 404 for an unknown id, 409 unless it is
    failed."""
    return _act("retry", job_id, lw)


@router.post("/retry-analysis/{job_id}")
def retry_analysis(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Make a turn's failed analysis pending again (the job is addressed by its turn's id);
    404 for an unknown id, 409 unless it is failed."""
    return _act("retry", job_id, lw, ANALYSIS_QUEUE)


@router.post("/retry-note-update/{job_id}")
def retry_note_update(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Make a failed note update task pending again (folded back in its place); 404 for an
    unknown id, 409 unless it is failed."""
    return _act("retry", job_id, lw, NOTE_UPDATE_QUEUE)


@router.post("/retry-entity-creation/{job_id}")
def retry_entity_creation(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Make a failed entity creation task pending again; 404 for an unknown id, 409 unless it
    is failed."""
    return _act("retry", job_id, lw, ENTITY_CREATION_QUEUE)


@router.post("/skip/{job_id}")
def skip_job(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Skip a failed job of any queue (recorded): later jobs of its key go ahead; 404 for an
    unknown id, 409 unless it is failed."""
    return _act("skip", job_id, lw)


@router.post("/skip-analysis/{job_id}")
def skip_analysis(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Skip a turn's failed analysis (recorded): the session's later analyses go ahead; 404 for
    an unknown id, 409 unless it is failed."""
    return _act("skip", job_id, lw, ANALYSIS_QUEUE)


@router.post("/skip-note-update/{job_id}")
def skip_note_update(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Skip a failed note update task (recorded): the entity's later events go ahead; 404 for
    an unknown id, 409 unless it is failed."""
    return _act("skip", job_id, lw, NOTE_UPDATE_QUEUE)


@router.post("/skip-entity-creation/{job_id}")
def skip_entity_creation(job_id: uuid.UUID, lw: LW) -> dict[str, Any]:
    """Skip a failed entity creation task (recorded): what waited on it goes ahead; 404 for an
    unknown id, 409 unless it is failed."""
    return _act("skip", job_id, lw, ENTITY_CREATION_QUEUE)

"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from loreweave.api.deps import LW

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(lw: LW) -> dict[str, str | bool]:
    """Liveness and the database's reachability (no API key needed); which LLM answers, and
    whether it is the offline placeholder (replies that say so, a memory that never changes)."""
    lw.database.check_connection()
    settings = lw.settings
    return {
        "status": "ok",
        "database": lw.database.dialect,
        "queue": settings.queue_backend,
        "llm": settings.llm_provider,
        "placeholder": settings.llm_provider == "scripted" and settings.scripted_cassette is None,
        # set on purpose (LOREWEAVE_LLM_PROVIDER), not the default
        "llm_chosen": "llm_provider" in settings.model_fields_set,
    }


metrics_router = APIRouter(tags=["system"])


@metrics_router.get("/metrics")
def metrics(lw: LW) -> Response:
    return Response(lw.metrics.render(), media_type=CONTENT_TYPE_LATEST)

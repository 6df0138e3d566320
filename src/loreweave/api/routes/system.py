"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from loreweave.api.deps import LW

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(lw: LW) -> dict[str, str]:
    """Liveness and the database's reachability (no API key needed)."""
    lw.database.check_connection()
    return {"status": "ok", "database": lw.database.dialect, "queue": lw.settings.queue_backend}


metrics_router = APIRouter(tags=["system"])


@metrics_router.get("/metrics")
def metrics(lw: LW) -> Response:
    return Response(lw.metrics.render(), media_type=CONTENT_TYPE_LATEST)

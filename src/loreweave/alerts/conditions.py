"""What is watched: each check returns the alert conditions it finds firing now."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loreweave.config import AlertConfig
from loreweave.db.models import TaskStatus
from loreweave.llm.resilience import ProviderHealth
from loreweave.queue.jobs import KINDS
from loreweave.vectors.service import VerifyReport

SHOWN = 5  # failed jobs named in one alert
# the spec's targets, in seconds: a note update within 30 s, a creation within 45 s
BACKLOG_TARGETS = {"analysis": 30.0, "note_updates": 30.0, "entity_creations": 45.0}


@dataclass(frozen=True)
class Condition:
    """An alert condition observed firing."""

    key: str  # stable: what is deduplicated across processes and evaluations
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def failed_jobs(db: Session) -> list[Condition]:
    """Jobs that failed after their retries: one alert per queue, naming the newest."""
    found = []
    for name, kind in KINDS.items():
        model = kind.model
        count = int(
            db.scalar(
                select(func.count())
                .select_from(model)
                .where(model.status == TaskStatus.FAILED.value)
            )
            or 0
        )
        if not count:
            continue
        rows = db.scalars(
            select(model)
            .where(model.status == TaskStatus.FAILED.value)
            .order_by(model.processed_at.desc())
            .limit(SHOWN)
        )
        jobs = [
            {
                "id": str(row.id),
                "session_id": str(row.session_id),
                "turn_index": row.turn_index,
                "error": row.error_message or "",
                "summary": _summary(row),
            }
            for row in rows
        ]
        waits = (
            "they hold their session's later turns until retried or skipped"
            if name == "analysis"
            else "set aside: the memory goes on without them until they are retried (folded "
            "in their place) or skipped"
        )
        found.append(
            Condition(
                f"job_failed:{name}",
                f"{count} {kind.label}(s) failed after their retries; {waits}",
                {"queue": name, "failed": count, "jobs": jobs},
            )
        )
    return found


def _summary(row: Any) -> str:
    """What the failed job was about: the turn's message, the event, the entity proposed."""
    for name in ("update_summary", "creation_summary", "user_message"):
        text = getattr(row, name, None)
        if isinstance(text, str):
            return text[:200]
    return ""


def backlog(db: Session, config: AlertConfig, now: datetime) -> list[Condition]:
    """The oldest pending job of a queue older than its target times ``backlog_scale``."""
    found = []
    for name, kind in KINDS.items():
        model = kind.model
        oldest = db.scalar(
            select(func.min(model.created_at)).where(model.status == TaskStatus.PENDING.value)
        )
        limit = BACKLOG_TARGETS[name] * config.backlog_scale
        if oldest is not None and (age := (now - oldest).total_seconds()) > limit:
            found.append(
                Condition(
                    f"backlog:{name}",
                    f"the oldest pending {kind.label} has waited {age:.0f} s (limit {limit:.0f} s)",
                    {"queue": name, "oldest_seconds": round(age, 1), "limit_seconds": limit},
                )
            )
    return found


def providers(
    health: dict[str, ProviderHealth], config: AlertConfig, now: float | None = None
) -> list[Condition]:
    """A provider refusing its key, or failing for longer than ``provider_failing_minutes``."""
    now = time.time() if now is None else now
    found = []
    for name, state in sorted(health.items()):
        if state.failing_since is None:
            continue
        details = {"provider": name, "error": state.last_error or "", "kind": state.last_error_kind}
        if state.last_error_kind == "AuthenticationFailed":
            found.append(
                Condition(
                    f"provider_auth:{name}",
                    f"the {name} provider refuses its API key: memory updates stop until "
                    "it is fixed",
                    details,
                )
            )
        minutes = (now - state.failing_since) / 60
        if minutes >= config.provider_failing_minutes:
            found.append(
                Condition(
                    f"provider_failing:{name}",
                    f"the {name} provider has been failing for {minutes:.0f} minutes",
                    {**details, "minutes": round(minutes, 1)},
                )
            )
    return found


def broker(url: str) -> list[Condition]:
    """The Celery broker (Redis) unreachable: turns are still answered, jobs wait."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        summary = (
            "the queue broker is unreachable: jobs wait in the database until it is back "
            f"({type(exc).__name__})"
        )
        return [Condition("broker_unreachable", summary)]
    finally:
        client.close()
    return []


class IndexVerification:
    """The vector rows against the documents the database implies (``index verify``), at most
    every ``every`` seconds: it reads every entry, so it runs far less often than the rest."""

    def __init__(self, verify: Callable[[], VerifyReport], every: float) -> None:
        self.verify = verify
        self.every = every
        self._last: tuple[float, list[Condition]] | None = None

    def __call__(self) -> list[Condition]:
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < self.every:
            return self._last[1]
        report = self.verify()
        found = []
        if not report.ok:
            counts = {
                "missing": len(report.missing),
                "stale": len(report.stale),
                "orphaned": len(report.orphans),
                "other_model": report.other_model,
            }
            described = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
            found.append(
                Condition(
                    "index_mismatch",
                    f"vector rows disagree with the database ({described}): retrieval misses or "
                    "returns stale entities until `loreweave index verify --repair` runs",
                    {**counts, "documents": report.documents},
                )
            )
        self._last = (now, found)
        return found

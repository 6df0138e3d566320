"""What is watched: each check returns the alert conditions it finds firing now."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from loreweave.config import AlertConfig
from loreweave.llm.resilience import ProviderHealth
from loreweave.queue import status
from loreweave.queue.jobs import JobKind, Kinds
from loreweave.vectors.service import VerifyReport

SHOWN = 5  # failed jobs named in one alert


@dataclass(frozen=True)
class Condition:
    """An alert condition observed firing."""

    key: str  # stable: what is deduplicated across processes and evaluations
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def queues(db: Session, kinds: Kinds, config: AlertConfig, now: datetime) -> list[Condition]:
    """Per queue, read as the queue status reads it: jobs that failed after their retries
    (naming the newest), and the oldest pending job older than the kind's target times
    ``backlog_scale``."""
    found = []
    for kind in kinds:
        read = status.figures(db, kind, now, failed_shown=SHOWN)
        if read.failed:
            found.append(_failed(kind, read))
        limit = kind.backlog_target * config.backlog_scale
        age = read.oldest_pending_seconds
        if age is not None and age > limit:
            found.append(
                Condition(
                    f"backlog:{kind.name}",
                    f"the oldest pending {kind.label} has waited {age:.0f} s (limit {limit:.0f} s)",
                    {"queue": kind.name, "oldest_seconds": round(age, 1), "limit_seconds": limit},
                )
            )
    return found


def _failed(kind: JobKind[Any], read: status.Figures) -> Condition:
    jobs = [
        {
            "id": str(row.id),
            "session_id": str(row.session_id),
            "turn_index": row.turn_index,
            "error": row.error_message or "",
            "summary": str(status.job_dict(kind, row)["summary"])[:200],
        }
        for row in read.newest_failed
    ]
    return Condition(
        f"job_failed:{kind.name}",
        f"{read.failed} {kind.label}(s) failed after their retries; {kind.when_failed}",
        {"queue": kind.name, "failed": read.failed, "jobs": jobs},
    )


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

"""Evaluates the alert conditions and keeps their state, once per cluster.

Every process (the service, each ``loreweave worker``) evaluates every ``interval``.  A process
that observes a condition refreshes its row in ``alerts``; the transition to *firing* happens
under the row's lock, so one process sends the message.  A condition no process has observed for
two intervals is *resolved*, again once.  A condition that fires again within ``cooldown`` of its
last message is recorded but not sent again, so a storm sends one message.  The database being
unreachable cannot be recorded there: each process then alerts on its own, with the same
cool-down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from loreweave.alerts import conditions
from loreweave.alerts.conditions import Condition
from loreweave.alerts.sink import AlertSink, Notification
from loreweave.config import AlertConfig
from loreweave.db.dialect import is_postgresql
from loreweave.db.models import AlertState, utcnow
from loreweave.errors import DatabaseUnavailable
from loreweave.memory.ports import UnitOfWorkFactory
from loreweave.queue.jobs import Kinds
from loreweave.redact import redact

log = logging.getLogger("loreweave.alerts")
DATABASE_DOWN = "database_unreachable"

Check = Callable[[], list[Condition]]


class AlertMonitor:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        kinds: Kinds,
        config: AlertConfig,
        sink: AlertSink,
        *,
        checks: list[Check] | None = None,
        secrets: list[str] | None = None,
    ) -> None:
        self.uow = uow
        self.kinds = kinds
        self.config = config
        self.sink = sink
        self.checks = checks or []  # conditions from outside the database: providers, broker
        self.secrets = secrets or []
        self._db_down_notified: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one evaluation ----------------------------------------------------------------------------
    def observe(self, now: datetime) -> list[Condition]:
        found: list[Condition] = []
        for check in self.checks:
            try:
                found += check()
            except Exception:  # a check that breaks must not stop the others
                log.exception("alert check %s failed", getattr(check, "__name__", check))
        with self.uow(read_only=True) as uow:
            found += conditions.queues(uow.session, self.kinds, self.config, now)
        return found

    def evaluate(self, now: datetime | None = None) -> list[Notification]:
        """Observe, update the shared state, send what changed; returns what was sent."""
        now = now or utcnow()
        try:
            observed = self.observe(now)
            sent = self._record(observed, now)
        except (SQLAlchemyError, DatabaseUnavailable) as exc:
            return self._database_down(exc, now)
        if self._db_down_notified is not None:
            self._db_down_notified = None
            sent.append(
                self._notify(DATABASE_DOWN, "resolved", "the database is reachable", {}, now)
            )
        return sent

    def _record(self, observed: list[Condition], now: datetime) -> list[Notification]:
        sent: list[Notification] = []
        for condition in observed:
            note = self._fire(condition, now)
            if note is not None:
                sent.append(note)
        stale = now - timedelta(seconds=2 * self.config.interval)
        seen = {c.key for c in observed}
        with self.uow() as uow:
            rows = uow.session.scalars(
                select(AlertState).where(
                    AlertState.state == "firing", AlertState.last_seen_at < stale
                )
            ).all()
            resolved = [row for row in rows if row.key not in seen]
            for row in resolved:
                row.state, row.resolved_at = "resolved", now
            uow.commit()
        for row in resolved:
            sent.append(self._notify(row.key, "resolved", row.summary, {}, now))
        return sent

    def _fire(self, condition: Condition, now: datetime) -> Notification | None:
        summary = redact(condition.summary, self.secrets)
        details = _redacted(condition.details, self.secrets)
        for _ in range(2):  # two processes may insert the same new key at once
            with self.uow() as uow:
                query = select(AlertState).where(AlertState.key == condition.key)
                if is_postgresql(uow.session):
                    query = query.with_for_update()
                row = uow.session.scalars(query).one_or_none()
                starts = row is None or row.state != "firing"
                if row is None:
                    row = AlertState(key=condition.key, first_fired_at=now)
                    uow.session.add(row)
                elif starts:
                    row.first_fired_at, row.resolved_at = now, None
                row.state, row.summary, row.details, row.last_seen_at = (
                    "firing",
                    summary,
                    details,
                    now,
                )
                quiet = (
                    row.last_notified_at is not None
                    and (now - row.last_notified_at).total_seconds() < self.config.cooldown
                )
                send = starts and not quiet
                if send:
                    row.last_notified_at = now
                try:
                    uow.commit()
                except IntegrityError:
                    continue
            return self._notify(condition.key, "firing", summary, details, now) if send else None
        return None

    def _database_down(self, exc: BaseException, now: datetime) -> list[Notification]:
        last = self._db_down_notified
        if last is not None and (now - last).total_seconds() < self.config.cooldown:
            return []
        self._db_down_notified = now
        reason = redact(str(getattr(exc, "orig", exc)).splitlines()[0], self.secrets)
        summary = f"the database is unreachable: {reason}"
        return [self._notify(DATABASE_DOWN, "firing", summary, {}, now)]

    def _notify(
        self, key: str, state: Any, summary: str, details: dict[str, Any], now: datetime
    ) -> Notification:
        note = Notification(key, state, summary, details, now)
        self.sink.send(note)
        return note

    def active(self) -> list[AlertState]:
        with self.uow(read_only=True) as uow:
            return list(
                uow.session.scalars(
                    select(AlertState)
                    .where(AlertState.state == "firing")
                    .order_by(AlertState.first_fired_at)
                )
            )

    # -- in the background -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="alerts")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.config.interval):
            started = time.monotonic()
            try:
                self.evaluate()
            except Exception:
                log.exception("alert evaluation failed")
            log.debug("alerts evaluated in %.3fs", time.monotonic() - started)


def _redacted(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, secrets) for v in value]
    return value

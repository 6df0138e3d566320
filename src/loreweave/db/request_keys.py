"""Idempotency-Keys held while their request is answered (issue 41): a client that sends the
same key twice at the same moment (a retry racing the original) makes one chat call.  The
first request claims the key — one row per key and scope, so the database decides who is
first — and frees it once its turn is recorded (or it failed); the second waits meanwhile, then
finds the turn recorded under the key and answers it.  A holder that died frees its key when
the claim expires."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from loreweave.db.engine import Database
from loreweave.db.models import RequestKey, utcnow
from loreweave.errors import Conflict

T = TypeVar("T")

LEASE_SECONDS = 600.0  # a request answering longer than this is taken for dead
FIRST_PAUSE, LONGEST_PAUSE = 0.02, 0.5  # how often a waiting request looks again


def _claim(database: Database, scope: str, key: str, lease: float) -> bool:
    now = utcnow()
    with database.uow() as uow:
        uow.session.execute(
            delete(RequestKey).where(
                RequestKey.scope == scope, RequestKey.key == key, RequestKey.expires_at < now
            )
        )
        uow.session.add(RequestKey(scope=scope, key=key, expires_at=now + timedelta(seconds=lease)))
        try:
            uow.commit()
        except IntegrityError:
            return False
    return True


def release(database: Database, scope: str, key: str) -> None:
    """Free ``key``: its request is answered (its turn recorded), or failed."""
    with database.uow() as uow:
        uow.session.execute(
            delete(RequestKey).where(RequestKey.scope == scope, RequestKey.key == key)
        )
        uow.commit()


def hold(
    database: Database,
    scope: str,
    key: str,
    answered: Callable[[], T | None],
    *,
    lease: float = LEASE_SECONDS,
) -> T | None:
    """What ``answered`` finds recorded under ``key`` (nothing to do), or None once ``key`` is
    claimed for this request (the caller answers, then :func:`release`\\ s it).  While another
    request holds the key, wait for it, at most ``lease`` seconds (then :class:`Conflict`)."""
    deadline = time.monotonic() + lease
    pause = FIRST_PAUSE
    while True:
        found = answered()
        if found is not None:
            return found
        if _claim(database, scope, key, lease):
            found = answered()  # recorded between the look and the claim
            if found is not None:
                release(database, scope, key)
            return found
        if time.monotonic() > deadline:
            raise Conflict(f"Idempotency-Key {key!r} is still being answered by another request")
        time.sleep(pause)
        pause = min(2 * pause, LONGEST_PAUSE)

"""A failure that repeats, logged the way a person reads it: the traceback once, then one line
per attempt, then one line when it is over.

A worker loop that meets a dependency that went away (the database stopped, the broker gone)
fails on every poll; a traceback each time says nothing new and buries what does.  One
:class:`RepeatedFailure` per loop (shared by the threads of a pool) logs the first failure of a
kind with its traceback, every later one of that kind as a line with its count, and a success
after failures as "recovered".  An outage of the database (:func:`is_outage`) is no bug: each of
its failed attempts is one warning line, without a traceback.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from loreweave.errors import DatabaseUnavailable

__all__ = ["RepeatedFailure", "described", "is_outage"]


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (down, restarting, its connection
    cut), rather than that the code is wrong."""
    if isinstance(exc, DatabaseUnavailable | OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class RepeatedFailure:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what  # "worker loop", "sweeper": what failed
        self._lock = threading.Lock()
        self._kind: tuple[type[BaseException], str] | None = None
        self._attempts = 0

    def failed(self, exc: BaseException, where: str = "") -> None:
        """Log one failed attempt of ``exc`` (the traceback only for a new kind of failure)."""
        kind = (type(exc), _first_line(exc))
        with self._lock:
            self._attempts += 1
            new, self._kind = kind != self._kind, kind
            attempts = self._attempts
        at = f" ({where})" if where else ""
        if is_outage(exc):
            self.log.warning(
                "%s: the database is unreachable%s, attempt %d: %s",
                self.what,
                at,
                attempts,
                described(exc),
            )
        elif new:
            self.log.error("%s failed%s: %s", self.what, at, described(exc), exc_info=exc)
        else:
            self.log.warning(
                "%s failed again%s, attempt %d: %s", self.what, at, attempts, described(exc)
            )

    def succeeded(self) -> None:
        """An attempt worked: log the recovery once, if there were failures."""
        if self._attempts == 0:  # the common case, without the lock
            return
        with self._lock:
            attempts, self._attempts, self._kind = self._attempts, 0, None
        if attempts:
            self.log.warning("%s recovered after %d failed attempts", self.what, attempts)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().partition("\n")[0][:200]


def described(exc: BaseException) -> str:
    """``exc`` in one line: its type and the first line of its message."""
    return f"{type(exc).__name__}: {_first_line(exc)}"

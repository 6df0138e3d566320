"""Runs one kind's jobs in this process: claim one, hand it to the kind's handler, then record
the outcome — done (in the handler's own transaction), or a failed attempt.  Any exception counts:
a provider error by its ``retriable`` flag, anything unexpected (a bug, a value the database
refuses) as a retriable failed attempt, so poison work ends ``failed`` after ``max_retries``
instead of circling through lease expiries."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from loreweave.config import QueueConfig
from loreweave.db import lifecycle
from loreweave.db.uow import UnitOfWork
from loreweave.errors import LeaseLost, LoreweaveError
from loreweave.memory.ports import UnitOfWorkFactory
from loreweave.queue import jobs
from loreweave.queue.failing import is_outage
from loreweave.queue.notify import Notifier

log = logging.getLogger("loreweave.queue")


@dataclass(frozen=True)
class ClaimedJob:
    """The :class:`~loreweave.memory.ports.Job` a handler receives."""

    kind: jobs.JobKind[Any]
    rows: Sequence[Any]
    worker_id: str  # the claim's token (the worker's name and a nonce)
    uow: UnitOfWorkFactory

    @property
    def ids(self) -> list[uuid.UUID]:
        return [row.id for row in self.rows]

    @property
    def attempt(self) -> int:
        return max(int(row.retry_count) for row in self.rows) + 1

    @contextmanager
    def finishing(self) -> Iterator[UnitOfWork]:
        with self.uow() as uow:
            lost = jobs.lost(uow.session, self.kind, self.rows, self.worker_id)
            if lost is not None:
                raise LeaseLost(f"{self.kind.label} {self.describe()} {lost}", cut=lost == jobs.CUT)
            lifecycle.complete([uow.session.get_one(self.kind.model, i) for i in self.ids])
            yield uow
            uow.commit()

    def release(self, uow: UnitOfWork, ids: Sequence[uuid.UUID]) -> None:
        """Inside :meth:`finishing`: hand these rows back to the queue, untried (pending now,
        no failed attempt counted): the call that covered them could not finish them."""
        lifecycle.release([uow.session.get_one(self.kind.model, i) for i in ids])

    def describe(self) -> str:
        first = self.rows[0]
        ids = ",".join(str(i)[:8] for i in self.ids)
        return f"[{ids}] session={first.session_id} turn={first.turn_index} attempt={self.attempt}"


class JobExecutor:
    """One kind as this process runs it: its handler (built once) and its settings."""

    def __init__(
        self,
        kind: jobs.JobKind[Any],
        handler: jobs.Handler,
        uow: UnitOfWorkFactory,
        config: QueueConfig,
        notifier: Notifier,
    ) -> None:
        self.kind = kind
        self.handler = handler
        self.uow = uow
        self.config = config
        self.notifier = notifier

    def claim(
        self, uow: UnitOfWork, worker_id: str, scope: jobs.Scope, *, wide: bool = True
    ) -> ClaimedJob | None:
        """Claim in ``uow``'s transaction (the caller commits)."""
        rows = jobs.claim(uow.session, self.kind, worker_id, self.config, scope, wide=wide)
        return ClaimedJob(self.kind, rows, rows[0].worker_id, self.uow) if rows else None

    def run(self, job: ClaimedJob) -> None:
        """Process a claimed job and record its outcome."""
        started = time.perf_counter()
        try:
            outcome = self.handler(job)
        except LeaseLost as exc:  # a cut is the transcript's doing, no trouble of the worker's
            level = logging.INFO if exc.cut else logging.WARNING
            log.log(level, "%s; its result is discarded", exc)
            return
        except LoreweaveError as exc:
            self.record_failure(job, exc, retriable=not jobs.is_final(exc))
            return
        except Exception as exc:  # a crash is a failed attempt too: poison work must end
            if not is_outage(exc):  # an outage is logged once, by the worker loop or below
                log.exception("%s %s crashed", self.kind.label, job.describe())
            self.record_failure(job, exc, retriable=True)
            return
        log.info(
            "%s %s: %s in %.2fs",
            self.kind.label,
            job.describe(),
            outcome.summary,
            time.perf_counter() - started,
        )
        self.notifier.notify(self.kind.name)  # the key's next job may be ready now
        for queue, count in outcome.wake.items():
            self.notifier.notify(queue, count)

    def record_failure(self, job: ClaimedJob, exc: BaseException, *, retriable: bool) -> None:
        """Back to pending with back-off, or failed for good; only while the job is ours.  In a
        batch the failure is the first job's (with the events folded with it); the batch's
        other jobs go back untried, and wait behind it where their order says so."""
        error = str(exc) or type(exc).__name__
        first = job.rows[0]
        failing = [row.id for row in job.rows if self.kind.same_key(first, row)]
        with self.uow() as uow:
            if jobs.lost(uow.session, self.kind, job.rows, job.worker_id) is not None:
                return
            rows = [uow.session.get_one(self.kind.model, i) for i in failing]
            final = lifecycle.fail(
                rows,
                error,
                retriable=retriable,
                max_retries=self.config.max_retries,
                retry_delay=self.config.retry_delay,
            )
            lifecycle.release(
                [uow.session.get_one(self.kind.model, i) for i in job.ids if i not in failing]
            )
            uow.commit()
        log.warning(
            "%s %s failed%s: %s",
            self.kind.label,
            job.describe(),
            " for good" if final else "; retried later",
            error,
        )
        if not final:
            self.notifier.notify(self.kind.name)

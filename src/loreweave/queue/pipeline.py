"""The asynchronous memory pipeline: one executor per job kind of the process's registry, the
priority policy that picks the next job for a free LLM call, and the sweeper — one object that
both queue backends drive (DESIGN §1.2, §3).

Priorities (``priority_config``): sessions played now (a turn within ``live_seconds``) before
an old backlog; then the queues in ``queue_order`` (a kind it does not name comes after) — by
default analyses of new turns as they come (the later turns of a session wait together and share
a call), then creations, before the rewrites that may mention them, then rewrites, which fold
every event waiting for an entity; within a queue the oldest job first.  A session's earlier
turns always go first where order matters: each kind's claim keeps its key's order (a later turn
is analysed after the creations of earlier ones; a note's events apply in turn order).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from loreweave.db import lifecycle
from loreweave.db.models import utcnow
from loreweave.memory.ports import QueueName
from loreweave.queue import jobs
from loreweave.queue.executor import ClaimedJob, JobExecutor
from loreweave.queue.notify import Notifier

log = logging.getLogger("loreweave.pipeline")


class Pipeline:
    def __init__(self, kinds: jobs.Kinds, parts: jobs.Parts, notifier: Notifier) -> None:
        """Each kind's handler is built here, once, from ``parts``; a setting that names no
        kind is a ConfigurationError."""
        self.kinds = kinds
        self.uow = parts.uow
        self.settings = settings = parts.settings
        self.notifier = notifier
        self.order: list[QueueName] = kinds.order(settings)
        self.executors = {
            kind.name: JobExecutor(
                kind, kind.handler(parts), parts.uow, kind.settings(settings), notifier
            )
            for kind in kinds
        }
        self._always_wide = {kind.name for kind in kinds if kind.always_wide(settings)}
        self._running: Counter[QueueName] = Counter()
        self._lock = threading.Lock()

    # -- the policy -------------------------------------------------------------------------------
    def scopes(self) -> list[jobs.Scope]:
        """Sessions played now first, then the rest; one scope when ``live_seconds`` is 0."""
        live = self.settings.priority_config.live_seconds
        if live <= 0:
            return [jobs.ANY_SESSION]
        since = utcnow() - timedelta(seconds=live)
        return [jobs.Scope(live=True, since=since), jobs.Scope(live=False, since=since)]

    def policy(self) -> dict[str, object]:
        """The policy in words and figures, for the queue status."""
        config = self.settings.priority_config
        return {
            "calls_in_flight": self.pool_size(),
            "live_seconds": config.live_seconds,
            "queue_order": list(self.order),
            "caps": self.caps(),
            "rule": "sessions with a turn in the last live_seconds first, then queue_order, "
            "then the oldest job; a session's earlier turns always first",
        }

    def caps(self) -> dict[QueueName, int | None]:
        return {
            name: executor.config.concurrent_workers for name, executor in self.executors.items()
        }

    def pool_size(self) -> int:
        """Workers of a process: one per LLM call in flight."""
        return self.settings.provider_config.calls_in_flight

    def _take_slot(self, queue: QueueName) -> bool:
        cap = self.executors[queue].config.concurrent_workers
        with self._lock:
            if cap is not None and self._running[queue] >= cap:
                return False
            self._running[queue] += 1
            return True

    def _free_slot(self, queue: QueueName) -> None:
        with self._lock:
            self._running[queue] -= 1

    def run_next(
        self, worker_id: str, queues: Sequence[QueueName] = (), *, pool: int | None = None
    ) -> bool:
        """Claim and process the most important ready job of ``queues`` (default: every
        queue); False if none.

        ``pool``: the workers sharing this process's calls (default ``calls_in_flight``).  While
        some of them are idle, a rewrite takes one entity's events, so the others can take the
        other entities in parallel; once all are busy, it takes several entities of the session
        in one call (fewer calls while work waits).  Analyses and creations run in turn order
        within a session anyway, so they always take what waits."""
        job = self._claim_next(worker_id, queues, pool)
        if job is None:
            return False
        try:
            self.executors[job.kind.name].run(job)
        finally:
            self._free_slot(job.kind.name)
        return True

    def _claim_next(
        self, worker_id: str, queues: Sequence[QueueName], pool: int | None
    ) -> ClaimedJob | None:
        """The policy's pick, claimed in one transaction (on SQLite one write lock, taken only
        when something is ready at all, and looking only in the queues where something is);
        its queue's slot is held."""
        wanted = [queue for queue in self.order if not queues or queue in queues]
        with self.uow(read_only=True) as uow:
            ready = jobs.ready_kinds(uow.session, [self.kinds.named(q) for q in wanted])
        wanted = [kind.name for kind in ready]
        if not wanted:
            return None
        with self.uow() as uow:
            for scope in self.scopes():
                for queue in wanted:
                    if not self._take_slot(queue):
                        continue
                    executor = self.executors[queue]
                    try:
                        wide = self._crowded(pool) or queue in self._always_wide
                        job = executor.claim(uow, worker_id, scope, wide=wide)
                        if job is not None:
                            uow.commit()
                            return job  # the slot stays held until the job has run
                    except BaseException:
                        self._free_slot(queue)
                        raise
                    self._free_slot(queue)
        return None

    def _crowded(self, pool: int | None) -> bool:
        with self._lock:
            running = sum(self._running.values())  # this worker's included
        return running >= (pool or self.pool_size())

    # -- upkeep -----------------------------------------------------------------------------------
    def sweep(self) -> dict[QueueName, int]:
        """Expired leases count as failed attempts; announce ready work (a lost message costs
        nothing).  Returns the ready counts per queue."""
        with self.uow() as uow:
            expired = jobs.sweep(uow.session, self.kinds, self.settings)
            uow.commit()
        if expired:
            log.warning("sweeper: %d expired leases counted as failed attempts", expired)
        with self.uow(read_only=True) as uow:
            ready = jobs.ready_counts(uow.session, self.kinds)
        for queue, count in ready.items():
            if count:
                self.notifier.notify(queue, count)
        return ready

    def release_held(self, worker_prefix: str) -> int:
        """Hand back the jobs held by workers whose names start with ``worker_prefix`` (they
        stopped cleanly): claimable now; a late answer of theirs is discarded."""
        with self.uow() as uow:
            released = lifecycle.release_held(uow.session, worker_prefix, self.kinds.models)
            uow.commit()
        if released:
            log.info("released %d jobs held by stopped workers %s*", released, worker_prefix)
        return released

    def drain(self, worker_id: str = "drain", *, max_jobs: int = 100_000) -> int:
        """Run every queue in this thread, by priority, until nothing is ready; return how many
        jobs ran.  For tests, the demo and one-shot commands (jobs backing off are left for
        later)."""
        ran = 0
        while ran < max_jobs and self.run_next(worker_id, pool=1):
            ran += 1
        return ran

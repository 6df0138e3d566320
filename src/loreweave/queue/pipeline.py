"""The asynchronous memory pipeline: one executor per job kind of the registry, the priority
policy that picks the next job for a free LLM call, and the sweeper — one object that both queue
backends drive (DESIGN §1.2, §3).

Priorities (``priority_config``): sessions played now (a turn within ``live_seconds``) before
an old backlog; then the queues in ``queue_order`` — by default analyses of new turns as they
come (the later turns of a session wait together and share a call), then creations, before the
rewrites that may mention them, then rewrites, which fold every event waiting for an entity;
within a queue the oldest job first.  A session's earlier turns always go first where order
matters: the job registry's key order (a later turn is analysed after the creations of earlier
ones; a note's events apply in turn order).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta

from loreweave.config import Settings
from loreweave.db import lifecycle
from loreweave.db.models import utcnow
from loreweave.memory.ports import UnitOfWorkFactory
from loreweave.queue import jobs
from loreweave.queue.executor import ClaimedJob, Handler, JobExecutor
from loreweave.queue.notify import QUEUES, Notifier, QueueName

log = logging.getLogger("loreweave.pipeline")


class Pipeline:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        handlers: Mapping[QueueName, Handler],
        settings: Settings,
        notifier: Notifier,
    ) -> None:
        self.uow = uow
        self.settings = settings
        self.notifier = notifier
        self.executors = {
            name: JobExecutor(kind, handlers[name], uow, kind.settings(settings), notifier)
            for name, kind in jobs.KINDS.items()
        }
        self.order: list[QueueName] = list(settings.priority_config.queue_order)
        self._running: Counter[QueueName] = Counter()
        self._lock = threading.Lock()

    # -- the policy -------------------------------------------------------------------------------
    def tiers(self) -> list[jobs.Tier]:
        """Sessions played now first, then the rest; one tier when ``live_seconds`` is 0."""
        live = self.settings.priority_config.live_seconds
        if live <= 0:
            return [jobs.ANY_SESSION]
        since = utcnow() - timedelta(seconds=live)
        return [jobs.Tier(live=True, since=since), jobs.Tier(live=False, since=since)]

    def policy(self) -> dict[str, object]:
        """The policy in words and figures, for the queue status."""
        config = self.settings.priority_config
        return {
            "calls_in_flight": self.pool_size(),
            "live_seconds": config.live_seconds,
            "queue_order": list(config.queue_order),
            "caps": self.caps(),
            "rule": "sessions with a turn in the last live_seconds first, then queue_order, "
            "then the oldest job; a session's earlier turns always first",
        }

    def caps(self) -> dict[QueueName, int | None]:
        return {name: self.executors[name].config.concurrent_workers for name in jobs.KINDS}

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
        self, worker_id: str, queues: tuple[QueueName, ...] = QUEUES, *, pool: int | None = None
    ) -> bool:
        """Claim and process the most important ready job of ``queues``; False if none.

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
        self, worker_id: str, queues: tuple[QueueName, ...], pool: int | None
    ) -> ClaimedJob | None:
        """The policy's pick, claimed in one transaction (on SQLite one write lock, taken only
        when something is ready at all); its queue's slot is held."""
        with self.uow(read_only=True) as uow:
            if not jobs.anything_ready(uow.session, [jobs.KINDS[q] for q in queues]):
                return None
        with self.uow() as uow:
            for tier in self.tiers():
                for queue in self.order:
                    if queue not in queues or not self._take_slot(queue):
                        continue
                    executor = self.executors[queue]
                    try:
                        job = executor.claim(uow, worker_id, tier, wide=self._crowded(pool))
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

    def runner(self, queue: QueueName) -> Callable[[str], bool]:
        """``run(worker_id) -> bool``: claim and process one job of ``queue`` (live sessions
        first) in this thread, as a pool of one; False if idle."""
        return lambda worker_id: self.run_next(worker_id, (queue,), pool=1)

    # -- upkeep -----------------------------------------------------------------------------------
    def sweep(self) -> dict[QueueName, int]:
        """Expired leases count as failed attempts; announce ready work (a lost message costs
        nothing).  Returns the ready counts per queue."""
        with self.uow() as uow:
            expired = jobs.sweep(uow.session, self.settings)
            uow.commit()
        if expired:
            log.warning("sweeper: %d expired leases counted as failed attempts", expired)
        with self.uow(read_only=True) as uow:
            ready = jobs.ready_counts(uow.session)
        for queue in QUEUES:
            if ready[queue]:
                self.notifier.notify(queue, ready[queue])
        return ready

    def release_held(self, worker_prefix: str) -> int:
        """Hand back the jobs held by workers whose names start with ``worker_prefix`` (they
        stopped cleanly): claimable now; a late answer of theirs is discarded."""
        with self.uow() as uow:
            released = lifecycle.release_held(uow.session, worker_prefix)
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

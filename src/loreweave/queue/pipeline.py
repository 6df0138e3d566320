"""The asynchronous memory pipeline: one executor per job kind of the registry, the priority
policy that picks the next job for a free LLM call, and the sweeper — one object that both queue
backends drive (DESIGN §1.2, §3).

Priorities (``priority_config``): sessions played now (a turn within ``live_seconds``) before
an old backlog; then the queues in ``queue_order`` (by default creations, then note rewrites —
which may mention what was created — then analyses of new turns, so the work of earlier turns
is finished first and later turns wait together, to be analysed by one call); within a queue
the oldest job first, and a session's earlier turns always before its later ones.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import timedelta

from loreweave.config import Settings
from loreweave.db.models import utcnow
from loreweave.memory.ports import UnitOfWorkFactory
from loreweave.queue import jobs
from loreweave.queue.executor import Handler, JobExecutor
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

    def run_next(self, worker_id: str, queues: tuple[QueueName, ...] = QUEUES) -> bool:
        """Claim and process the most important ready job of ``queues``; False if none."""
        for tier in self.tiers():
            for queue in self.order:
                if queue not in queues or not self._take_slot(queue):
                    continue
                try:
                    executor = self.executors[queue]
                    job = executor.claim(worker_id, tier)
                    if job is not None:
                        executor.run(job)
                        return True
                finally:
                    self._free_slot(queue)
        return False

    def runner(self, queue: QueueName) -> Callable[[str], bool]:
        """``run(worker_id) -> bool``: claim and process one job of ``queue`` (live sessions
        first); False if idle."""
        return lambda worker_id: self.run_next(worker_id, (queue,))

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

    def drain(self, worker_id: str = "drain", *, max_jobs: int = 100_000) -> int:
        """Run every queue in this thread, by priority, until nothing is ready; return how many
        jobs ran.  For tests, the demo and one-shot commands (jobs backing off are left for
        later)."""
        ran = 0
        while ran < max_jobs and self.run_next(worker_id):
            ran += 1
        return ran

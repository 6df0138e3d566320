"""The asynchronous memory pipeline: one executor per job kind of the registry, and the
sweeper, as one object that both queue backends drive (DESIGN §1.2, §3)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from loreweave.config import Settings
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

    def runner(self, queue: QueueName) -> Callable[[str], bool]:
        """``run(worker_id) -> bool``: claim and process one job of ``queue``; False if idle."""
        return self.executors[queue].run_once

    def worker_counts(self) -> dict[QueueName, int]:
        return {
            name: kind.settings(self.settings).concurrent_workers
            for name, kind in jobs.KINDS.items()
        }

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
        """Run every queue in this thread until nothing is ready; return how many jobs ran.
        For tests, the demo and one-shot commands (jobs backing off are left for later)."""
        ran = 0
        while ran < max_jobs:
            progressed = False
            for queue in QUEUES:
                while ran < max_jobs and self.runner(queue)(worker_id):
                    ran += 1
                    progressed = True
            if not progressed:
                return ran
        return ran

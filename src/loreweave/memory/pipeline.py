"""The asynchronous memory pipeline: the three job runners and the sweeper, as one object that
both queue backends drive (DESIGN §1.2, §3)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from loreweave.db.engine import Database
from loreweave.memory.analysis import AnalysisService
from loreweave.memory.creation import EntityCreationWorker
from loreweave.memory.rewrite import NoteRewriteWorker
from loreweave.queue import claims
from loreweave.queue.notify import QUEUES, Notifier, QueueName

log = logging.getLogger("loreweave.pipeline")


class Pipeline:
    def __init__(
        self,
        database: Database,
        analysis: AnalysisService,
        rewrite: NoteRewriteWorker,
        creation: EntityCreationWorker,
        notifier: Notifier,
    ) -> None:
        self.database = database
        self.analysis = analysis
        self.rewrite = rewrite
        self.creation = creation
        self.notifier = notifier

    def runner(self, queue: QueueName) -> Callable[[str], bool]:
        """``run(worker_id) -> bool``: claim and process one job of ``queue``; False if idle."""
        return {
            "analysis": self.analysis.run_once,
            "note_updates": self.rewrite.run_once,
            "entity_creations": self.creation.run_once,
        }[queue]

    def sweep(self) -> dict[str, int]:
        """Return expired leases to pending; announce ready work (a lost message costs nothing).
        Returns the ready counts per queue."""
        with self.database.uow() as uow:
            expired = claims.sweep_expired_leases(uow.session)
            uow.commit()
        if expired:
            log.warning("sweeper: %d expired leases returned to pending", expired)
        with self.database.uow(read_only=True) as uow:
            ready = claims.ready_counts(uow.session)
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

"""The in-process backend: worker threads inside ``loreweave serve`` or ``loreweave worker``.

One pool of ``provider_config.calls_in_flight`` threads serves every queue: each loops
"claim the most important ready job (the pipeline's priority policy), process it"; an idle
thread waits for a notice or ``poll_interval``; a sweeper thread re-queues expired leases every
``sweep_interval``.  A few more threads (:func:`helpers`) take only the jobs an analysis feeds,
note updates and creations, so these start as soon as their analysis commits, while the pool's
calls are in flight; the calls themselves stay within ``calls_in_flight`` (``InFlight``).
Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time

from loreweave.config import Settings
from loreweave.memory.ports import ENTITY_CREATION_QUEUE, NOTE_UPDATE_QUEUE, QueueName
from loreweave.queue.failing import RepeatedFailure
from loreweave.queue.notify import EventNotifier
from loreweave.queue.pipeline import Pipeline

log = logging.getLogger("loreweave.queue")


# the queues a helper thread serves: the work an analysis feeds (in the lean mode it seldom
# calls the model at all)
FED = (ENTITY_CREATION_QUEUE, NOTE_UPDATE_QUEUE)


def helpers(pool: int) -> int:
    """Threads beside a pool of ``pool`` for the work analyses feed: a quarter, at least one."""
    return max(1, pool // 4)


def pool_name() -> str:
    """host:pid:pool-nonce: — the prefix of one pool's worker names (a process may hold more
    than one pool, as tests do)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}:"


class LocalWorkers:
    def __init__(self, pipeline: Pipeline, notifier: EventNotifier, settings: Settings) -> None:
        self.pipeline = pipeline
        self.notifier = notifier
        self.settings = settings
        self.name = pool_name()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._work_failures = RepeatedFailure(log, "worker loop")
        self._sweep_failures = RepeatedFailure(log, "sweeper")

    def counts(self) -> dict[str, int]:
        pool = self.pipeline.pool_size()
        return {"pool": pool, "helpers": helpers(pool)}

    def start(self) -> None:
        pool = self.pipeline.pool_size()
        for index in range(pool + helpers(pool)):
            queues = FED if index >= pool else ()
            thread = threading.Thread(
                target=self._work,
                args=(f"{self.name}worker-{index}", queues),
                daemon=True,
                name=f"loreweave-worker-{index}",
            )
            self._threads.append(thread)
        self._threads.append(
            threading.Thread(target=self._sweep, daemon=True, name="loreweave-sweeper")
        )
        for thread in self._threads:
            thread.start()
        log.info("local workers started: %d (and %d helpers)", pool, helpers(pool))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, wait up to ``timeout`` for the calls in flight, then hand back what
        is still held (another process claims it at once; a late answer is discarded)."""
        self._stop.set()
        self.notifier.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        try:
            self.pipeline.release_held(self.name)
        except Exception as exc:  # the database gone: the leases expire instead
            log.warning("could not hand back the jobs in flight (%s); their leases expire", exc)

    def _work(self, worker_id: str, queues: tuple[QueueName, ...] = ()) -> None:
        wake = self.notifier.wake
        poll = self.settings.pipeline_config.poll_interval
        while not self._stop.is_set():
            try:
                busy = self.pipeline.run_next(worker_id, queues)
            except Exception as exc:  # a bug or the database gone: log, wait, go on
                self._work_failures.failed(exc, worker_id)
                busy = False
            else:
                self._work_failures.succeeded()
            if not busy:
                wake.wait(poll)
                wake.clear()

    def _sweep(self) -> None:
        interval = self.settings.pipeline_config.sweep_interval
        while not self._stop.wait(interval):
            try:
                self.pipeline.sweep()
            except Exception as exc:
                self._sweep_failures.failed(exc, f"retrying in {interval:.0f}s")
            else:
                self._sweep_failures.succeeded()

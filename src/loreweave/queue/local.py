"""The in-process backend: worker threads inside ``loreweave serve`` or ``loreweave worker``.

One pool of ``provider_config.calls_in_flight`` threads serves every queue: each loops
"claim the most important ready job (the pipeline's priority policy), process it"; an idle
thread waits for a notice or ``poll_interval``; a sweeper thread re-queues expired leases every
``sweep_interval``.  Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from loreweave.config import Settings
from loreweave.queue.failing import RepeatedFailure
from loreweave.queue.notify import EventNotifier
from loreweave.queue.pipeline import Pipeline

log = logging.getLogger("loreweave.queue")


def worker_name(index: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:worker-{index}"


class LocalWorkers:
    def __init__(self, pipeline: Pipeline, notifier: EventNotifier, settings: Settings) -> None:
        self.pipeline = pipeline
        self.notifier = notifier
        self.settings = settings
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._work_failures = RepeatedFailure(log, "worker loop")
        self._sweep_failures = RepeatedFailure(log, "sweeper")

    def counts(self) -> dict[str, int]:
        return {"pool": self.pipeline.pool_size()}

    def start(self) -> None:
        for index in range(self.pipeline.pool_size()):
            thread = threading.Thread(
                target=self._work,
                args=(worker_name(index),),
                daemon=True,
                name=f"loreweave-worker-{index}",
            )
            self._threads.append(thread)
        self._threads.append(
            threading.Thread(target=self._sweep, daemon=True, name="loreweave-sweeper")
        )
        for thread in self._threads:
            thread.start()
        log.info("local workers started: %d", self.pipeline.pool_size())

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.notifier.wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _work(self, worker_id: str) -> None:
        wake = self.notifier.wake
        poll = self.settings.pipeline_config.poll_interval
        while not self._stop.is_set():
            try:
                busy = self.pipeline.run_next(worker_id)
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

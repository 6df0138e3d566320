"""The in-process backend: worker threads inside ``loreweave serve`` or ``loreweave worker``.

``concurrent_workers`` threads per queue (``dual_queue_config.<queue>.concurrent_workers``) loop
claim → process; an idle thread waits for a notice or ``poll_interval``; a sweeper thread
re-queues expired leases every ``sweep_interval``.  Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from loreweave.config import Settings
from loreweave.queue.notify import EventNotifier, QueueName
from loreweave.queue.pipeline import Pipeline

log = logging.getLogger("loreweave.queue")


def worker_name(queue: str, index: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{queue}-{index}"


class LocalWorkers:
    def __init__(self, pipeline: Pipeline, notifier: EventNotifier, settings: Settings) -> None:
        self.pipeline = pipeline
        self.notifier = notifier
        self.settings = settings
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def counts(self) -> dict[QueueName, int]:
        return self.pipeline.worker_counts()

    def start(self) -> None:
        for queue, count in self.counts().items():
            for index in range(count):
                thread = threading.Thread(
                    target=self._work,
                    args=(queue, worker_name(queue, index)),
                    daemon=True,
                    name=f"loreweave-{queue}-{index}",
                )
                self._threads.append(thread)
        self._threads.append(
            threading.Thread(target=self._sweep, daemon=True, name="loreweave-sweeper")
        )
        for thread in self._threads:
            thread.start()
        log.info("local workers started: %s", self.counts())

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for event in self.notifier.events.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _work(self, queue: QueueName, worker_id: str) -> None:
        run = self.pipeline.runner(queue)
        event = self.notifier.events[queue]
        poll = self.settings.pipeline_config.poll_interval
        while not self._stop.is_set():
            try:
                busy = run(worker_id)
            except Exception:  # a bug or the database gone: log, wait, go on
                log.exception("worker %s crashed on a job; continuing", worker_id)
                busy = False
            if not busy:
                event.wait(poll)
                event.clear()

    def _sweep(self) -> None:
        interval = self.settings.pipeline_config.sweep_interval
        while not self._stop.wait(interval):
            try:
                self.pipeline.sweep()
            except Exception:
                log.exception("sweeper failed; retrying in %.0fs", interval)

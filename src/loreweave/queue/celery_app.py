"""The Celery backend: Redis carries "queue X has work" messages; the task rows stay the truth.

One Celery queue per kind (``analysis``, ``note_updates``, ``entity_creations``); a message
says "there is work" and runs the same job code as the local backend — claim the most important
ready job from the database (the pipeline's priority policy, across every queue), process it,
repeat while work is ready — so a lost or duplicated message is harmless.  ``loreweave worker
--backend celery`` starts one Celery worker on all three queues with ``calls_in_flight``
concurrency and runs the sweeper, which re-announces ready work, e.g. once Redis is back after
an outage.

Also usable directly: ``celery -A loreweave.queue.celery_app worker -Q
analysis,note_updates,entity_creations -c 4``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from celery import Celery

from loreweave.config import Settings, load_settings
from loreweave.queue.notify import QUEUES, QueueName

if TYPE_CHECKING:
    from loreweave.bootstrap import Loreweave

log = logging.getLogger("loreweave.queue")

TASK_NAME = "loreweave.run_queue"
MAX_JOBS_PER_MESSAGE = 50


def make_celery(settings: Settings) -> Celery:
    app = Celery("loreweave", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="analysis",
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            **(
                {"global_keyprefix": settings.broker_key_prefix}
                if settings.broker_key_prefix
                else {}
            ),
        },
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK_NAME, bind=False)(run_queue)
    return app


_container: Loreweave | None = None
_container_lock = threading.Lock()


def container() -> Loreweave:
    """This worker process's loreweave, built on first use (after Celery forked)."""
    global _container
    with _container_lock:
        if _container is None:
            from loreweave.bootstrap import build

            settings = load_settings()
            _container = build(settings, notifier=CeleryNotifier(settings))
        return _container


def run_queue(queue: str, max_jobs: int = MAX_JOBS_PER_MESSAGE) -> int:
    """The one Celery task: ``queue`` has work; run the most important ready jobs (of any
    queue: the priority policy decides) while some are ready, at most ``max_jobs``."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    pipeline = container().pipeline
    worker_id = f"celery:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    done = 0
    # a prefork process is a pool of one: its calls take what waits
    while done < max_jobs and pipeline.run_next(worker_id, pool=1):
        done += 1
    return done


class CeleryNotifier:
    """Publishes "this queue has work" from a background thread, so a turn never waits on the
    broker.  If the broker is down the work simply waits in the database: the notice is dropped
    and the sweeper announces the work again later."""

    RETRY_PAUSE = 1.0
    MAX_MESSAGES = 32  # per queue and notice: enough to wake every worker process of a queue

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.app = app or make_celery(settings)
        self._wanted: dict[str, int] = {}
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._publish, daemon=True, name="loreweave-notify")
        self._thread.start()

    def notify(self, queue: QueueName, count: int = 1) -> None:
        """One message per job that may be ready (a message runs one worker's loop), capped;
        notices not yet sent fold together."""
        with self._lock:
            wanted = self._wanted.get(queue, 0) + max(1, count)
            self._wanted[queue] = min(self.MAX_MESSAGES, wanted)
            self._lock.notify()

    def _publish(self) -> None:
        while True:
            with self._lock:
                while not self._wanted:
                    self._lock.wait()
                wanted, self._wanted = self._wanted, {}
            for queue, count in sorted(wanted.items()):
                try:
                    for _ in range(count):
                        self.app.send_task(TASK_NAME, args=[queue], queue=queue, retry=False)
                except Exception as exc:  # kombu / redis connection errors of many kinds
                    log.warning(
                        "broker unreachable (%s); %s work waits in the database", exc, queue
                    )
                    time.sleep(self.RETRY_PAUSE)


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    # ``celery -A loreweave.queue.celery_app`` looks up ``app``: built on demand, not at import.
    global _app
    if name == "app":
        if _app is None:
            _app = make_celery(load_settings())
        return _app
    raise AttributeError(name)

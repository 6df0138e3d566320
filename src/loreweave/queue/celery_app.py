"""The Celery transport: Redis carries "queue X has work" messages; the task rows stay the
truth.  This module only sends: the Celery app's settings and :class:`CeleryNotifier`.  What a
message runs — the same job code as the local backend — lives with the worker processes, in
:mod:`loreweave.entrypoints.workers` (``celery -A loreweave.entrypoints.workers worker …``).

One Celery queue per job kind (``analysis``, ``note_updates``, ``entity_creations``, and any
kind added); a message says "there is work", so a lost or duplicated message is harmless.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

from loreweave.config import Settings
from loreweave.memory.ports import ANALYSIS_QUEUE, QueueName

log = logging.getLogger("loreweave.queue")

TASK_NAME = "loreweave.run_queue"


def make_celery(settings: Settings) -> Celery:
    app = Celery("loreweave", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=ANALYSIS_QUEUE,
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
    return app


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

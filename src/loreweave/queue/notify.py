"""How a backend is told that a queue has work.  A lost notice is harmless: workers also poll,
and the sweeper re-announces ready work."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from loreweave.memory.ports import QueueName


class Notifier(Protocol):
    def notify(self, queue: QueueName, count: int = 1) -> None:
        """``count`` jobs of ``queue`` may be ready: wake up to that many workers."""


class NullNotifier:
    """For processes that only write (a CLI import, tests driving workers by hand)."""

    def notify(self, queue: QueueName, count: int = 1) -> None:
        return None


class EventNotifier:
    """In-process: wakes the local worker threads (one pool serves every queue)."""

    def __init__(self) -> None:
        self.wake = threading.Event()

    def notify(self, queue: QueueName, count: int = 1) -> None:
        self.wake.set()  # wakes every idle thread of the pool


def wake_all(notifier: Notifier, queues: Iterable[QueueName]) -> None:
    """Tell every queue it may have work (after a person's change: turns to analyse again, a
    job retried or skipped, a fork's pending work)."""
    for queue in queues:
        notifier.notify(queue)

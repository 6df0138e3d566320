"""What one process holds once :mod:`loreweave.bootstrap` has built it, and the few things done
with all of it at once: start the local workers, wake the queues, close.

:class:`Store` is the stored world without a chat model — database, job kinds, vectors, lore,
transcript — for the commands that only read, import, export, verify or act on jobs;
:class:`Loreweave` adds the providers, the chat, the proxy, the pipeline, metrics and alerts.
The API receives a :class:`Loreweave`; nothing here builds an engine, a provider or a
service (the local worker threads start from the pipeline ``bootstrap`` built)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loreweave.alerts.monitor import AlertMonitor
from loreweave.app.chat import ChatService
from loreweave.app.jobs import JobActions
from loreweave.app.lore import LoreService
from loreweave.app.proxy import ProxyService
from loreweave.config import Settings
from loreweave.db.engine import Database
from loreweave.llm.registry import Providers
from loreweave.memory.transcript import TranscriptService
from loreweave.metrics import Metrics
from loreweave.queue.jobs import Kinds
from loreweave.queue.local import LocalWorkers
from loreweave.queue.notify import EventNotifier, Notifier, wake_all
from loreweave.queue.pipeline import Pipeline
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.retrieval import Retriever
from loreweave.vectors.service import CompositeVectorService


@dataclass
class Store:
    """The stored world of one process: no chat model, no workers."""

    settings: Settings
    database: Database
    kinds: Kinds
    notifier: Notifier
    vectors: CompositeVectorService
    transcript: TranscriptService
    lore: LoreService
    jobs: JobActions  # a person's retry or skip of a failed job

    def wake_workers(self) -> None:
        """Tell every queue it may have work (after a person's change: turns to analyse again,
        a job retried or skipped, a fork's pending work)."""
        wake_all(self.notifier, self.kinds.names)

    def close(self) -> None:
        self.database.dispose()


@dataclass
class Loreweave(Store):
    """Everything one process needs, built once."""

    providers: Providers
    cache: IndexCache  # FAISS caches of the vector rows, searched by the retriever
    retriever: Retriever
    chat: ChatService
    pipeline: Pipeline
    metrics: Metrics
    alerts: AlertMonitor
    proxy: ProxyService
    workers: LocalWorkers | None = field(default=None)

    def start_local_workers(self) -> LocalWorkers:
        if not isinstance(self.notifier, EventNotifier):
            raise RuntimeError("local workers need the local queue backend")
        if self.workers is None:
            self.workers = LocalWorkers(self.pipeline, self.notifier, self.settings)
            self.workers.start()
        return self.workers

    def close(self) -> None:
        self.alerts.stop()
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        self.cache.persist()
        super().close()

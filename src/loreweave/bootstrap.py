"""The composition root: settings in, a wired loreweave out.  Nothing else builds engines,
providers or workers; no work happens at import time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from loreweave.alerts import conditions
from loreweave.alerts.monitor import AlertMonitor
from loreweave.alerts.sink import AlertSink
from loreweave.chat import ChatService, Names
from loreweave.config import Settings
from loreweave.db.engine import Database
from loreweave.llm.registry import Providers, build_embedder, build_providers
from loreweave.llm.types import Embedder
from loreweave.lore import LoreService
from loreweave.memory.analysis import AnalysisService
from loreweave.memory.creation import EntityCreationWorker
from loreweave.memory.rewrite import NoteRewriteWorker
from loreweave.memory.transcript import TranscriptService
from loreweave.metrics import Metrics
from loreweave.proxy import ProxyService
from loreweave.queue import status
from loreweave.queue.executor import Handler
from loreweave.queue.local import LocalWorkers
from loreweave.queue.notify import EventNotifier, Notifier, QueueName, wake_all
from loreweave.queue.pipeline import Pipeline
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.retrieval import Retriever
from loreweave.vectors.service import CompositeVectorService

log = logging.getLogger("loreweave")


@dataclass
class Loreweave:
    """Everything one process needs, built once."""

    settings: Settings
    database: Database
    providers: Providers
    notifier: Notifier
    vectors: CompositeVectorService
    cache: IndexCache
    retriever: Retriever
    chat: ChatService
    transcript: TranscriptService
    pipeline: Pipeline
    metrics: Metrics
    alerts: AlertMonitor
    proxy: ProxyService
    lore: LoreService
    workers: LocalWorkers | None = field(default=None)

    def start_local_workers(self) -> LocalWorkers:
        if not isinstance(self.notifier, EventNotifier):
            raise RuntimeError("local workers need the local queue backend")
        if self.workers is None:
            self.workers = LocalWorkers(self.pipeline, self.notifier, self.settings)
            self.workers.start()
        return self.workers

    def act_on_job(
        self,
        action: Literal["retry", "skip"],
        job_id: uuid.UUID,
        *,
        by: str,
        queue: QueueName | None = None,
    ) -> dict[str, Any]:
        """A person's retry or skip of a failed job (:func:`loreweave.queue.status.act`), the
        notes it took back synced to the index, and the workers told."""
        acted = status.act(self.database.uow, action, job_id, by=by, queue=queue)
        if acted.reverted is not None and acted.session_id is not None:
            self.transcript.sync(acted.session_id, acted.reverted)
        wake_all(self.notifier)  # a retried job is ready; a skipped one unblocks its key's next
        return acted.job

    def close(self) -> None:
        self.alerts.stop()
        if self.workers is not None:
            self.workers.stop()
            self.workers = None
        self.cache.persist()
        self.database.dispose()


def build_alerts(
    settings: Settings,
    database: Database,
    providers: Providers,
    vectors: CompositeVectorService,
) -> AlertMonitor:
    """The alert monitor: provider health, the index and the broker besides what the database's
    jobs show."""
    config = settings.alert_config
    webhook = settings.alert_webhook_url
    sink = AlertSink(config, webhook.get_secret_value() if webhook else None)
    checks: list[Callable[[], list[conditions.Condition]]] = [
        lambda: conditions.providers(providers.stats.health_snapshot(), config)
    ]
    if config.verify_interval > 0:
        checks.append(conditions.IndexVerification(vectors.verify, config.verify_interval))
    if settings.queue_backend == "celery":
        checks.append(lambda: conditions.broker(settings.broker_url))
    secrets = [
        s.get_secret_value()
        for s in (settings.mistral_api_key, settings.openai_api_key, webhook, *settings.api_keys)
        if s is not None
    ]
    return AlertMonitor(database.uow, config, sink, checks=checks, secrets=secrets)


def build_notifier(settings: Settings) -> Notifier:
    if settings.queue_backend == "celery":
        from loreweave.queue.celery_app import CeleryNotifier

        notifier: Notifier = CeleryNotifier(settings)
        return notifier
    return EventNotifier()


def build_vectors(
    settings: Settings, database: Database, embedder: Embedder | None = None
) -> CompositeVectorService:
    """The composite documents' vector service, chunked as the retrieval searches (for the
    processes that only index: ``loreweave import``, ``index verify|rebuild``)."""
    return CompositeVectorService(
        database,
        embedder or build_embedder(settings),
        settings.composite_document_config,
        chunk_words=settings.retrieval_config.chunk_words,
    )


def build_lore(settings: Settings, database: Database) -> LoreService:
    """The lore use cases for a process that only edits lore (``loreweave import``)."""
    return LoreService(database, build_vectors(settings, database))


def build(
    settings: Settings,
    *,
    providers: Providers | None = None,
    notifier: Notifier | None = None,
    database: Database | None = None,
) -> Loreweave:
    database = database or Database(settings.database_url)
    database.ensure_schema()
    providers = providers or build_providers(settings)
    notifier = notifier or build_notifier(settings)
    embedder, chat_model = providers.embedder, providers.chat
    retrieval = settings.retrieval_config
    vectors = build_vectors(settings, database, embedder)
    cache = IndexCache(dim=embedder.dim, model=embedder.model_name, index_dir=settings.index_dir)
    retriever = Retriever(database, embedder, cache, vectors, retrieval)
    llm = settings.llm_config
    transcript = TranscriptService(database.uow, vectors)
    chat = ChatService(
        database,
        chat_model,
        retriever,
        llm,
        on_turn_committed=lambda _session_id: notifier.notify("analysis"),
        transcript=transcript,
        names=Names(settings.persona_name, settings.character_name),
    )
    uow = database.uow
    analysis = AnalysisService(uow, chat_model, llm, settings.pipeline_config)
    handlers: dict[QueueName, Handler] = {
        "analysis": analysis.handle,
        "note_updates": NoteRewriteWorker(
            uow, chat_model, vectors, llm, settings.pipeline_config
        ).handle,
        "entity_creations": EntityCreationWorker(
            uow, chat_model, vectors, llm, settings.pipeline_config
        ).handle,
    }
    pipeline = Pipeline(uow, handlers, settings, notifier)
    metrics = Metrics(database, providers.stats)
    alerts = build_alerts(settings, database, providers, vectors)

    def notify_all() -> None:
        wake_all(notifier)

    proxy = ProxyService(
        database, chat, transcript, retriever, llm, settings.proxy_config, notify_all
    )
    return Loreweave(
        settings,
        database,
        providers,
        notifier,
        vectors,
        cache,
        retriever,
        chat,
        transcript,
        pipeline,
        metrics,
        alerts,
        proxy,
        LoreService(database, vectors),
    )

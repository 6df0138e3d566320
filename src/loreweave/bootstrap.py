"""The composition root: settings in, a wired loreweave out.  Nothing else builds engines,
providers or services (the container starts the local worker threads from the pipeline built
here); no work happens at import time.

- :func:`build` — everything a serving or working process needs (:class:`Loreweave`);
- :func:`build_store` — the stored world without a chat model (:class:`Store`), for the
  commands that import, export, verify the index or act on jobs;
- :func:`open_database` — only the database, for the schema commands.

``kinds`` is the process's registry of job kinds (default: the spec's three); an application
adds its own with ``KINDS.plus(...)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from loreweave.alerts import conditions
from loreweave.alerts.monitor import AlertMonitor
from loreweave.alerts.sink import AlertSink
from loreweave.app.chat import ChatService, Names
from loreweave.app.jobs import JobActions
from loreweave.app.lore import LoreService
from loreweave.app.proxy import ProxyService
from loreweave.config import Settings
from loreweave.container import Loreweave, Store
from loreweave.db.engine import Database
from loreweave.llm.ratelimit import InFlight
from loreweave.llm.registry import Providers, build_embedder, build_providers
from loreweave.llm.types import Embedder
from loreweave.memory.ports import ANALYSIS_QUEUE
from loreweave.memory.transcript import TranscriptService
from loreweave.metrics import Metrics
from loreweave.queue.jobs import Kinds, Parts
from loreweave.queue.kinds import KINDS
from loreweave.queue.notify import EventNotifier, Notifier, NullNotifier, wake_all
from loreweave.queue.pipeline import Pipeline
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.retrieval import Retriever
from loreweave.vectors.service import CompositeVectorService

log = logging.getLogger("loreweave")

__all__ = ["Loreweave", "Store", "build", "build_store", "open_database"]


def open_database(settings: Settings) -> Database:
    """The configured database, its connection checked (its schema is not: the ``db``
    commands are what changes it)."""
    database = Database(settings.database_url)
    database.check_connection()
    return database


def build_notifier(settings: Settings) -> Notifier:
    if settings.queue_backend == "celery":
        from loreweave.queue.celery_app import CeleryNotifier

        notifier: Notifier = CeleryNotifier(settings)
        return notifier
    return EventNotifier()


def build_store(
    settings: Settings,
    *,
    database: Database | None = None,
    notifier: Notifier | None = None,
    kinds: Kinds = KINDS,
) -> Store:
    """The stored world: the database (its schema checked, SQLite's migrated), the vectors,
    the lore and transcript services.  No chat model is built; ``notifier`` defaults to none
    (the workers poll)."""
    database = database or Database(settings.database_url)
    database.ensure_schema()
    return _store(settings, database, build_embedder(settings), notifier or NullNotifier(), kinds)


def _store(
    settings: Settings, database: Database, embedder: Embedder, notifier: Notifier, kinds: Kinds
) -> Store:
    vectors = CompositeVectorService(
        database,
        embedder,
        settings.composite_document_config,
        chunk_words=settings.retrieval_config.chunk_words,  # as the retrieval searches
    )
    transcript = TranscriptService(database.uow, vectors, kinds.models)
    return Store(
        settings=settings,
        database=database,
        kinds=kinds,
        notifier=notifier,
        vectors=vectors,
        transcript=transcript,
        lore=LoreService(database, vectors),
        jobs=JobActions(database.uow, kinds, transcript, notifier),
    )


def build_alerts(
    settings: Settings,
    database: Database,
    kinds: Kinds,
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
    return AlertMonitor(database.uow, kinds, config, sink, checks=checks, secrets=secrets)


def build(
    settings: Settings,
    *,
    providers: Providers | None = None,
    notifier: Notifier | None = None,
    database: Database | None = None,
    kinds: Kinds = KINDS,
) -> Loreweave:
    database = database or Database(settings.database_url)
    database.ensure_schema()
    providers = providers or build_providers(settings)
    notifier = notifier or build_notifier(settings)
    embedder, chat_model, llm = providers.embedder, providers.chat, settings.llm_config
    store = _store(settings, database, embedder, notifier, kinds)
    vectors, transcript = store.vectors, store.transcript
    cache = IndexCache(dim=embedder.dim, model=embedder.model_name, index_dir=settings.index_dir)
    retriever = Retriever(database, embedder, cache, vectors, settings.retrieval_config)
    chat = ChatService(
        database,
        chat_model,
        retriever,
        llm,
        on_turn_committed=lambda _session_id: notifier.notify(ANALYSIS_QUEUE),
        transcript=transcript,
        names=Names(settings.persona_name, settings.character_name),
    )

    def notify_all() -> None:
        wake_all(notifier, kinds.names)

    return Loreweave(
        **vars(store),
        providers=providers,
        cache=cache,
        retriever=retriever,
        chat=chat,
        pipeline=Pipeline(
            kinds,
            Parts(
                database.uow,
                InFlight(chat_model, settings.provider_config.calls_in_flight),
                vectors,
                settings,
            ),
            notifier,
        ),
        metrics=Metrics(database, kinds, providers.stats),
        alerts=build_alerts(settings, database, kinds, providers, vectors),
        proxy=ProxyService(
            database, chat, transcript, retriever, llm, settings.proxy_config, notify_all
        ),
    )

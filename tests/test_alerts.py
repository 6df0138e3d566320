"""Alerts for critical failures, delivered to a real local webhook receiver: each condition fires
once and resolves once, once per cluster, with a cool-down, and without secrets."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from loreweave.alerts.sink import Notification, payload
from loreweave.bootstrap import Loreweave
from loreweave.db import Database, migrate
from loreweave.db.models import NoteUpdateTask, utcnow
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.ratelimit import RateLimiter
from loreweave.llm.resilience import CallStats, Resilience, ResilientChatModel, RetryPolicy
from loreweave.llm.types import ChatModel
from loreweave.queue import jobs
from loreweave.queue.kinds import KINDS
from loreweave.queue.notify import NullNotifier

from .pipeline_support import AppendingRewriter, RoutedModel, make_app, make_world
from .private_services import PrivatePostgres

INTERVAL = 1.0


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count}: {self.received}"
            time.sleep(0.02)
        time.sleep(0.1)  # and nothing more
        return list(self.received)

    def of(self, key: str) -> list[str]:
        return [m["state"] for m in self.received if m["alert"] == key]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()


def alerting_app(
    database: Database,
    tmp_path: Path,
    model: ChatModel,
    receiver: Receiver,
    stats: CallStats | None = None,
    **extra: Any,
) -> Loreweave:
    return make_app(
        database,
        tmp_path / uuid.uuid4().hex,
        model,
        notifier=NullNotifier(),
        stats=stats,
        alert_webhook_url=receiver.url,
        alert_config={"interval": INTERVAL, "cooldown": 60, "verify_interval": 0, **extra},
        dual_queue_config={"note_update_queue": {"max_retries": 1, "retry_delay": 0}},
    )


class Broken:
    provider = "broken"

    def complete(self, request: Any) -> Any:
        raise RuntimeError("the rewrite crashed")


def fail_one_update(database: Database, lw: Loreweave) -> uuid.UUID:
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    with database.uow() as uow:
        task = NoteUpdateTask(
            lore_entry_id=ids["Momo"], session_id=session_id, update_summary="ev", turn_index=0
        )
        uow.session.add(task)
        uow.commit()
    lw.pipeline.drain()
    return task.id


def test_a_failed_job_fires_once_and_resolves_once_across_processes(
    database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    model = RoutedModel(rewrite=Broken())
    first = alerting_app(database, tmp_path, model, receiver)
    second = alerting_app(database, tmp_path, model, receiver)  # another process, same database
    task_id = fail_one_update(database, first)
    now = utcnow()
    for offset in (0, 0.5, 1.0):  # both processes observe it, again and again
        first.alerts.evaluate(now + timedelta(seconds=offset))
        second.alerts.evaluate(now + timedelta(seconds=offset))
    [message] = receiver.wait_for(1)
    assert message["alert"] == "job_failed:note_updates" and message["state"] == "firing"
    assert message["details"]["jobs"][0]["id"] == str(task_id)
    assert "the rewrite crashed" in message["details"]["jobs"][0]["error"]
    with database.uow() as uow:
        jobs.skip(uow.session, KINDS.named("note_updates"), task_id, "the test")
        uow.commit()
    later = now + timedelta(seconds=5 * INTERVAL)
    first.alerts.evaluate(later)
    second.alerts.evaluate(later)
    receiver.wait_for(2)
    assert receiver.of("job_failed:note_updates") == ["firing", "resolved"]
    assert first.alerts.active() == []


def test_a_storm_sends_one_message_within_the_cooldown(
    database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    lw = alerting_app(database, tmp_path, RoutedModel(rewrite=Broken()), receiver)
    fail_one_update(database, lw)
    now = utcnow()
    lw.alerts.evaluate(now)
    with database.uow(read_only=True) as uow:  # resolved, then failing again within the cooldown
        task = uow.session.scalars(select(NoteUpdateTask)).one()
    with database.uow() as uow:
        jobs.skip(uow.session, KINDS.named("note_updates"), task.id, "the test")
        uow.commit()
    lw.alerts.evaluate(now + timedelta(seconds=3))
    fail_one_update(database, lw)
    lw.alerts.evaluate(now + timedelta(seconds=6))
    receiver.wait_for(2)
    assert receiver.of("job_failed:note_updates") == ["firing", "resolved"]


def test_a_provider_refusing_its_key(
    database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    scripted = ScriptedChatModel()
    scripted.add("The story goes on.", prompt="chat", repeat=True)
    scripted.add(prompt="analysis", error="authentication")
    scripted.add({"updates": []}, prompt="analysis", repeat=True)
    stats = CallStats()
    model = ResilientChatModel(
        scripted,
        Resilience(RetryPolicy(1, 0.0, 0.0), RateLimiter(1000, 10_000_000), stats=stats),
    )
    lw = alerting_app(database, tmp_path, model, receiver, stats)
    _, session_id, _ = make_world(database, ("Momo", "Character", "A girl."))
    lw.chat.turn(session_id, "Hello.")  # the chat call works; the analysis is refused
    lw.pipeline.drain()
    now = utcnow()
    lw.alerts.evaluate(now)
    receiver.wait_for(2)
    assert receiver.of("provider_auth:scripted") == ["firing"]
    assert receiver.of("job_failed:analysis") == ["firing"]
    with database.uow(read_only=True) as uow:
        turn = uow.turns.recent(session_id, 1)[0]
    with database.uow() as uow:
        jobs.retry(uow.session, KINDS.named("analysis"), turn.id)
        uow.commit()
    lw.pipeline.drain()  # the key works again
    lw.alerts.evaluate(now + timedelta(seconds=5 * INTERVAL))
    receiver.wait_for(4)
    assert receiver.of("provider_auth:scripted") == ["firing", "resolved"]
    assert receiver.of("job_failed:analysis") == ["firing", "resolved"]


def test_a_backlog_aged_past_its_target_with_workers_stopped(
    database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    scripted = ScriptedChatModel()
    scripted.add({"updates": []}, prompt="analysis", repeat=True)
    lw = alerting_app(database, tmp_path, RoutedModel(analysis=scripted), receiver)
    _, session_id, _ = make_world(database)
    lw.chat.persist(session_id, "Hello.", "Hi.", [])  # no worker runs
    now = utcnow()
    lw.alerts.evaluate(now + timedelta(seconds=10))  # within the spec's 30 s: nothing
    lw.alerts.evaluate(now + timedelta(seconds=40))
    [message] = receiver.wait_for(1)
    assert message["alert"] == "backlog:analysis" and message["details"]["oldest_seconds"] > 30
    lw.pipeline.drain()
    lw.alerts.evaluate(now + timedelta(seconds=50))
    receiver.wait_for(2)
    assert receiver.of("backlog:analysis") == ["firing", "resolved"]


@pytest.mark.postgres
def test_the_database_unreachable(tmp_path: Path, receiver: Receiver) -> None:
    try:
        server = PrivatePostgres()
        server.start()
    except Exception as exc:
        pytest.fail(f"a private PostgreSQL cluster must start: {exc}")
    try:
        database = Database(server.url)
        migrate.upgrade(database.engine)
        lw = alerting_app(database, tmp_path, AppendingRewriter(), receiver)
        lw.alerts.evaluate()
        server.halt()  # the database goes away
        lw.alerts.evaluate()
        lw.alerts.evaluate()  # still down: no second message within the cooldown
        [message] = receiver.wait_for(1)
        assert message["alert"] == "database_unreachable" and message["state"] == "firing"
        server.start()
        lw.alerts.evaluate()
        receiver.wait_for(2)
        assert receiver.of("database_unreachable") == ["firing", "resolved"]
        database.dispose()
    finally:
        server.stop()


def test_secrets_never_leave(database: Database, tmp_path: Path, receiver: Receiver) -> None:
    secret = "sk-live-0123456789abcdef"

    class Leaky:
        provider = "leaky"

        def complete(self, request: Any) -> Any:
            raise RuntimeError(
                f"upstream said: invalid key {secret}; Authorization: Bearer abcdefghijkl"
            )

    lw = make_app(
        database,
        tmp_path,
        RoutedModel(rewrite=Leaky()),
        notifier=NullNotifier(),
        alert_webhook_url=receiver.url,
        alert_config={"verify_interval": 0},
        dual_queue_config={"note_update_queue": {"max_retries": 1}},
    )
    fail_one_update(database, lw)
    lw.alerts.evaluate()
    [message] = receiver.wait_for(1)
    text = json.dumps(message)
    assert secret not in text and "abcdefghijkl" not in text and "[redacted]" in text


def test_slack_and_discord_payloads() -> None:
    note = Notification("backlog:analysis", "firing", "the oldest job waited 40 s", {}, utcnow())
    assert payload(note, "slack") == {
        "text": "[loreweave] FIRING backlog:analysis: the oldest job waited 40 s"
    }
    assert payload(note, "discord")["content"].startswith("[loreweave] FIRING")
    assert payload(note, "json")["state"] == "firing"


def test_the_webhook_url_is_a_secret_and_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    from loreweave.config import load_settings
    from loreweave.errors import ConfigurationError

    url = "https://hooks.slack.example/services/T000/B000/XXXXSECRET"
    monkeypatch.setenv("LOREWEAVE_ALERT_WEBHOOK_URL", url)
    settings = load_settings()
    assert "XXXXSECRET" not in repr(settings) and "XXXXSECRET" not in str(settings.model_dump())
    monkeypatch.setenv("LOREWEAVE_ALERT_WEBHOOK_URL", "ftp://example/hook")
    with pytest.raises(ConfigurationError, match="alert_webhook_url"):
        load_settings()


def test_an_index_that_disagrees_with_the_database(
    database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    lw = alerting_app(database, tmp_path, AppendingRewriter(), receiver, verify_interval=0.001)
    _, _, ids = make_world(database, ("Momo", "Character", "A girl."))
    lw.vectors.sync_entry(ids["Momo"])
    now = utcnow()
    lw.alerts.evaluate(now)
    with database.uow() as uow:  # changed behind loreweave's back: the vector is stale
        uow.entries.require(ids["Momo"]).content = "A girl who moved away."
        uow.commit()
    time.sleep(0.01)
    lw.alerts.evaluate(now + timedelta(seconds=1))
    [message] = receiver.wait_for(1)
    assert message["alert"] == "index_mismatch" and message["details"]["stale"] == 1
    lw.vectors.verify(repair=True)
    time.sleep(0.01)
    lw.alerts.evaluate(now + timedelta(seconds=5 * INTERVAL))
    receiver.wait_for(2)
    assert receiver.of("index_mismatch") == ["firing", "resolved"]


def test_a_provider_failing_for_minutes_and_a_broker_away() -> None:
    from loreweave.alerts import conditions
    from loreweave.config import AlertConfig
    from loreweave.llm.resilience import ProviderHealth

    now = time.time()
    health = {
        "mistral": ProviderHealth(
            last_success=now - 900,
            failing_since=now - 6 * 60,
            last_error="HTTP 503: overloaded",
            last_error_kind="ProviderUnavailable",
        ),
        "openai": ProviderHealth(last_success=now - 5, failing_since=now - 60),
    }
    found = conditions.providers(health, AlertConfig(provider_failing_minutes=5), now)
    assert [c.key for c in found] == ["provider_failing:mistral"]  # a minute is not long enough
    assert found[0].details["minutes"] >= 6
    broker = conditions.broker("redis://127.0.0.1:1/0")  # nothing listens on port 1
    assert [c.key for c in broker] == ["broker_unreachable"]

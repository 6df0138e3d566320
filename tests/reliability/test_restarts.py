"""PostgreSQL restarted in the middle of a run: the workers ride it out and every event is still
applied exactly once.  (Redis going away mid-run: tests/test_worker_processes.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import NoteUpdateTask, TaskStatus
from loreweave.testing import FakeProviderServer

from ..pipeline_support import make_app, make_world, unfinished
from ..test_pipeline import insert_events
from .story import SEPARATOR, story_llm


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_postgres_restart_mid_run(database: Database, tmp_path: Path) -> None:
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql"):
        if os.environ.get("CI") == "true":
            pytest.fail("pg_ctlcluster must be available under CI=true")
        pytest.skip("no local PostgreSQL cluster to restart")
    _, session_id, ids = make_world(
        database, *[(f"Person {i}", "Character", f"Person {i}.") for i in range(4)]
    )
    insert_events(database, session_id, ids, per_entry=6)
    with FakeProviderServer(chat_handler=story_llm, latency=0.2) as server:
        from loreweave.llm.providers.openai_compatible import OpenAIChatModel

        model = OpenAIChatModel(None, base_url=server.openai_url, timeout=10)
        app = make_app(
            database,
            tmp_path,
            model,
            dual_queue_config={
                "note_update_queue": {"lease_seconds": 2, "retry_delay": 0.1, "batch_size": 2}
            },
            pipeline_config={"poll_interval": 0.05, "sweep_interval": 0.5},
        )
        app.start_local_workers()
        try:
            deadline = time.monotonic() + 30
            while len(server.requests_to("/v1/chat/completions")) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            restart_postgres()  # workers are mid-run: some hold leases, some are writing
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
    with database.uow() as uow:
        tasks = list(uow.session.scalars(select(NoteUpdateTask)))
        assert all(t.status == TaskStatus.DONE for t in tasks)
        for title, entry_id in ids.items():
            note = uow.notes.for_entry(session_id, entry_id)
            assert note is not None
            assert note.note_content.split(SEPARATOR) == [f"{title}#{turn}" for turn in range(6)]

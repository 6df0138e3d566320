"""Worker processes SIGKILLed at random moments, 20 times over: every event is applied exactly
once, in order, once the leases of the dead workers expire."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import NoteUpdateTask, TaskStatus
from loreweave.queue.notify import NullNotifier
from loreweave.testing import FakeProviderServer

from ..conftest import database_url
from ..pipeline_support import make_app, make_world, unfinished
from ..test_pipeline import insert_events
from .story import SEPARATOR, STORY

TRIALS = 20
CHAT = "/v1/chat/completions"


def test_random_sigkills_lose_and_repeat_nothing(database: Database, tmp_path: Path) -> None:
    rng = random.Random(11)
    _, session_id, ids = make_world(
        database, *[(f"Person {i}", "Character", f"Person {i}.") for i in range(4)]
    )
    insert_events(database, session_id, ids, per_entry=8)
    with FakeProviderServer(**STORY, latency=0.25, embedding_dim=32) as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LOREWEAVE_")},
            "LOREWEAVE_DATABASE_URL": database_url(database),
            "LOREWEAVE_LLM_PROVIDER": "openai",
            "LOREWEAVE_EMBEDDING_PROVIDER": "openai",
            "LOREWEAVE_OPENAI_BASE_URL": server.openai_url,
            "LOREWEAVE_LLM_CONFIG__EMBEDDING_MODEL": "fake-embed",
            "LOREWEAVE_INDEX_DIR": str(tmp_path / "index"),
            "LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__LEASE_SECONDS": "1",
            "LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__BATCH_SIZE": "2",
            # one entity per call: the work takes enough calls for the kills to land in them
            "LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__ENTITIES_PER_CALL": "1",
            # an expired lease is a failed attempt: allow more than the kills to come
            "LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__MAX_RETRIES": str(TRIALS + 5),
            "LOREWEAVE_PIPELINE_CONFIG__POLL_INTERVAL": "0.05",
            # every event goes through the rewrite call (see pipeline_support)
            "LOREWEAVE_PIPELINE_CONFIG__MODE": "full",  # every event through the rewrite call
            "LOREWEAVE_PIPELINE_CONFIG__REWRITE_FIRST_NOTE": "true",
            "LOREWEAVE_PIPELINE_CONFIG__SWEEP_INTERVAL": "0.5",
        }
        kills_mid_call = 0
        for _trial in range(TRIALS):
            seen = len(server.requests_to(CHAT))
            worker = subprocess.Popen(
                [sys.executable, "-m", "loreweave", "worker", "--backend", "local"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 20
            while (
                len(server.requests_to(CHAT)) == seen
                and time.monotonic() < deadline
                and unfinished(database)
            ):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))  # somewhere inside, before or after a rewrite call
            kills_mid_call += int(len(server.requests_to(CHAT)) > seen)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        assert kills_mid_call >= TRIALS // 2  # most kills landed while the worker was busy
        app = make_app(
            database,
            tmp_path,
            _model(server),
            notifier=NullNotifier(),
            dual_queue_config={"note_update_queue": {"max_retries": TRIALS + 5}},
        )
        deadline = time.monotonic() + 60
        while unfinished(database):
            assert time.monotonic() < deadline
            time.sleep(0.3)
            app.pipeline.sweep()
            app.pipeline.drain()
    with database.uow() as uow:
        tasks = list(uow.session.scalars(select(NoteUpdateTask)))
        assert all(t.status == TaskStatus.DONE for t in tasks)
        for title, entry_id in ids.items():
            note = uow.notes.for_entry(session_id, entry_id)
            assert note is not None
            assert note.note_content.split(SEPARATOR) == [f"{title}#{turn}" for turn in range(8)]


def _model(server: FakeProviderServer):  # type: ignore[no-untyped-def]
    from loreweave.llm.providers.openai_compatible import OpenAIChatModel

    return OpenAIChatModel(None, base_url=server.openai_url, timeout=10)

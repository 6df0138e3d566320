"""Provider faults over a 50-turn story: 20 % 5xx, 10 % 429 with Retry-After, 10 % malformed
bodies, 5 % timeouts.  Every task ends done or failed with its reason; no applied event is lost
or applied twice; no entity is created twice.  And, apart, creations and rewrites refused for
good: the story's memory goes on around them."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from loreweave.bootstrap import Loreweave, build
from loreweave.config import Settings
from loreweave.db import Database
from loreweave.db.models import (
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    TaskStatus,
    TurnStatus,
)
from loreweave.errors import ProviderError
from loreweave.queue import status
from loreweave.queue.notify import NullNotifier
from loreweave.testing import FakeProviderServer

from ..pipeline_support import make_world, unfinished
from .story import SEPARATOR, STORY

FAULTS = {"5xx": 0.20, "429": 0.10, "malformed": 0.10, "timeout": 0.05}
TURNS = 50


def story_app(
    database: Database, server: FakeProviderServer, tmp_path: Path, **settings: Any
) -> tuple[Loreweave, uuid.UUID]:
    """loreweave on the fake provider with these settings, and a world of four people with a
    session."""
    lw = build(
        Settings(
            llm_provider="openai",
            embedding_provider="openai",
            openai_base_url=server.openai_url,
            index_dir=tmp_path / "index",
            llm_config={"embedding_model": "fake-embed"},  # type: ignore[arg-type]
            **settings,
        ),
        notifier=NullNotifier(),
        database=database,
    )
    _, session_id, ids = make_world(
        database, *[(f"Person {i}", "Character", f"Person {i}.") for i in range(4)]
    )
    lw.vectors.sync_entries(list(ids.values()))
    return lw, session_id


def test_fifty_turns_under_provider_faults(database: Database, tmp_path: Path) -> None:
    with FakeProviderServer(**STORY, embedding_dim=32, fault_delay=1.0, seed=7) as server:
        lw, session_id = story_app(
            database,
            server,
            tmp_path,
            provider_config={
                "timeout": 0.5,
                "max_attempts": 3,
                "backoff_initial": 0.01,
                "backoff_max": 0.05,
                "requests_per_second": 1000,
            },
            dual_queue_config={
                "note_update_queue": {"max_retries": 6, "retry_delay": 0.01},
                "entity_creation_queue": {"max_retries": 6, "retry_delay": 0.01},
            },
            pipeline_config={
                "analysis_max_retries": 6,
                "analysis_retry_delay": 0.01,
                "mode": "full",  # the spec's pipeline: every event goes through the rewrite call
                "rewrite_first_note": True,
            },
        )
        server.faults = FAULTS  # from here on
        played = 0
        for turn in range(TURNS):
            for _attempt in range(6):  # a player whose turn failed sends it again
                try:
                    lw.chat.turn(session_id, f"Turn {turn}: the story moves on.")
                    played += 1
                    break
                except ProviderError:
                    continue
        deadline = time.monotonic() + 120
        while unfinished(database):
            assert time.monotonic() < deadline, "the pipeline did not settle"
            lw.pipeline.drain()
            time.sleep(0.02)
        assert sum(server.injected.values()) > 50  # the faults really happened
    assert played >= TURNS - 2
    with database.uow() as uow:
        turns = uow.turns.recent(session_id, 1000)
        assert all(t.processing_status in (TurnStatus.DONE, TurnStatus.FAILED) for t in turns)
        assert all(t.processing_errors for t in turns if t.processing_status == TurnStatus.FAILED)
        tasks = list(uow.session.scalars(select(NoteUpdateTask)))
        creations = list(uow.session.scalars(select(EntityCreationTask)))
        for task in [*tasks, *creations]:
            assert task.status in (TaskStatus.DONE, TaskStatus.FAILED)
            if task.status == TaskStatus.FAILED:
                assert task.error_message
        # every applied event is in its note exactly once, in turn order; no failed one is
        by_key: dict = {}
        for task in sorted(tasks, key=lambda t: (t.turn_index, t.created_at)):
            by_key.setdefault(task.lore_entry_id, []).append(task)
        for entry_id, key_tasks in by_key.items():
            note = uow.notes.for_entry(session_id, entry_id)
            applied = [t.update_summary for t in key_tasks if t.status == TaskStatus.DONE]
            assert (note.note_content.split(SEPARATOR) if note else []) == applied
        # no duplicate entities
        titles = [
            e.title
            for e in uow.session.scalars(
                select(LoreEntry).where(LoreEntry.origin_session_id == session_id)
            )
        ]
        assert sorted(titles) == sorted(set(titles))
        assert {t.outcome for t in creations if t.status == TaskStatus.DONE} <= {
            "created",
            "merged",
        }
        done_updates = sum(t.status == TaskStatus.DONE for t in tasks)
        done_creations = sum(t.status == TaskStatus.DONE for t in creations)
        print(
            f"faults injected {server.injected}; note updates done {done_updates}/{len(tasks)}, "
            f"creations done {done_creations}/{len(creations)}, turns analysed "
            f"{sum(t.processing_status == TurnStatus.DONE for t in turns)}/{len(turns)}"
        )
        assert done_updates >= 0.9 * len(tasks)


REFUSED_CREATION_TURNS = {25}  # of the ten newcomers, one: 10 %
REFUSED_EVENTS = {"event-13", "event-33", "event-47"}  # of fifty events: 6 %


def _refused(prompt: str | None, body: dict[str, Any]) -> bool:
    """The provider's content filter: these creations and these events' rewrites, always."""
    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    if prompt is not None and prompt.startswith("creation"):
        return any(f"appears at turn {turn}." in text for turn in REFUSED_CREATION_TURNS)
    if prompt is not None and prompt.startswith("rewrite"):
        return any(re.search(rf"\b{event}\b", text) for event in REFUSED_EVENTS)
    return False


def test_fifty_turns_with_permanent_refusals(database: Database, tmp_path: Path) -> None:
    """Creations and rewrites refused for good (HTTP 400, as a moderation filter answers) while
    the story goes on: every other job ends done, every refused one is failed and listed with
    its reason, and each note is exactly its applied events, in order — a replay that skips
    exactly the failed events.  Nothing waits on a failure but what depends on it."""
    with FakeProviderServer(**STORY, embedding_dim=32, refuse=_refused) as server:
        lw, session_id = story_app(
            database,
            server,
            tmp_path,
            provider_config={"max_attempts": 1},
            dual_queue_config={
                "note_update_queue": {"retry_delay": 0.01, "batch_size": 1},
                "entity_creation_queue": {"retry_delay": 0.01},
            },
            pipeline_config={"mode": "full", "rewrite_first_note": True},
        )
        for turn in range(TURNS):
            lw.chat.turn(session_id, f"Turn {turn}: the story moves on.")
            lw.pipeline.drain()
        assert server.injected.get("refused", 0) >= len(REFUSED_EVENTS) + 1
    with database.uow() as uow:
        turns = uow.turns.recent(session_id, 1000)
        assert [t.processing_status for t in turns] == [TurnStatus.DONE] * TURNS
        tasks = list(uow.session.scalars(select(NoteUpdateTask)))
        creations = list(uow.session.scalars(select(EntityCreationTask)))
        failed = [t for t in [*tasks, *creations] if t.status == TaskStatus.FAILED]
        assert {t.status for t in [*tasks, *creations]} <= {TaskStatus.DONE, TaskStatus.FAILED}
        assert sorted(t.update_summary for t in tasks if t in failed) == sorted(REFUSED_EVENTS)
        assert [t.turn_index for t in creations if t in failed] == sorted(REFUSED_CREATION_TURNS)
        assert all("content filtered" in (t.error_message or "") for t in failed)
        listed = status.queue_status(uow.session, lw.kinds)
        shown = {job["id"] for queue in listed.values() for job in queue["failed"]}
        assert shown == {str(t.id) for t in failed}
        by_key: dict[Any, list[NoteUpdateTask]] = {}
        for task in sorted(tasks, key=lambda t: (t.turn_index, t.created_at)):
            by_key.setdefault(task.lore_entry_id, []).append(task)
        for entry_id, key_tasks in by_key.items():
            note = uow.notes.for_entry(session_id, entry_id)
            applied = [t.update_summary for t in key_tasks if t.status == TaskStatus.DONE]
            assert (note.note_content.split(SEPARATOR) if note else []) == applied

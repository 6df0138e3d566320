"""The priority policy (DESIGN §1.2, issue 16): when calls in flight are the limit, a session
being played gets its memory before an idle session's backlog; creations go before rewrites;
the policy is configurable and shown in the queue status."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from loreweave.api import create_app
from loreweave.db import Database
from loreweave.db.models import ChatSession, ChatTurn, World, utcnow
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.types import ChatResponse

from .pipeline_support import AppendingRewriter, RoutedModel, make_app, make_world

BACKLOG = 12


def _model() -> RoutedModel:
    analysis = ScriptedChatModel()
    analysis.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Something happened."}]},
        prompt="analysis",
        repeat=True,
    )
    return RoutedModel(analysis=analysis, rewrite=AppendingRewriter())


def _idle_backlog_and_a_played_turn(database: Database, app) -> tuple[uuid.UUID, uuid.UUID]:  # type: ignore[no-untyped-def]
    """Session A: a backlog of turns recorded an hour ago (an import, or loreweave was down);
    session B: one turn played now."""
    world_id, idle, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    for i in range(BACKLOG):
        app.chat.record(idle, f"old message {i}", f"old reply {i}")
    an_hour_ago = utcnow() - timedelta(hours=1)
    with database.uow() as uow:
        uow.session.execute(
            update(ChatSession).where(ChatSession.id == idle).values(last_turn_at=an_hour_ago)
        )
        uow.session.execute(
            update(ChatTurn)
            .where(ChatTurn.session_id == idle)
            .values(created_at=an_hour_ago, next_attempt_at=an_hour_ago)
        )
        played = uow.sessions.add(ChatSession(world_id=world_id, title="played"))
        uow.commit()
    app.chat.record(played.id, "Momo opens the gate.", "The gate creaks open.")
    return idle, played.id


def _has_note(database: Database, session_id: uuid.UUID) -> bool:
    with database.uow(read_only=True) as uow:
        return bool(uow.notes.in_session(session_id))


def _unfinished_turns(database: Database, session_id: uuid.UUID) -> int:
    with database.uow(read_only=True) as uow:
        return sum(
            1
            for turn in uow.turns.recent(session_id, 1000)
            if turn.processing_status in ("pending", "processing")
        )


def test_a_played_session_gets_its_memory_before_an_idle_backlog(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    # one LLM call at a time, and small batches, so the backlog takes many calls
    app = make_app(
        database,
        tmp_path,
        _model(),
        provider_config={"calls_in_flight": 1},
        dual_queue_config={"analysis_queue": {"batch_size": 2}},
    )
    idle, played = _idle_backlog_and_a_played_turn(database, app)
    steps = 0
    while not _has_note(database, played):
        assert app.pipeline.run_next("worker"), "the played turn's memory was never written"
        steps += 1
    # its analysis, then its rewrite: nothing of the backlog went first
    assert steps == 2
    assert _unfinished_turns(database, idle) == BACKLOG
    assert not _has_note(database, idle)
    app.pipeline.drain()
    assert _unfinished_turns(database, idle) == 0 and _has_note(database, idle)


def test_without_a_live_tier_the_oldest_work_goes_first(database: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The policy is configurable: ``live_seconds = 0`` is one first-come line."""
    app = make_app(
        database,
        tmp_path,
        _model(),
        provider_config={"calls_in_flight": 1},
        priority_config={"live_seconds": 0},
        dual_queue_config={"analysis_queue": {"batch_size": 2}},
    )
    idle, played = _idle_backlog_and_a_played_turn(database, app)
    app.pipeline.run_next("worker")
    assert _unfinished_turns(database, idle) == BACKLOG - 2  # the backlog's first batch
    assert _unfinished_turns(database, played) == 1


def test_creations_go_before_the_rewrites_that_may_mention_them(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    analysis = ScriptedChatModel()
    analysis.add(
        {
            "updates": [{"lore_entry_id": "E1", "update_summary": "Momo met Kenta."}],
            "creations": [{"entity_type": "Character", "creation_summary": "Kenta arrived."}],
        },
        prompt="analysis",
        contains=["first"],
    )
    analysis.add({"updates": []}, prompt="analysis", repeat=True)
    creation = ScriptedChatModel()
    creation.add({"title": "Kenta", "content": "A demon hunter.", "tags": []}, prompt="creation")
    model = RoutedModel(analysis=analysis, rewrite=AppendingRewriter(), creation=creation)
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    app.chat.record(session_id, "first", "Kenta arrives.")
    app.pipeline.run_next("worker")  # the analysis
    app.chat.record(session_id, "second", "They talk.")  # waits: its turn is later
    app.pipeline.drain()
    # the next turn's analysis waits for the creation (it must see Kenta); the rewrite of the
    # first turn's event comes last (by default rewrites fold every event that waits)
    assert model.sequence == ["analysis", "creation", "analysis", "rewrite"]


def test_queue_status_shows_the_policy_and_the_played_sessions_work(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(database, tmp_path, _model(), provider_config={"calls_in_flight": 3})
    _idle_backlog_and_a_played_turn(database, app)
    with TestClient(create_app(app)) as client:
        status = client.get("/api/dual-queue/status").json()
    assert status["priority"]["calls_in_flight"] == 3
    assert status["priority"]["queue_order"] == ["analysis", "entity_creations", "note_updates"]
    assert status["analysis"]["counts"]["pending"] == BACKLOG + 1
    assert status["analysis"]["pending_played_now"] == 1


def test_one_pool_sized_by_calls_in_flight(database: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(database, tmp_path, _model(), provider_config={"calls_in_flight": 8})
    with database.uow() as uow:
        uow.worlds.add(World(name="w"))
        uow.commit()
    workers = app.start_local_workers()
    try:
        assert workers.counts() == {"pool": 8, "helpers": 2}
        names = [t.name for t in threading.enumerate() if t.name.startswith("loreweave-worker-")]
        assert len(names) == 10
    finally:
        app.close()


class _HeldAnalysis:
    """Answers the analysis of ``one`` at once and holds the next one until ``go`` is set;
    counts the calls in flight at once."""

    provider = "held"

    def __init__(self) -> None:
        self.go = threading.Event()
        self.asked = threading.Event()
        self.lock = threading.Lock()
        self.now = self.most = 0

    def complete(self, request):  # type: ignore[no-untyped-def]
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            if "Latest Turn]:\nUser: two" in request.messages[-1].content:
                self.asked.set()
                assert self.go.wait(30)
            update = {"lore_entry_id": "E1", "update_summary": "Momo trains at dawn."}
            return ChatResponse(json.dumps({"updates": [update]}), request.model)
        finally:
            with self.lock:
                self.now -= 1


def test_fed_work_goes_on_while_the_calls_are_in_flight(database: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With one call in flight, held by the next turn's analysis, the note update the previous
    analysis fed is still applied (by a helper thread), and no second call is made meanwhile."""
    analysis = _HeldAnalysis()
    model = RoutedModel(analysis=analysis, rewrite=AppendingRewriter())
    app = make_app(
        database,
        tmp_path,
        model,
        provider_config={"calls_in_flight": 1},
        pipeline_config={"mode": "lean", "poll_interval": 0.05},
        dual_queue_config={"analysis_queue": {"batch_size": 1}},
    )
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    try:
        app.chat.record(session_id, "one", "…")
        app.chat.record(session_id, "two", "…")
        app.start_local_workers()
        assert analysis.asked.wait(30)
        deadline = time.monotonic() + 30
        while not _has_note(database, session_id):
            assert time.monotonic() < deadline, "the note waited for the call in flight"
            time.sleep(0.02)
        assert analysis.most == 1
    finally:
        analysis.go.set()
        app.close()

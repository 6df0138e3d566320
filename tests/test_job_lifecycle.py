"""The seven ways the memory went wrong (issue: memory correctness), each reproduced, on SQLite
and PostgreSQL: strict order per entity under failures, compare-and-set on notes, failed
analyses that can be retried or skipped, concurrent turns, poison work, vanished entries."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError

from loreweave.api import create_app
from loreweave.app.lore import LoreService
from loreweave.bootstrap import Loreweave
from loreweave.config import Settings
from loreweave.db import Database
from loreweave.db.models import ChatTurn, EntityCreationTask, NoteUpdateTask, TaskStatus, utcnow
from loreweave.errors import ProviderUnavailable
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.queue.local import LocalWorkers
from loreweave.queue.notify import EventNotifier, NullNotifier

from .pipeline_support import AppendingRewriter, RoutedModel, make_app, make_world

FAST_RETRIES = {"max_retries": 3, "retry_delay": 0, "batch_size": 1}


class FailingOn(AppendingRewriter):
    """Appends like :class:`AppendingRewriter`, but fails (retriably) on any event containing
    one of ``self.failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: set[str] = set()

    def complete(self, request: ChatRequest) -> ChatResponse:
        if any(word in request.messages[-1].content for word in self.failing):
            raise ProviderUnavailable("provider down for this event", provider="test")
        return super().complete(request)


def add_events(database: Database, session_id: uuid.UUID, entry_id: uuid.UUID, *turns: int) -> None:
    with database.uow() as uow:
        for turn in turns:
            uow.session.add(
                NoteUpdateTask(
                    lore_entry_id=entry_id,
                    session_id=session_id,
                    update_summary=f"ev{turn}",
                    turn_index=turn,
                )
            )
            uow.session.flush()
        uow.commit()


def note_of(database: Database, session_id: uuid.UUID, entry_id: uuid.UUID) -> tuple[str, int]:
    with database.uow(read_only=True) as uow:
        note = uow.notes.for_entry(session_id, entry_id)
        assert note is not None
        return note.note_content, note.last_updated_turn or 0


def client_for(lw: Loreweave) -> TestClient:
    return TestClient(create_app(lw))


# -- 1. a failed note update is set aside; a retry folds it in its place ------------------------
def ev1_fails(
    database: Database, tmp_path: Path, *turns: int
) -> tuple[Loreweave, FailingOn, uuid.UUID, uuid.UUID, NoteUpdateTask]:
    """Momo's events of ``turns`` drained while the provider fails on ev1 (until it is failed
    for good): the app, the model, the session, Momo and the failed task."""
    model = FailingOn()
    lw = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={"note_update_queue": FAST_RETRIES},
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    model.failing = {"ev1"}
    add_events(database, session_id, ids["Momo"], *turns)
    lw.pipeline.drain()
    with database.uow(read_only=True) as uow:
        failed = uow.session.scalars(
            select(NoteUpdateTask).where(NoteUpdateTask.status == TaskStatus.FAILED.value)
        ).one()
    return lw, model, session_id, ids["Momo"], failed


def test_a_failed_update_is_set_aside_and_a_retry_folds_it_in_its_place(
    database: Database, tmp_path: Path
) -> None:
    lw, model, session_id, momo, failed = ev1_fails(database, tmp_path, 0, 1, 2, 3)
    # the later events did not wait for ev1; the note says what it is missing
    assert note_of(database, session_id, momo) == ("ev0 | ev2 | ev3", 3)
    with client_for(lw) as client:
        [note] = client.get(f"/api/sessions/{session_id}/notes").json()
        assert [(m["id"], m["turn_index"]) for m in note["missing_events"]] == [(str(failed.id), 1)]
        model.failing = set()
        assert client.post(f"/api/dual-queue/retry-note-update/{failed.id}").status_code == 200
        lw.pipeline.drain()
        # in its place, exactly as if it had never failed
        assert note_of(database, session_id, momo) == ("ev0 | ev1 | ev2 | ev3", 3)
        [note] = client.get(f"/api/sessions/{session_id}/notes").json()
        assert note["missing_events"] == []
    with database.uow(read_only=True) as uow:
        revisions = uow.notes.revisions(uow.notes.for_entry(session_id, momo).id)  # type: ignore[union-attr]
        assert "revert" in [r.reason for r in revisions]


def test_a_skipped_update_lets_the_later_ones_go_ahead(database: Database, tmp_path: Path) -> None:
    lw, _, session_id, momo, failed = ev1_fails(database, tmp_path, 0, 1, 2)
    assert note_of(database, session_id, momo) == ("ev0 | ev2", 2)
    with client_for(lw) as client:
        done = uow_first(database, TaskStatus.DONE)
        assert client.post(f"/api/dual-queue/skip-note-update/{done}").status_code == 409
        skipped = client.post(f"/api/dual-queue/skip-note-update/{failed.id}")
        assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
        assert "skipped by the HTTP API" in skipped.json()["error_message"]
        assert "provider down" in skipped.json()["error_message"]  # the last error is kept
    lw.pipeline.drain()
    assert note_of(database, session_id, momo) == ("ev0 | ev2", 2)


def uow_first(database: Database, status: TaskStatus) -> uuid.UUID:
    with database.uow(read_only=True) as uow:
        return uow.session.scalars(
            select(NoteUpdateTask.id).where(NoteUpdateTask.status == status.value)
        ).first()  # type: ignore[return-value]


# -- 2. a creation merged as a duplicate takes its turn's place -----------------------------------
def test_a_merged_creation_keeps_its_turns_place(database: Database, tmp_path: Path) -> None:
    scripted = ScriptedChatModel()
    scripted.add("The story goes on.", prompt="chat", repeat=True)
    scripted.add(
        {"creations": [{"entity_type": "Character", "creation_summary": "a girl called Momo"}]},
        prompt="analysis",
        contains=["User: turn zero"],
    )
    scripted.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "ev1"}]},
        prompt="analysis",
        contains=["User: turn one"],
    )
    scripted.add(prompt="creation", error="unavailable")  # fails once, retried after back-off
    scripted.add({"title": "Momo", "content": "A girl.", "tags": []}, prompt="creation")
    model = RoutedModel(
        chat=scripted, analysis=scripted, creation=scripted, rewrite=AppendingRewriter()
    )
    lw = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={"entity_creation_queue": {"retry_delay": 0.3}},
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    lw.chat.turn(session_id, "turn zero")
    lw.chat.turn(session_id, "turn one")
    lw.pipeline.drain()  # the creation backs off
    import time

    time.sleep(0.4)
    lw.pipeline.drain()
    note, last_turn = note_of(database, session_id, ids["Momo"])
    assert note.split(" | ") == ["a girl called Momo", "ev1"] and last_turn == 1
    with database.uow(read_only=True) as uow:
        creation = uow.session.scalars(select(EntityCreationTask)).one()
        assert (creation.outcome, creation.retry_count) == ("merged", 1)


# -- 3. compare-and-set: a rollback during a rewrite is never undone ------------------------------
def test_a_rollback_during_a_rewrite_is_kept(database: Database, tmp_path: Path) -> None:
    rewriter = AppendingRewriter()
    model = RoutedModel(rewrite=rewriter)
    lw = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={"note_update_queue": FAST_RETRIES},
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    add_events(database, session_id, ids["Momo"], 0, 1)
    lw.pipeline.drain()
    assert note_of(database, session_id, ids["Momo"])[0] == "ev0 | ev1"
    lore = LoreService(lw.database, lw.vectors)
    model.hooks["rewrite"] = lambda _request: lore.rollback_note(session_id, ids["Momo"], 1)
    add_events(database, session_id, ids["Momo"], 2)
    lw.pipeline.drain()
    with database.uow(read_only=True) as uow:
        note = uow.notes.for_entry(session_id, ids["Momo"])
        assert note is not None
        assert (note.note_content, note.version) == ("ev0 | ev2", 4)
        reasons = [r.reason for r in uow.notes.revisions(note.id)]
        assert reasons == ["rewrite", "rollback", "rewrite"]
    assert rewriter.rewrites == 4  # the rewrite over the rolled-back note was done again


# -- 4. a failed analysis is listed, retried and skipped ------------------------------------------
def test_failed_analyses_are_listed_retried_and_skipped(database: Database, tmp_path: Path) -> None:
    scripted = ScriptedChatModel()
    scripted.add("The story goes on.", prompt="chat", repeat=True)
    scripted.add(prompt="analysis", error="rejected")  # 400: final at once
    scripted.add(prompt="analysis", error="rejected")
    scripted.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo rang the bell."}]},
        prompt="analysis",
        contains=["User: first"],
    )
    scripted.add({"updates": []}, prompt="analysis", repeat=True)
    model = RoutedModel(chat=scripted, analysis=scripted, rewrite=AppendingRewriter())
    lw = make_app(database, tmp_path, model, notifier=NullNotifier())
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    first = lw.chat.turn(session_id, "first")
    second = lw.chat.turn(session_id, "second")
    lw.pipeline.drain()
    with client_for(lw) as client:
        status = client.get("/api/dual-queue/status").json()
        assert status["analysis"]["counts"]["failed"] == 1
        assert status["analysis"]["counts"]["pending"] == 1  # the second waits behind the first
        [listed] = status["analysis"]["failed"]
        assert listed["id"] == str(first.turn_id) and "400" in listed["error_message"]
        retried = client.post(f"/api/dual-queue/retry-analysis/{first.turn_id}")
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        lw.pipeline.drain()  # fails again (the second scripted 400)
        assert client.post(f"/api/dual-queue/retry-analysis/{first.turn_id}").status_code == 200
        lw.pipeline.drain()
        assert note_of(database, session_id, ids["Momo"])[0] == "Momo rang the bell."
        assert client.post(f"/api/dual-queue/skip-analysis/{second.turn_id}").status_code == 409
        assert client.post(f"/api/dual-queue/retry-analysis/{uuid.uuid4()}").status_code == 404
    with database.uow(read_only=True) as uow:
        turns = uow.turns.recent(session_id, 5)
        assert [t.processing_status for t in turns] == ["done", "done"]


# -- 5. concurrent turns: every one is recorded, streamed failures say so -------------------------
class SlowChat:
    provider = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def complete(self, request: ChatRequest) -> ChatResponse:
        import time

        time.sleep(self.delay)
        return ChatResponse("A reply.", request.model)


def test_turns_posted_at_once_are_all_recorded(database: Database, tmp_path: Path) -> None:
    lw = make_app(database, tmp_path, SlowChat(0.2), notifier=NullNotifier())
    _, session_id, _ = make_world(database)
    errors: list[BaseException] = []
    indexes: list[int] = []
    barrier = threading.Barrier(20)

    def play(i: int) -> None:
        barrier.wait()
        try:
            indexes.append(lw.chat.turn(session_id, f"message {i}").turn_index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=play, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(indexes) == list(range(20))


def test_a_streamed_turn_that_cannot_be_recorded_ends_with_an_error_event(
    database: Database, tmp_path: Path
) -> None:
    scripted = ScriptedChatModel()
    scripted.add("A reply that will not be kept.", prompt="chat")
    model = RoutedModel(chat=scripted)
    lw = make_app(database, tmp_path, model, notifier=NullNotifier())
    _, session_id, _ = make_world(database)

    def delete_session(_request: ChatRequest) -> None:
        with database.uow() as uow:
            uow.sessions.delete(uow.sessions.require(session_id))
            uow.commit()

    model.hooks["chat"] = delete_session
    with client_for(lw) as client:
        response = client.post(
            f"/api/sessions/{session_id}/turns?stream=true", json={"message": "Hello."}
        )
    events = [block for block in response.text.split("\n\n") if block]
    assert events[0].startswith("event: delta")
    assert events[-1].startswith("event: error")
    error = json.loads(events[-1].split("data: ", 1)[1])
    assert error["status"] == 404 and "session" in error["detail"]


# -- 6. poison work ends ---------------------------------------------------------------------------
class Poison:
    """A rewrite that crashes every time (was, on PostgreSQL: a NUL the database refused; a
    model's NUL is scrubbed now, tests/test_model_answers.py)."""

    provider = "poison"

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.calls = 0

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        raise ValueError("a bug in the rewrite")


def test_poison_work_fails_after_max_retries(database: Database, tmp_path: Path) -> None:
    model = Poison(database.dialect)
    lw = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={"note_update_queue": FAST_RETRIES},
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    add_events(database, session_id, ids["Momo"], 0)
    lw.pipeline.drain()
    with database.uow(read_only=True) as uow:
        task = uow.session.scalars(select(NoteUpdateTask)).one()
        assert (task.status, task.retry_count) == ("failed", 3)
        assert task.error_message
        assert uow.notes.for_entry(session_id, ids["Momo"]) is None
    assert model.calls == 3


def test_an_expired_lease_counts_as_a_failed_attempt(database: Database, tmp_path: Path) -> None:
    lw = make_app(
        database,
        tmp_path,
        AppendingRewriter(),
        notifier=NullNotifier(),
        dual_queue_config={"note_update_queue": FAST_RETRIES},
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    add_events(database, session_id, ids["Momo"], 0, 1)
    lw.chat.persist(session_id, "Hello.", "Hi.", [])
    expired = utcnow() - timedelta(seconds=1)
    with database.uow() as uow:
        for model in (NoteUpdateTask, ChatTurn):
            uow.session.execute(
                update(model).values(
                    status="processing", worker_id="dead", locked_until=expired, retry_count=2
                )
            )
        uow.commit()
    lw.pipeline.sweep()
    with database.uow(read_only=True) as uow:
        tasks = uow.session.scalars(select(NoteUpdateTask)).all()
        assert {(t.status, t.retry_count) for t in tasks} == {("failed", 3)}
        assert all("lease expired" in (t.error_message or "") for t in tasks)
        turn = uow.session.scalars(select(ChatTurn)).one()
        assert (turn.processing_status, turn.retry_count) == ("failed", 3)


# -- 7. an entry deleted while its turn is analysed ------------------------------------------------
def test_an_entry_deleted_during_analysis_is_dropped_with_a_reason(
    database: Database, tmp_path: Path
) -> None:
    scripted = ScriptedChatModel()
    scripted.add("The story goes on.", prompt="chat", repeat=True)
    scripted.add(
        {
            "updates": [
                {"lore_entry_id": "E1", "update_summary": "Momo left."},
                {"lore_entry_id": "E2", "update_summary": "The shrine burned."},
            ]
        },
        prompt="analysis",
    )
    model = RoutedModel(chat=scripted, analysis=scripted, rewrite=AppendingRewriter())
    lw = make_app(database, tmp_path, model, notifier=NullNotifier())
    _, session_id, ids = make_world(
        database, ("Momo", "Character", "A girl."), ("Shrine", "Location", "A shrine.")
    )
    lore = LoreService(lw.database, lw.vectors)
    model.hooks["analysis"] = lambda _request: lore.delete(ids["Momo"])
    lw.chat.turn(session_id, "Momo leaves; the shrine burns.")
    lw.pipeline.drain()
    with database.uow(read_only=True) as uow:
        turn = uow.turns.recent(session_id, 1)[0]
        assert turn.processing_status == "done"
        assert "deleted" in (turn.processing_errors or "")
        tasks = uow.session.scalars(select(NoteUpdateTask)).all()
        assert [(t.lore_entry_id, t.status) for t in tasks] == [(ids["Shrine"], "done")]


class _GoneDatabase:
    """A pipeline whose database is down for its first ``down`` claims, then back."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.claims = 0
        self.back = threading.Event()
        self._lock = threading.Lock()

    def pool_size(self) -> int:
        return 1  # one thread: the order of its log lines is the order of its attempts

    def run_next(self, worker_id: str, queues: tuple[str, ...] = ()) -> bool:
        with self._lock:
            self.claims += 1
            claims = self.claims
        if claims <= self.down:
            raise OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))
        self.back.set()
        return False

    def sweep(self) -> None:
        pass


def test_a_database_down_logs_one_line_per_attempt_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage is no bug: one warning line per failed attempt, never a traceback (issue 41,
    point 6; was: the traceback once)."""
    pipeline = _GoneDatabase(down=12)
    settings = Settings(pipeline_config={"poll_interval": 0.01, "sweep_interval": 60})
    workers = LocalWorkers(pipeline, EventNotifier(), settings)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="loreweave.queue"):
        workers.start()
        try:
            assert pipeline.back.wait(30)
        finally:
            workers.stop()
    records = [r for r in caplog.records if r.name == "loreweave.queue"]
    failures = [r for r in records if "worker loop: the database is unreachable" in r.getMessage()]
    assert len(failures) == 12
    assert not [r for r in records if r.exc_info or r.levelno > logging.WARNING]
    assert all("OperationalError" in r.getMessage() for r in failures)
    assert "attempt 12" in failures[-1].getMessage()
    recovered = [r for r in records if "recovered after 12 failed attempts" in r.getMessage()]
    assert len(recovered) == 1


def test_idle_is_read_in_one_snapshot(database: Database) -> None:
    """The once-seen ``KeyError: 'Momo'`` after ``wait_until_idle`` (issue 27, point 9): the
    helper counted unfinished note updates, creations and turns in three statements; under
    PostgreSQL's READ COMMITTED each statement sees the commits made since the one before, so
    an analysis that finished between them — its turn done, its note update written, in one
    commit — was counted by neither: 0 unfinished while a note update waited.  Here that
    commit is made between the statements; one statement counts it."""
    from sqlalchemy import event

    from .pipeline_support import make_world, unfinished

    # (SQLite, in WAL mode, reads a transaction from one snapshot: there the race never was)
    _, session_id, ids = make_world(database, ("Momo", "Character", "A psychic girl."))
    with database.uow() as uow:
        turn = ChatTurn(
            session_id=session_id, turn_index=0, user_message="Momo trains.", assistant_message="…"
        )
        uow.session.add(turn)
        uow.commit()
        turn_id = turn.id
    done = False

    def analysis_finishes_meanwhile(
        _conn: object, _cursor: object, statement: str, *_: object
    ) -> None:
        nonlocal done
        if done or "note_update_tasks" not in statement:
            return
        done = True  # right after the first count that reads the note updates
        with database.engine.connect() as other:  # another process's analysis commits
            other.execute(
                update(ChatTurn).where(ChatTurn.id == turn_id).values(processing_status="done")
            )
            other.execute(
                insert(NoteUpdateTask).values(
                    id=uuid.uuid4(),
                    lore_entry_id=ids["Momo"],
                    session_id=session_id,
                    update_summary="Momo trained.",
                    turn_index=0,
                    status="pending",
                    known_by=[],
                    created_at=utcnow(),
                    next_attempt_at=utcnow(),
                    retry_count=0,
                )
            )
            other.commit()

    event.listen(database.engine, "after_cursor_execute", analysis_finishes_meanwhile)
    try:
        assert unfinished(database) == 1  # the note update, or the turn: never nothing
    finally:
        event.remove(database.engine, "after_cursor_execute", analysis_finishes_meanwhile)

"""A job kind is one object (DESIGN §3, issue 23): a kind written in one place — its table, its
claim, its handler, its settings — runs through everything the spec's three go through: the
pipeline, retries and the failed state, the sweeper, a person's retry over the API, the queue
status, /metrics, the alerts, and a transcript cut that cancels the jobs of the turns it undoes.

The kind here counts the words of a turn's message: a stand-in for what an application would
add (a recap, a mood score, an image prompt), small enough to read whole.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Integer, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from loreweave.api import create_app
from loreweave.bootstrap import build
from loreweave.config import QueueConfig, Settings
from loreweave.container import Loreweave
from loreweave.db import Database
from loreweave.db.models import ChatSession, JobColumns, TaskStatus, World, utcnow
from loreweave.errors import ConfigurationError, ProviderUnavailable
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.registry import Providers
from loreweave.memory.ports import Job, Outcome
from loreweave.queue import jobs, status
from loreweave.queue.kinds import KINDS
from loreweave.queue.notify import NullNotifier
from loreweave.testing import HashingEmbedder


# -- the kind, whole ------------------------------------------------------------------------------
class Example(DeclarativeBase):
    """The test's own tables (a migration would create them in an application)."""


class TurnWords(JobColumns, Example):
    __tablename__ = "example_turn_words"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(index=True)  # chat_sessions.id
    message: Mapped[str] = mapped_column()
    words: Mapped[int | None] = mapped_column(Integer, default=None)


def _candidates(db: Session, claim: jobs.Claim, config: QueueConfig) -> list[TurnWords]:
    """One job at a time per session, in turn order (the generic head claim)."""
    head = jobs.session_head(TurnWords, db, claim)
    return [head] if head is not None else []


OUTAGE = {"on": False}  # the provider the handler stands for is down while on


def _handler(parts: jobs.Parts) -> jobs.Handler:
    def handle(job: Job[TurnWords]) -> Outcome:
        if OUTAGE["on"]:
            raise ProviderUnavailable("the word counter is down", provider="example")
        with job.finishing() as uow:
            for row in job.rows:
                uow.session.get_one(TurnWords, row.id).words = len(row.message.split())
        return Outcome(f"counted {len(job.rows)}")

    return handle


TURN_WORDS: jobs.JobKind[QueueConfig] = jobs.JobKind(
    "turn_words",
    TurnWords,
    "turn word count",
    _candidates,
    _handler,
    jobs.configured("turn_words", QueueConfig),
    backlog_target=60.0,
    describe=lambda row: {"summary": row.message[:200], "words": row.words},
)


# -- the tests ------------------------------------------------------------------------------------
@pytest.fixture
def lw(database: Database, tmp_path: Path) -> Any:
    Example.metadata.create_all(database.engine)
    settings = Settings(
        index_dir=tmp_path / "index",
        dual_queue_config={"queues": {"turn_words": {"max_retries": 2, "retry_delay": 0}}},  # type: ignore[arg-type]
    )
    providers = Providers(chat=ScriptedChatModel.placeholder(), embedder=HashingEmbedder(64))
    app = build(
        settings,
        providers=providers,
        notifier=NullNotifier(),
        database=database,
        kinds=KINDS.plus(TURN_WORDS),
    )
    OUTAGE["on"] = False
    yield app
    app.close()
    Example.metadata.drop_all(database.engine)


def _story(lw: Loreweave, *messages: str) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A session whose turns each have a word-count job, written with the turn."""
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name=f"w-{uuid.uuid4().hex[:6]}"))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        uow.commit()
    ids = []
    for message in messages:
        turn = lw.chat.record(session.id, message, "The narrator nods.")
        with lw.database.uow() as uow:
            job = TurnWords(session_id=session.id, turn_index=turn.turn_index, message=message)
            uow.session.add(job)
            uow.commit()
            ids.append(job.id)
    return session.id, ids


def _row(lw: Loreweave, job_id: uuid.UUID) -> TurnWords:
    with lw.database.uow(read_only=True) as uow:
        return uow.session.get_one(TurnWords, job_id)


def test_an_added_kind_runs_with_the_spec_kinds_in_turn_order(lw: Loreweave) -> None:
    _session, ids = _story(lw, "I knock twice.", "Then I wait by the shrine door.")
    assert lw.pipeline.order == ["analysis", "entity_creations", "note_updates", "turn_words"]
    lw.pipeline.drain()
    rows = [_row(lw, i) for i in ids]
    assert [(r.status, r.words) for r in rows] == [("done", 3), ("done", 7)]
    assert rows[0].processed_at is not None and rows[0].processed_at <= rows[1].processed_at  # type: ignore[operator]
    with lw.database.uow(read_only=True) as uow:
        shown = status.queue_status(uow.session, lw.kinds)
    assert shown["turn_words"]["counts"]["done"] == 2
    assert shown["analysis"]["counts"]["done"] == 2  # the spec's kinds ran beside it


def test_a_failing_added_kind_is_retried_failed_alerted_shown_and_retried_by_a_person(
    lw: Loreweave,
) -> None:
    _session, [job_id] = _story(lw, "The bell rings at midnight.")
    OUTAGE["on"] = True
    lw.pipeline.drain()  # its settings: two attempts, no back-off
    row = _row(lw, job_id)
    assert (row.status, row.retry_count) == ("failed", 2)
    assert "the word counter is down" in (row.error_message or "")

    alerts = {c.key: c for c in lw.alerts.observe(utcnow())}
    assert alerts["job_failed:turn_words"].details["jobs"][0]["summary"] == row.message
    metrics = lw.metrics.render().decode()
    assert 'loreweave_queue_tasks{queue="turn_words",status="failed"} 1.0' in metrics
    with TestClient(create_app(lw)) as client:
        queues = client.get("/api/dual-queue/status").json()
        [failed] = queues["turn_words"]["failed"]
        assert (failed["id"], failed["kind"], failed["words"]) == (str(job_id), "turn_words", None)
        OUTAGE["on"] = False
        answer = client.post(f"/api/dual-queue/retry/{job_id}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "pending"
        assert client.post(f"/api/dual-queue/retry/{job_id}").status_code == 409  # not failed now
    lw.pipeline.drain()
    assert (_row(lw, job_id).status, _row(lw, job_id).words) == ("done", 5)
    assert "job_failed:turn_words" not in {c.key for c in lw.alerts.observe(utcnow())}


def test_a_transcript_cut_cancels_an_added_kinds_jobs_of_the_turns_it_undoes(
    lw: Loreweave,
) -> None:
    session_id, ids = _story(lw, "One.", "Two words.", "Three words here.")
    report = lw.transcript.delete_turns(session_id, 1)
    assert report.turns_removed == [1, 2]
    with lw.database.uow(read_only=True) as uow:
        left = set(uow.session.scalars(select(TurnWords.id)))
    assert left == {ids[0]}
    assert report.jobs_cancelled >= 2


def test_the_sweeper_counts_an_added_kinds_expired_lease_as_a_failed_attempt(
    lw: Loreweave,
) -> None:
    _session, [job_id] = _story(lw, "A lease that runs out.")
    config = TURN_WORDS.settings(lw.settings)
    with lw.database.uow() as uow:
        [claimed] = jobs.claim(uow.session, TURN_WORDS, "a worker that dies", config)
        claimed.locked_until = utcnow() - timedelta(seconds=1)
        uow.commit()
    lw.pipeline.sweep()
    row = _row(lw, job_id)
    assert (row.status, row.retry_count) == (TaskStatus.PENDING.value, 1)
    assert "lease expired" in (row.error_message or "")


@pytest.mark.parametrize(
    ("settings", "culprit"),
    [
        ({"dual_queue_config": {"queues": {"turn_wrods": {}}}}, "turn_wrods"),
        ({"dual_queue_config": {"queues": {"turn_words": {"max_retries": -1}}}}, "max_retries"),
        ({"priority_config": {"queue_order": [*KINDS.names, "nope"]}}, "nope"),
    ],
)
def test_settings_for_no_kind_or_out_of_bounds_are_refused_when_the_process_is_built(
    database: Database, tmp_path: Path, settings: dict[str, Any], culprit: str
) -> None:
    providers = Providers(chat=ScriptedChatModel.placeholder(), embedder=HashingEmbedder(64))
    with pytest.raises(ConfigurationError, match=culprit):
        build(
            Settings(index_dir=tmp_path / "index", **settings),
            providers=providers,
            notifier=NullNotifier(),
            database=database,
            kinds=KINDS.plus(TURN_WORDS),
        )


def test_an_added_kinds_settings_come_from_the_environment(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loreweave.config import load_settings

    monkeypatch.setenv("LOREWEAVE_DUAL_QUEUE_CONFIG__QUEUES__TURN_WORDS__MAX_RETRIES", "7")
    monkeypatch.setenv("LOREWEAVE_INDEX_DIR", str(tmp_path / "index"))
    providers = Providers(chat=ScriptedChatModel.placeholder(), embedder=HashingEmbedder(64))
    app = build(
        load_settings(),
        providers=providers,
        notifier=NullNotifier(),
        database=database,
        kinds=KINDS.plus(TURN_WORDS),
    )
    try:
        assert app.pipeline.executors["turn_words"].config.max_retries == 7
        assert app.pipeline.executors["note_updates"].config.max_retries == 3  # the default
    finally:
        app.close()

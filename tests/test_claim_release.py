"""A cancelled claim is released at once (DESIGN §3, issue 24): when a transcript operation
undoes part of what a worker holds, the rest of that claim is claimable right away — the late
answer is discarded by its claim, nobody waits for the lease — and the release is not a failed
attempt."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import ChatTurn, EntityCreationTask, NoteUpdateTask
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier

from .pipeline_support import (
    AppendingRewriter,
    RoutedModel,
    make_app,
    make_world,
    notes_of,
    replayed_notes,
)
from .sizes import examples
from .test_job_lifecycle import FailingOn, add_events

LONG_LEASE = {"lease_seconds": 3600}  # waiting for it would be noticed


def _states(database: Database, model: Any, session_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with database.uow(read_only=True) as uow:
        rows = uow.session.scalars(
            select(model).where(model.session_id == session_id).order_by(model.turn_index)
        ).all()
        return [(r.turn_index, r.status, r.worker_id, r.retry_count) for r in rows]


def _every_turn_changes_momo() -> ScriptedChatModel:
    analysis = ScriptedChatModel()
    analysis.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo goes on."}]},
        prompt="analysis",
        repeat=True,
    )
    return analysis


def test_an_edit_during_a_batched_analysis_frees_the_turns_before_it(
    database: Database, tmp_path: Any
) -> None:
    """Turns 0-2 analysed in one call; turn 1 is edited while the call is in flight: turn 0 is
    not left claimed by the worker until its lease expires."""
    model = RoutedModel(analysis=_every_turn_changes_momo(), rewrite=AppendingRewriter())
    app = make_app(database, tmp_path, model, dual_queue_config={"analysis_queue": LONG_LEASE})
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    for text in ("Momo trains.", "Momo rests.", "Momo leaves."):
        app.chat.record(session_id, text, "…")
    seen: list[list[tuple[Any, ...]]] = []

    def edit_meanwhile(_request: Any) -> None:
        assert [s[1] for s in _states(database, ChatTurn, session_id)] == ["processing"] * 3
        app.transcript.edit_turn(session_id, 1, user_message="Momo sleeps.")
        seen.append(_states(database, ChatTurn, session_id))

    model.hooks["analysis.batch"] = edit_meanwhile
    assert app.pipeline.run_next("worker", ("analysis",), pool=1)
    # right after the edit, every turn could be claimed by anyone; no attempt was counted
    assert seen == [[(i, "pending", None, 0) for i in range(3)]]
    assert [s[1:] for s in _states(database, ChatTurn, session_id)] == [("pending", None, 0)] * 3
    app.pipeline.drain()
    assert [s[1] for s in _states(database, ChatTurn, session_id)] == ["done"] * 3
    assert notes_of(database, session_id) == replayed_notes(app, session_id)


def test_a_delete_during_a_batched_rewrite_frees_the_other_entities(
    database: Database, tmp_path: Any
) -> None:
    """Momo's event (turn 0) and the gate's (turn 1) are rewritten in one call; turn 1 is
    deleted meanwhile: Momo's event is claimable at once, and applied once."""
    analysis = ScriptedChatModel()
    for ref, event in (("E2", "The gate breaks."), ("E1", "Momo rests.")):
        answer = {"updates": [{"lore_entry_id": ref, "update_summary": event}]}
        analysis.add(answer, prompt="analysis", contains=[event], repeat=True)
    model = RoutedModel(analysis=analysis, rewrite=AppendingRewriter())
    app = make_app(
        database,
        tmp_path,
        model,
        dual_queue_config={
            "note_update_queue": {**LONG_LEASE, "entities_per_call": 4},
            "analysis_queue": {"batch_size": 1},
        },
    )
    _, session_id, _ = make_world(
        database, ("Momo", "Character", "A psychic girl."), ("Gate", "Location", "A gate.")
    )
    app.chat.record(session_id, "Momo rests.", "…")
    app.chat.record(session_id, "The gate breaks.", "…")
    while app.pipeline.run_next("worker", ("analysis",), pool=1):
        pass
    seen: list[list[tuple[Any, ...]]] = []

    def delete_meanwhile(_request: Any) -> None:
        app.transcript.delete_turns(session_id, 1)
        seen.append(_states(database, NoteUpdateTask, session_id))

    model.hooks["rewrite.batch"] = delete_meanwhile
    assert app.pipeline.run_next("worker", ("note_updates",), pool=1)
    assert seen == [[(0, "pending", None, 0)]]
    app.pipeline.drain()
    notes = notes_of(database, session_id)
    assert list(notes) == ["Momo"] and notes["Momo"].count("Momo rests.") == 1
    assert notes == replayed_notes(app, session_id)


def test_workers_that_stop_cleanly_hand_back_what_they_hold(
    database: Database, tmp_path: Any
) -> None:
    """A pool stopped while its call is in flight: the turn is claimable at once (by another
    process), the late answer is discarded, and the attempt is not counted."""
    model = RoutedModel(analysis=_every_turn_changes_momo(), rewrite=AppendingRewriter())
    app = make_app(database, tmp_path, model, dual_queue_config={"analysis_queue": LONG_LEASE})
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    in_flight, answer = threading.Event(), threading.Event()

    def hold(_request: Any) -> None:
        in_flight.set()
        answer.wait(30)

    model.hooks["analysis"] = hold
    app.chat.record(session_id, "Momo trains.", "…")
    workers = app.start_local_workers()
    assert in_flight.wait(30)
    workers.stop(timeout=0.2)
    assert _states(database, ChatTurn, session_id) == [(0, "pending", None, 0)]
    answer.set()
    app.workers = None
    app.pipeline.drain()
    assert _states(database, ChatTurn, session_id)[0][1] == "done"
    assert notes_of(database, session_id) == replayed_notes(app, session_id)


# -- a failure never stops the story's memory (issue 24, point 1) ----------------------------------
def test_a_creation_refused_for_good_holds_only_its_own_followups(
    database: Database, tmp_path: Any
) -> None:
    """Turn 0 introduces Kenta, whose description the provider refuses (HTTP 400, as a content
    filter answers); ten more turns change Momo: each is analysed and applied, in order; a retry
    creates Kenta."""
    analysis = ScriptedChatModel()
    analysis.add(
        {"creations": [{"entity_type": "Character", "creation_summary": "Kenta, a hunter."}]},
        prompt="analysis",
        contains=["Kenta appears."],
    )
    for turn in range(10, 0, -1):  # a turn's prompt shows the earlier ones: the latest first
        answer = {"updates": [{"lore_entry_id": "E1", "update_summary": f"Momo step {turn}."}]}
        analysis.add(answer, prompt="analysis", contains=[f"Step {turn}."], repeat=True)
    creation = ScriptedChatModel()
    creation.add(error="rejected", prompt="creation")
    creation.add(KENTA, prompt="creation", repeat=True)
    model = RoutedModel(analysis=analysis, creation=creation, rewrite=AppendingRewriter())
    app = make_app(
        database,
        tmp_path,
        model,
        dual_queue_config={"analysis_queue": {"batch_size": 1}},
    )
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    app.chat.record(session_id, "Kenta appears.", "…")
    app.pipeline.drain()
    for turn in range(1, 11):
        app.chat.record(session_id, f"Step {turn}.", "…")
    app.pipeline.drain()
    turns = _states(database, ChatTurn, session_id)
    assert [t[1] for t in turns] == ["done"] * 11
    notes = notes_of(database, session_id)
    assert list(notes) == ["Momo"]
    assert [notes["Momo"].count(f"Momo step {t}.") for t in range(1, 11)] == [1] * 10
    with database.uow(read_only=True) as uow:
        failed = uow.session.scalars(select(EntityCreationTask)).one()
        assert failed.status == "failed"
    app.jobs.act("retry", failed.id, by="a test")
    app.pipeline.drain()
    with database.uow(read_only=True) as uow:
        assert uow.session.scalars(select(EntityCreationTask.outcome)).one() == "created"
    notes = notes_of(database, session_id)
    assert [notes["Momo"].count(f"Momo step {t}.") for t in range(1, 11)] == [1] * 10


KENTA = {"title": "Kenta", "content": "A demon hunter with a katana.", "tags": ["hunter"]}


@pytest.mark.slow
@settings(
    max_examples=examples(ci=10, full=25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    events=st.integers(min_value=1, max_value=7),
    failing=st.sets(st.integers(min_value=0, max_value=6)),
    batch=st.integers(min_value=1, max_value=4),
    order=st.permutations(range(7)),
)
def test_set_aside_events_and_their_retries_keep_the_note_in_order(
    database: Database,
    tmp_path: Any,
    events: int,
    failing: set[int],
    batch: int,
    order: list[int],
) -> None:
    """Events of one note, some refused for good: the note is the others, in order; each
    retried (in any order, draining in between), the note is every event in order — what a
    replay of the transcript without failures gives."""
    failing = {f for f in failing if f < events}
    model = FailingOn()
    model.failing = {f"ev{f}" for f in failing}
    app = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={
            "note_update_queue": {"max_retries": 1, "retry_delay": 0, "batch_size": batch}
        },
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    add_events(database, session_id, ids["Momo"], *range(events))
    app.pipeline.drain()

    def events_in_note() -> list[str]:
        return [e for e in notes_of(database, session_id).get("Momo", "").split(" | ") if e]

    kept = [f"ev{i}" for i in range(events) if i not in failing]
    if any(i not in failing for i in range(events)) and batch == 1:
        assert events_in_note() == kept
    with database.uow(read_only=True) as uow:
        failed = uow.session.scalars(
            select(NoteUpdateTask.id)
            .where(NoteUpdateTask.status == "failed")
            .order_by(NoteUpdateTask.turn_index)
        ).all()
    model.failing = set()
    for index in (i for i in order if i < len(failed)):  # in any order
        app.jobs.act("retry", failed[index], by="a test")
        app.pipeline.drain()
    assert events_in_note() == [f"ev{i}" for i in range(events)]

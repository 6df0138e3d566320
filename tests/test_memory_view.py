"""Seeing the memory (DESIGN §1.7), through the HTTP API on SQLite and PostgreSQL: what each turn
changed, the notes as of a turn (and what a character knew then), canon drift and canon."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from loreweave.api import create_app
from loreweave.app.feed import TurnWatch, report_turns
from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.db.models import NoteUpdateTask
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.queue.notify import NullNotifier

from .pipeline_support import ONE_TURN_PER_CALL, AppendingRewriter, RoutedModel, make_app
from .test_order_property import Creator
from .test_replay_property import Analyst, Narrator
from .test_transcript_api import notes, start


class InventingAnalyst(Analyst):
    """The replay analyst, plus an update of an entity it was never shown when the message
    says ``bad``: the pipeline rejects it, with its reason."""

    def complete(self, request: ChatRequest) -> ChatResponse:
        answer = super().complete(request)
        if "bad" not in request.messages[-1].content.split("[Latest Turn]")[-1]:
            return answer
        body = json.loads(answer.text)
        body["updates"].append({"lore_entry_id": "E99", "update_summary": "a ghost walks"})
        return ChatResponse(json.dumps(body), request.model)


def story_app(database: Database, tmp_path: Path) -> Loreweave:
    """The replay test's deterministic models (one analysis per turn), and the inventing
    analyst."""
    model = RoutedModel(
        chat=Narrator(),
        analysis=InventingAnalyst(),
        creation=Creator(),
        rewrite=AppendingRewriter(),
    )
    return make_app(
        database, tmp_path, model, notifier=NullNotifier(), dual_queue_config=ONE_TURN_PER_CALL
    )


@pytest.fixture
def lw(database: Database, tmp_path: Path) -> Loreweave:
    return story_app(database, tmp_path)


@pytest.fixture
def client(lw: Loreweave) -> Iterator[TestClient]:
    with TestClient(create_app(lw)) as test_client:
        yield test_client


def turn(client: TestClient, session: str, message: str) -> None:
    assert client.post(f"/api/sessions/{session}/turns", json={"message": message}).is_success


def changes(client: TestClient, session: str, index: int) -> dict[str, Any]:
    found = client.get(f"/api/sessions/{session}/turns/{index}/changes")
    assert found.status_code == 200, found.text
    return dict(found.json())


def by_title(found: dict[str, Any], kind: str = "note") -> dict[str, dict[str, Any]]:
    return {c["title"]: c for c in found["changes"] if c["kind"] == kind}


def test_a_turns_changes_are_listed_with_before_and_after(
    client: TestClient, lw: Loreweave
) -> None:
    _, session = start(client)
    turn(client, session, "#0 u=Ann new=Dee")
    pending = changes(client, session, 0)
    assert pending == {"turn": 0, "state": "pending", "changes": []}
    lw.pipeline.drain()
    after_first = notes(client, session)
    turn(client, session, "#1 u=Ann k=Bo bad")
    lw.pipeline.drain()

    first = changes(client, session, 0)
    assert first["state"] == "done"
    ann = by_title(first)["Ann"]
    assert ann["before"] is None and ann["after"] == after_first["Ann"]
    assert ann["status"] == "applied" and ann["known_by"] == []
    dee = by_title(first, "entry")["Dee"]
    assert dee["after"] == "Dee appeared." and dee["status"] == "applied"

    second = changes(client, session, 1)
    ann = by_title(second)["Ann"]
    assert ann["before"] == after_first["Ann"]
    assert ann["after"] == notes(client, session)["Ann"] == f"{after_first['Ann']} | 1-Ann"
    assert ann["known_by"] == ["Bo"]
    rejected = [c for c in second["changes"] if c["kind"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["status"] == "rejected"
    assert "E99" in rejected[0]["reason"]
    assert changes(client, session, 1) == second  # the ids are stable
    assert client.get(f"/api/sessions/{session}/turns/7/changes").status_code == 404


def test_a_skipped_event_is_a_rejected_change(client: TestClient, lw: Loreweave) -> None:
    _, session = start(client)
    turn(client, session, "#0 u=Bo")
    lw.pipeline.drain()
    with lw.database.uow() as uow:
        event = uow.session.query(NoteUpdateTask).filter_by(turn_index=0).first()
        assert event is not None
        event.status, event.error_message = "failed", "the model was down"
        event.applied_version = None
        uow.commit()
        event_id = str(event.id)
    failed = [c for c in changes(client, session, 0)["changes"] if c["id"] == event_id]
    assert failed[0]["status"] == "failed" and failed[0]["reason"] == "the model was down"
    assert client.post(f"/api/dual-queue/skip/{event_id}").is_success
    skipped = [c for c in changes(client, session, 0)["changes"] if c["id"] == event_id]
    assert skipped[0]["status"] == "rejected" and skipped[0]["after"] == "0-Bo"


def test_notes_as_of_a_turn_equal_the_note_history(client: TestClient, lw: Loreweave) -> None:
    _, session = start(client)
    history = []
    for message in ("#0 u=Ann", "#1 u=Ann,Bo", "#2 u=Bo new=Dee", "#3 u=Ann"):
        turn(client, session, message)
        lw.pipeline.drain()
        history.append(notes(client, session))
    for index, expected in enumerate(history):
        found = client.get(f"/api/sessions/{session}/notes?as_of_turn={index}").json()
        assert {n["title"]: n["note_content"] for n in found} == expected
        assert all(n["as_of_turn"] == index for n in found)
    assert client.get(f"/api/sessions/{session}/notes?as_of_turn=-1").status_code == 422


def test_an_observer_as_of_a_turn_does_not_know_what_it_learned_later(
    client: TestClient, lw: Loreweave
) -> None:
    _, session = start(client)
    for message in ("#0 u=Ann k=Ann", "#1 u=Ann k=Bo", "#2 u=Bo k=Ann"):
        turn(client, session, message)
        lw.pipeline.drain()

    def seen(observer: str, as_of: int) -> dict[str, list[int]]:
        found = client.get(
            f"/api/sessions/{session}/notes?as_of_turn={as_of}&observer={observer}"
        ).json()
        return {n["title"]: [e["turn_index"] for e in n["events"]] for n in found}

    # Bo learned of Ann at turn 1: as of turn 0 Bo knows nothing of her, as of 1 that event
    assert "Ann" not in seen("Bo", 0)
    assert seen("bo", 1)["Ann"] == [1]
    bo_then = client.get(f"/api/sessions/{session}/notes?as_of_turn=1&observer=Bo").json()
    ann = next(n for n in bo_then if n["title"] == "Ann")
    assert ann["note_content"] == "1-Ann"  # never the narrator's note, which holds turn 0
    assert ann["events"][0]["known_by"] == ["Bo"]
    assert seen("Ann", 1)["Ann"] == [0, 0]  # the message and the reply ("also=Ann") name her
    assert "Bo" not in seen("Ann", 1)
    assert seen("Ann", 2)["Bo"] == [2]
    assert client.get(f"/api/sessions/{session}/notes?observer=Nobody").status_code == 422


def test_drift_lists_a_departed_note_and_canon_writes_a_lore_revision(
    client: TestClient, lw: Loreweave
) -> None:
    world, session = start(client)
    turn(client, session, "#0 u=Ann")
    turn(client, session, "#1 u=Ann")
    lw.pipeline.drain()
    note = notes(client, session)["Ann"]
    drift = client.get(f"/api/worlds/{world}/drift").json()
    assert [d["title"] for d in drift] == ["Ann", "Bo"]  # the second reply names Bo
    (departed,) = drift[0]["sessions"]
    assert departed["note_content"] == note and departed["size"] == len(note)
    assert departed["turns"] == [0, 1]
    ann = drift[0]["lore_entry_id"]

    proposal = client.post(
        f"/api/sessions/{session}/notes/{ann}/canon?propose=true", json={}
    ).json()
    assert proposal["proposal"] == f"Ann lives here. | {note}"
    assert client.get(f"/api/lore-entries/{ann}").json()["content"] == "Ann lives here."
    assert client.post(f"/api/sessions/{session}/notes/{ann}/canon", json={}).status_code == 422

    merged = "Ann lives here, and was seen twice."
    written = client.post(f"/api/sessions/{session}/notes/{ann}/canon", json={"content": merged})
    assert written.status_code == 200, written.text
    assert written.json()["lore_revision"] == 1 and written.json()["note_content"] == ""
    assert client.get(f"/api/lore-entries/{ann}").json()["content"] == merged
    assert [d["title"] for d in client.get(f"/api/worlds/{world}/drift").json()] == ["Bo"]
    revisions = client.get(f"/api/lore-entries/{ann}/revisions").json()
    assert [(r["content"], r["reason"]) for r in revisions] == [("Ann lives here.", "canon")]

    # the note restarts from the events not yet in canon
    turn(client, session, "#2 u=Ann")
    lw.pipeline.drain()
    assert notes(client, session)["Ann"] == "2-Ann"
    assert client.get(f"/api/worlds/{world}/drift").json()[0]["sessions"][0]["turns"] == [2]
    restarted = by_title(changes(client, session, 2))["Ann"]
    assert (restarted["before"], restarted["after"]) == ("", "2-Ann")

    # undo: the lore before the canon, itself kept
    restored = client.post(f"/api/lore-entries/{ann}/revisions/1/restore").json()
    assert restored["content"] == "Ann lives here."
    revisions = client.get(f"/api/lore-entries/{ann}/revisions").json()
    assert [r["reason"] for r in revisions] == ["canon", "restore"]
    assert client.post(f"/api/lore-entries/{ann}/revisions/9/restore").status_code == 404


def test_the_terminal_prints_each_finished_turns_changes_once(
    client: TestClient, lw: Loreweave
) -> None:
    _, session = start(client)
    session_id = uuid.UUID(session)
    watch = TurnWatch.from_now(lw.database.uow, session_id)
    console = Console(record=True, width=200)
    turn(client, session, "#0 u=Bo new=Dee bad")
    assert report_turns(lw.database.uow, session_id, watch, console) == 1  # on its way
    assert console.export_text() == ""
    lw.pipeline.drain()
    assert report_turns(lw.database.uow, session_id, watch, console) == 0
    lines = console.export_text().splitlines()
    assert len(lines) == len(changes(client, session, 0)["changes"]) == 4
    assert "   ✓ Bo's note now says: 0-Bo" in lines
    assert "   ✓ new in this story: Dee" in lines
    assert any(line.startswith("   ✗ ignored the analysis pointed at") for line in lines)
    report_turns(lw.database.uow, session_id, watch, console)
    assert console.export_text() == ""  # printed once (export_text clears the record)

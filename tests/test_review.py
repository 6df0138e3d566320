"""Review before it counts (DESIGN §1.7), through the HTTP API on SQLite and PostgreSQL: in
manual mode a note change or a created entry waits as proposed — out of the notes, the entries,
the vectors and the context — until a person approves it (or an edit of it), or rejects it (its
events skipped, the creation skipped)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loreweave.api import create_app
from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.db.models import EntityVector, LoreEntry

from .test_memory_view import changes, story_app, turn
from .test_transcript_api import notes, start, titles


@pytest.fixture
def lw(database: Database, tmp_path: Path) -> Loreweave:
    return story_app(database, tmp_path)


@pytest.fixture
def client(lw: Loreweave) -> Iterator[TestClient]:
    with TestClient(create_app(lw)) as test_client:
        yield test_client


def manual(client: TestClient) -> tuple[str, str]:
    world, session = start(client)
    answer = client.patch(f"/api/sessions/{session}", json={"review": "manual"})
    assert answer.status_code == 200 and answer.json()["review"] == "manual"
    return world, session


def proposed(client: TestClient, session: str, index: int) -> dict[str, dict[str, Any]]:
    listed = changes(client, session, index)["changes"]
    return {c["title"]: c for c in listed if c["status"] == "proposed"}


def context(client: TestClient, session: str, message: str = "Ann and Bo") -> str:
    found = client.post(f"/api/sessions/{session}/context", json={"message": message})
    return str(found.json()["text"])


def searched(client: TestClient, session: str, query: str) -> list[str]:
    return [hit["title"] for hit in client.get(f"/api/sessions/{session}/search?q={query}").json()]


def vectors(lw: Loreweave, entry_id: str) -> list[str]:
    """The live vector rows' texts of an entry."""
    with lw.database.uow(read_only=True) as uow:
        rows = uow.session.scalars(
            select(EntityVector.text).where(
                EntityVector.lore_entry_id == uuid.UUID(entry_id),
                EntityVector.is_deleted.is_(False),
            )
        )
        return list(rows)


def created(lw: Loreweave, title: str) -> list[str]:
    """The contents of every entry of that title, whoever may see it."""
    with lw.database.uow(read_only=True) as uow:
        return list(uow.session.scalars(select(LoreEntry.content).where(LoreEntry.title == title)))


def test_a_proposed_change_is_out_of_the_notes_and_the_context_until_approved(
    client: TestClient, lw: Loreweave
) -> None:
    _, session = manual(client)
    turn(client, session, "#0 u=Ann")
    lw.pipeline.drain()
    ann = proposed(client, session, 0)["Ann"]
    assert ann["before"] is None and ann["after"] == "0-Ann | 0-Ann"  # message and reply
    assert notes(client, session) == {}
    assert "0-Ann" not in context(client, session)
    assert client.get(f"/api/sessions/{session}/notes?observer=Ann").json() == []

    # the later events of Ann wait behind the proposal, in order
    turn(client, session, "#1 u=Ann")
    lw.pipeline.drain()
    assert "Ann" not in proposed(client, session, 1)  # (the reply names Bo: his goes on)

    approved = client.post(f"/api/sessions/{session}/changes/{ann['id']}/approve")
    assert approved.json() == {"approved": 1, "rejected": 0, "redone": 0}
    assert notes(client, session) == {"Ann": "0-Ann | 0-Ann"}
    assert "0-Ann | 0-Ann" in context(client, session)
    assert changes(client, session, 0)["changes"][0]["status"] == "applied"
    lw.pipeline.drain()
    later = proposed(client, session, 1)["Ann"]
    assert later["before"] == "0-Ann | 0-Ann" and later["after"] == "0-Ann | 0-Ann | 1-Ann"
    assert client.post(f"/api/sessions/{session}/changes/{ann['id']}/approve").status_code == 404


def test_a_rejected_change_is_a_skipped_event(client: TestClient, lw: Loreweave) -> None:
    _, session = manual(client)
    turn(client, session, "#0 u=Bo")
    lw.pipeline.drain()
    bo = proposed(client, session, 0)["Bo"]
    rejected = client.post(f"/api/sessions/{session}/changes/{bo['id']}/reject")
    assert rejected.json()["rejected"] == 1
    listed = [c for c in changes(client, session, 0)["changes"] if c["title"] == "Bo"]
    assert [(c["status"], c["after"]) for c in listed] == [("rejected", "0-Bo")]
    assert "rejected in review" in listed[0]["reason"]
    turn(client, session, "#1 u=Bo")
    lw.pipeline.drain()
    assert client.post(f"/api/sessions/{session}/turns/1/changes/approve").json()["approved"] == 1
    # Bo's note is what a replay that skipped turn 0's event makes: turn 1's events alone
    assert notes(client, session)["Bo"] == "1-Bo | 1-Bo"
    assert client.post(f"/api/sessions/{session}/changes/{bo['id']}/reject").status_code == 404


def test_an_edited_approval_becomes_the_note(client: TestClient, lw: Loreweave) -> None:
    _, session = manual(client)
    turn(client, session, "#0 u=Bo")
    lw.pipeline.drain()
    bo = proposed(client, session, 0)["Bo"]
    url = f"/api/sessions/{session}/changes/{bo['id']}/approve"
    assert client.post(url, json={"after": "  "}).status_code == 422
    assert client.post(url, json={"after": "Bo waved, once."}).status_code == 200
    assert notes(client, session)["Bo"] == "Bo waved, once."
    assert "Bo waved, once." in context(client, session)


def test_back_to_auto_approves_what_waits_and_a_cut_drops_it(
    client: TestClient, lw: Loreweave
) -> None:
    world, session = start(client)
    assert client.patch(f"/api/worlds/{world}", json={"review": "manual"}).json()["review"] == (
        "manual"
    )
    turn(client, session, "#0 u=Ann")
    turn(client, session, "#1 u=Bo")
    lw.pipeline.drain()
    assert set(proposed(client, session, 1)) == {"Bo"}
    # a cut drops the session's proposals: the kept turns' events are made again
    client.delete(f"/api/sessions/{session}/turns/1")
    assert proposed(client, session, 0) == {}
    lw.pipeline.drain()
    assert set(proposed(client, session, 0)) == {"Ann"}
    assert client.patch(f"/api/worlds/{world}", json={"review": "auto"}).status_code == 200
    assert notes(client, session) == {"Ann": "0-Ann | 0-Ann"}
    assert proposed(client, session, 0) == {}
    assert client.patch(f"/api/worlds/{world}", json={"review": "later"}).status_code == 422


def test_a_proposal_over_a_note_a_person_changed_is_made_again(
    client: TestClient, lw: Loreweave
) -> None:
    _, session = manual(client)
    turn(client, session, "#0 u=Bo")
    lw.pipeline.drain()
    client.post(f"/api/sessions/{session}/turns/0/changes/approve")
    turn(client, session, "#1 u=Bo")
    lw.pipeline.drain()
    stale = proposed(client, session, 1)["Bo"]
    bo = stale["entry_id"]
    client.put(f"/api/sessions/{session}/notes/{bo}", json={"note_content": "Bo, as I see him."})
    answer = client.post(f"/api/sessions/{session}/changes/{stale['id']}/approve")
    assert answer.status_code == 409
    assert notes(client, session)["Bo"] == "Bo, as I see him."
    lw.pipeline.drain()
    again = proposed(client, session, 1)["Bo"]
    assert again["before"] == "Bo, as I see him."
    assert again["after"] == "Bo, as I see him. | 1-Bo | 1-Bo"


# -- created entries ---------------------------------------------------------------------------
def test_a_created_entry_is_out_of_the_session_until_approved(
    client: TestClient, lw: Loreweave
) -> None:
    world, session = manual(client)
    turn(client, session, "#0 new=Dee")
    lw.pipeline.drain()
    dee = proposed(client, session, 0)["Dee"]
    assert (dee["kind"], dee["before"], dee["after"]) == ("entry", None, "Dee appeared.")
    assert "Dee" not in titles(client, world, session)
    assert "Dee appeared." not in context(client, session, "Dee waves")
    assert "Dee" not in searched(client, session, "Dee appeared")
    assert vectors(lw, dee["entry_id"]) == []
    assert client.get(f"/api/lore-entries/{dee['entry_id']}/revisions").status_code == 200
    # a later turn's analysis waits: it must see the entity, or not, as the person decides
    turn(client, session, "#1 u=Ann")
    lw.pipeline.drain()
    assert changes(client, session, 1)["state"] == "pending"

    approved = client.post(f"/api/sessions/{session}/changes/{dee['id']}/approve")
    assert approved.json() == {"approved": 1, "rejected": 0, "redone": 0}
    assert "Dee" in titles(client, world, session)
    assert "Dee appeared." in context(client, session, "Dee waves")
    assert "Dee" in searched(client, session, "Dee appeared")
    assert vectors(lw, dee["entry_id"]) != []
    entries = [c for c in changes(client, session, 0)["changes"] if c["kind"] == "entry"]
    assert [(c["status"], c["title"]) for c in entries] == [("applied", "Dee")]
    lw.pipeline.drain()  # turn 1 is analysed now (Ann's event waits behind turn 0's reply's)
    assert "Bo" in proposed(client, session, 1)
    assert client.post(f"/api/sessions/{session}/changes/{dee['id']}/approve").status_code == 404


def test_a_rejected_entry_is_a_skipped_creation(client: TestClient, lw: Loreweave) -> None:
    world, session = manual(client)
    turn(client, session, "#0 new=Dee")
    lw.pipeline.drain()
    dee = proposed(client, session, 0)["Dee"]
    rejected = client.post(f"/api/sessions/{session}/changes/{dee['id']}/reject")
    assert rejected.json() == {"approved": 0, "rejected": 1, "redone": 0}
    assert created(lw, "Dee") == []
    listed = [c for c in changes(client, session, 0)["changes"] if c["kind"] == "entry"]
    assert [(c["status"], c["after"]) for c in listed] == [("rejected", "t0-new-Dee")]
    assert "rejected in review" in listed[0]["reason"]
    # the later turns go on as if Dee had never been: a new Dee is no duplicate of the old
    turn(client, session, "#1 u=Bo new=Dee")
    lw.pipeline.drain()
    assert set(proposed(client, session, 1)) == {"Bo", "Dee"}
    assert client.post(f"/api/sessions/{session}/turns/1/changes/approve").json()["approved"] == 2
    assert {"Bo", "Dee"} <= titles(client, world, session)
    assert notes(client, session)["Bo"] == "1-Bo | 1-Bo"
    assert created(lw, "Dee") == ["Dee appeared."]
    assert client.post(f"/api/sessions/{session}/changes/{dee['id']}/reject").status_code == 404


def test_an_edited_approval_becomes_the_entry(client: TestClient, lw: Loreweave) -> None:
    _, session = manual(client)
    turn(client, session, "#0 new=Dee")
    lw.pipeline.drain()
    dee = proposed(client, session, 0)["Dee"]
    entry = f"/api/lore-entries/{dee['entry_id']}"
    # edited, or promoted, through review only
    assert client.patch(entry, json={"content": "Dee."}).status_code == 409
    assert client.post(f"{entry}/promote").status_code == 409
    url = f"/api/sessions/{session}/changes/{dee['id']}/approve"
    assert client.post(url, json={"after": " "}).status_code == 422
    assert client.post(url, json={"after": "Dee, the smith."}).status_code == 200
    assert client.get(entry).json()["content"] == "Dee, the smith."
    assert "Dee, the smith." in context(client, session, "Dee waves")
    assert any("Dee, the smith." in text for text in vectors(lw, dee["entry_id"]))


def test_a_duplicate_of_a_rejected_entry_is_created_again(
    client: TestClient, lw: Loreweave
) -> None:
    """Two creations of one newcomer: the second merges into the proposed first (its event waits
    behind it); rejected, the first is skipped and the second is made again, alone."""
    world, session = manual(client)
    turn(client, session, "#0 new=Dee,Dee")
    lw.pipeline.drain()
    listed = [c for c in changes(client, session, 0)["changes"] if c["title"] == "Dee"]
    assert [(c["kind"], c["status"]) for c in listed] == [("entry", "proposed")]
    assert len(created(lw, "Dee")) == 1
    client.post(f"/api/sessions/{session}/changes/{listed[0]['id']}/reject")
    lw.pipeline.drain()
    again = [c for c in changes(client, session, 0)["changes"] if c["title"] == "Dee"]
    assert [(c["kind"], c["status"]) for c in again] == [("entry", "proposed")]
    assert again[0]["id"] != listed[0]["id"] and len(created(lw, "Dee")) == 1
    assert client.patch(f"/api/sessions/{session}", json={"review": "auto"}).status_code == 200
    assert titles(client, world, session) >= {"Dee"} and created(lw, "Dee") == ["Dee appeared."]


def test_back_to_auto_approves_a_proposed_entry_a_fork_keeps_it_and_a_cut_drops_it(
    client: TestClient, lw: Loreweave
) -> None:
    world, session = start(client)
    client.patch(f"/api/worlds/{world}", json={"review": "manual"})
    turn(client, session, "#0 u=Ann")
    turn(client, session, "#1 new=Dee")
    lw.pipeline.drain()
    assert proposed(client, session, 1)["Dee"]["kind"] == "entry"
    fork = client.post(f"/api/sessions/{session}/fork", json={"at_turn": 1}).json()["id"]
    assert proposed(client, fork, 1)["Dee"]["kind"] == "entry"  # the fork's own copy, waiting
    assert "Dee" not in titles(client, world, fork)
    client.delete(f"/api/sessions/{session}/turns/1")
    assert "Dee" not in titles(client, world, session) and len(created(lw, "Dee")) == 1
    assert client.patch(f"/api/worlds/{world}", json={"review": "auto"}).status_code == 200
    assert "Dee" in titles(client, world, fork)
    assert "Dee appeared." in context(client, fork, "Dee waves")

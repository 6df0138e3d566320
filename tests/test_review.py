"""Review before it counts (DESIGN §1.7), through the HTTP API on SQLite and PostgreSQL: in
manual mode a note change waits as proposed — out of the notes, the vectors and the context —
until a person approves it (or an edit of it), or rejects it (its events skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loreweave.api import create_app
from loreweave.bootstrap import Loreweave
from loreweave.db import Database

from .test_memory_view import changes, story_app, turn
from .test_transcript_api import notes, start


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


def context(client: TestClient, session: str) -> str:
    found = client.post(f"/api/sessions/{session}/context", json={"message": "Ann and Bo"})
    return str(found.json()["text"])


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

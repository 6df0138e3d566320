"""The transcript's operations through the HTTP API, on SQLite and PostgreSQL: delete, edit,
regenerate with alternatives, fork, and deleting sessions and worlds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loreweave.api import create_app
from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.queue.notify import NullNotifier

from .pipeline_support import ONE_TURN_PER_CALL, AppendingRewriter, RoutedModel, make_app
from .test_order_property import Creator
from .test_replay_property import Analyst, Narrator


@pytest.fixture
def lw(database: Database, tmp_path: Path) -> Loreweave:
    model = RoutedModel(
        chat=Narrator(), analysis=Analyst(), creation=Creator(), rewrite=AppendingRewriter()
    )
    return make_app(
        database, tmp_path, model, notifier=NullNotifier(), dual_queue_config=ONE_TURN_PER_CALL
    )


@pytest.fixture
def client(lw: Loreweave) -> Iterator[TestClient]:
    with TestClient(create_app(lw)) as test_client:
        yield test_client


def start(client: TestClient) -> tuple[str, str]:
    world = client.post("/api/worlds", json={"name": "Eldoria"}).json()["id"]
    for title in ("Ann", "Bo"):
        client.post(
            f"/api/worlds/{world}/lore-entries",
            json={"title": title, "entity_type": "Character", "content": f"{title} lives here."},
        )
    session = client.post(f"/api/worlds/{world}/sessions", json={"title": "run"}).json()["id"]
    return world, session


def play(client: TestClient, lw: Loreweave, session: str, *messages: str) -> None:
    for message in messages:
        assert client.post(f"/api/sessions/{session}/turns", json={"message": message}).is_success
    lw.pipeline.drain()


def notes(client: TestClient, session: str) -> dict[str, str]:
    return {
        n["title"]: n["note_content"] for n in client.get(f"/api/sessions/{session}/notes").json()
    }


def titles(client: TestClient, world: str, session: str) -> set[str]:
    entries = client.get(f"/api/worlds/{world}/lore-entries?session_id={session}").json()
    return {e["title"] for e in entries}


def test_delete_turns_undoes_their_memory(client: TestClient, lw: Loreweave) -> None:
    world, session = start(client)
    play(client, lw, session, "#0 u=Ann new=", "#1 u=Bo new=Dee", "#2 u=Ann,Dee new=")
    assert notes(client, session)["Ann"].startswith("0-Ann | ")
    assert "Dee" in titles(client, world, session)
    reverted: dict[str, Any] = client.delete(f"/api/sessions/{session}/turns/1").json()
    assert reverted["turns_removed"] == [1, 2]
    assert [e["title"] for e in reverted["entries_removed"]] == ["Dee"]
    # Ann's note is back to what turn 0 made of it — its events were folded into one rewrite
    # with turn 2's, so they are applied again — and Bo's note (only turn 1) is gone
    assert reverted["turns_to_analyse"] == []
    lw.pipeline.drain()
    assert notes(client, session) == {"Ann": "0-Ann | 0-Ann"}  # turn 0 and its reply name Ann
    assert "Dee" not in titles(client, world, session)
    assert len(client.get(f"/api/sessions/{session}/turns").json()) == 1
    assert client.delete(f"/api/sessions/{session}/turns/5").status_code == 404


def test_regenerate_keeps_alternatives_and_a_swap_selects_one(
    client: TestClient, lw: Loreweave
) -> None:
    _, session = start(client)
    play(client, lw, session, "#0 u= new=", "#1 u= new=")
    before = notes(client, session)
    assert client.post(f"/api/sessions/{session}/turns/0/regenerate").status_code == 409
    changed = client.post(f"/api/sessions/{session}/turns/1/regenerate").json()
    old_reply = changed["turn"]["alternatives"][0]
    assert changed["turn"]["assistant_message"] != old_reply
    assert changed["reverted"]["turns_to_analyse"] == [1]
    lw.pipeline.drain()
    swapped = client.patch(f"/api/sessions/{session}/turns/1", json={"alternative": 0}).json()
    assert swapped["turn"]["assistant_message"] == old_reply
    lw.pipeline.drain()
    assert notes(client, session) == before  # the first reply's memory, exactly, again
    bad = client.patch(f"/api/sessions/{session}/turns/1", json={"alternative": 7})
    assert bad.status_code == 422
    assert client.patch(f"/api/sessions/{session}/turns/1", json={}).status_code == 422


def test_edit_reanalyses_from_that_turn(client: TestClient, lw: Loreweave) -> None:
    _, session = start(client)
    play(client, lw, session, "#0 u=Ann new=", "#1 u=Ann new=")
    edited = client.patch(
        f"/api/sessions/{session}/turns/0", json={"user_message": "#9 u=Bo new="}
    ).json()
    assert edited["reverted"]["turns_to_analyse"] == [0, 1]
    lw.pipeline.drain()
    turns = client.get(f"/api/sessions/{session}/turns").json()
    assert [t["processing_status"] for t in turns] == ["done", "done"]
    assert notes(client, session)["Bo"].startswith("9-Bo")
    assert "0-Ann" not in notes(client, session)["Ann"]


def test_fork_copies_the_memory_as_of_a_turn(client: TestClient, lw: Loreweave) -> None:
    world, session = start(client)
    play(client, lw, session, "#0 u=Ann new=Dee", "#1 u=Bo,Dee new=")
    after_first = None
    forked = client.post(f"/api/sessions/{session}/fork", json={"at_turn": 0})
    assert forked.status_code == 201
    fork = forked.json()["id"]
    assert len(client.get(f"/api/sessions/{fork}/turns").json()) == 1
    after_first = notes(client, fork)
    assert "Bo" not in after_first and after_first["Ann"].startswith("0-Ann")
    assert "Dee" in titles(client, world, fork)  # its own copy of the created entry
    assert notes(client, session)["Bo"].startswith("1-Bo")  # the original is unaffected
    play(client, lw, fork, "#2 u=Dee new=")
    assert notes(client, fork)["Dee"].startswith("2-Dee")
    assert "2-Dee" not in notes(client, session).get("Dee", "")
    assert client.post(f"/api/sessions/{session}/fork", json={"at_turn": 9}).status_code == 404


def test_promoted_or_edited_entries_survive_their_turns_deletion(
    client: TestClient, lw: Loreweave
) -> None:
    world, session = start(client)
    play(client, lw, session, "#0 u= new=Dee", "#1 u= new=Eve")
    entries = client.get(f"/api/worlds/{world}/lore-entries?session_id={session}").json()
    ids = {e["title"]: e["id"] for e in entries}
    assert client.post(f"/api/lore-entries/{ids['Dee']}/promote").is_success
    assert client.patch(f"/api/lore-entries/{ids['Eve']}", json={"content": "Eve, revised."})
    kept = client.delete(f"/api/sessions/{session}/turns/0").json()["entries_kept"]
    assert {(e["title"], e["reason"]) for e in kept} == {
        ("Dee", "promoted to world lore"),
        ("Eve", "edited by a person"),
    }
    assert {"Dee", "Eve"} <= titles(client, world, session)


def test_delete_session_and_world(client: TestClient, lw: Loreweave) -> None:
    world, session = start(client)
    play(client, lw, session, "#0 u=Ann new=Dee")
    assert client.delete(f"/api/worlds/{world}").status_code == 409
    assert client.delete(f"/api/sessions/{session}").status_code == 204
    assert client.get(f"/api/sessions/{session}").status_code == 404
    assert "Dee" not in {e["title"] for e in client.get(f"/api/worlds/{world}/lore-entries").json()}
    other = client.post(f"/api/worlds/{world}/sessions", json={}).json()["id"]
    assert client.delete(f"/api/worlds/{world}").status_code == 409
    assert client.delete(f"/api/worlds/{world}?cascade=true").status_code == 204
    assert client.get(f"/api/sessions/{other}").status_code == 404

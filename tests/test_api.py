"""The HTTP API through its real ASGI app (FastAPI's TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loreweave.api import create_app
from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier

from .pipeline_support import make_app


@pytest.fixture
def model() -> ScriptedChatModel:
    scripted = ScriptedChatModel()
    scripted.add("Momo flexes her power; the bell rings.", prompt="chat", repeat=True)
    scripted.add(
        {
            "updates": [
                {"lore_entry_id": "E1", "update_summary": "Momo rang the bell with her mind."}
            ]
        },
        prompt="analysis",
    )
    scripted.add("Momo can now ring the shrine bell with her mind.", prompt="rewrite")
    return scripted


@pytest.fixture
def lw(database: Database, tmp_path: Path, model: ScriptedChatModel) -> Loreweave:
    return make_app(database, tmp_path, model, notifier=NullNotifier())


@pytest.fixture
def client(lw: Loreweave) -> Iterator[TestClient]:
    with TestClient(create_app(lw)) as test_client:
        yield test_client


def seed(client: TestClient) -> tuple[str, str, str]:
    world = client.post("/api/worlds", json={"name": "Eldoria", "description": "Mist."}).json()
    entry = client.post(
        f"/api/worlds/{world['id']}/lore-entries",
        json={
            "title": "Momo",
            "entity_type": "Character",
            "content": "Momo is a psychic girl.",
            "tags": ["psychic"],
            "aliases": ["Momo-chan"],
        },
    )
    assert entry.status_code == 201, entry.text
    session = client.post(f"/api/worlds/{world['id']}/sessions", json={"title": "Run"}).json()
    return world["id"], entry.json()["id"], session["id"]


def test_the_text_filter_matches_what_was_typed_not_wildcards(client: TestClient) -> None:
    world_id, entry_id, _ = seed(client)
    odd = client.post(
        f"/api/worlds/{world_id}/lore-entries",
        json={"title": "100% Proof_Gin", "entity_type": "Item", "content": "A back\\slash."},
    ).json()["id"]

    def found(text: str) -> list[str]:
        url = f"/api/worlds/{world_id}/lore-entries"
        return [e["id"] for e in client.get(url, params={"text": text}).json()]

    assert found("psychic") == [entry_id]
    assert found("%") == [odd] and found("_") == [odd] and found("0% p") == [odd]
    assert found("f_G") == [odd] and found("M_mo") == [] and found("M%o") == []
    assert found("\\") == [odd] and found("k\\s") == [odd]


def test_a_world_name_is_taken_once_in_any_case(client: TestClient) -> None:
    first = client.post("/api/worlds", json={"name": "Eldoria"}).json()
    for name in ("Eldoria", "eldoria", "  ELDORIA  "):
        again = client.post("/api/worlds", json={"name": name})
        assert again.status_code == 409, again.text
        assert first["id"] in again.json()["detail"]  # the world that has the name
    assert client.post("/api/worlds", json={"name": "Eldoria 2"}).status_code == 201
    assert [w["name"] for w in client.get("/api/worlds").json()] == ["Eldoria", "Eldoria 2"]
    models = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in models].count("loreweave/Eldoria") == 1


def test_worlds_entries_and_sessions(client: TestClient) -> None:
    world_id, entry_id, session_id = seed(client)
    assert [w["name"] for w in client.get("/api/worlds").json()] == ["Eldoria"]
    entries = client.get(f"/api/worlds/{world_id}/lore-entries", params={"tag": "psychic"}).json()
    assert [e["id"] for e in entries] == [entry_id]
    assert (
        client.get(f"/api/worlds/{world_id}/lore-entries", params={"type": "Location"}).json() == []
    )
    patched = client.patch(
        f"/api/lore-entries/{entry_id}", json={"content": "Momo is a telekinetic girl."}
    )
    assert patched.status_code == 200 and patched.json()["content"] == "Momo is a telekinetic girl."
    assert client.get(f"/api/sessions/{session_id}").json()["world_id"] == world_id
    document = client.get(f"/api/composite-documents/{entry_id}/{session_id}").json()
    assert document == {
        "lore_entry_id": entry_id,
        "session_id": session_id,
        "text": "[Base Lore]\nMomo is a telekinetic girl.",
        "has_note": False,
    }


def test_a_turn_then_the_note_then_rollback(client: TestClient, lw: Loreweave) -> None:
    _, entry_id, session_id = seed(client)
    turn = client.post(
        f"/api/sessions/{session_id}/turns", json={"message": "Momo rings the bell."}
    )
    assert turn.status_code == 200, turn.text
    body = turn.json()
    assert body["turn_index"] == 0 and body["reply"] == "Momo flexes her power; the bell rings."
    assert [e["lore_entry_id"] for e in body["used_entries"]] == [entry_id]
    lw.pipeline.drain()
    notes = client.get(f"/api/sessions/{session_id}/notes").json()
    assert notes[0]["note_content"] == "Momo can now ring the shrine bell with her mind."
    tasks = client.get(f"/api/dual-queue/note-updates/{session_id}").json()
    assert [t["status"] for t in tasks] == ["done"]
    composite = client.get(f"/api/composite-documents/{entry_id}/{session_id}").json()
    assert composite["text"].endswith(
        "[Session-Specific Notes]\nMomo can now ring the shrine bell with her mind."
    )
    # a manual edit is a new version; roll back to version 1
    with lw.database.uow() as uow:
        uow.notes.write(uuid.UUID(session_id), uuid.UUID(entry_id), "Momo lost her powers.", turn=1)
        uow.commit()
    revisions = client.get(f"/api/sessions/{session_id}/notes/{entry_id}/revisions").json()
    assert [r["version"] for r in revisions] == [1]
    rolled = client.post(
        f"/api/sessions/{session_id}/notes/{entry_id}/rollback", json={"version": 1}
    )
    assert rolled.status_code == 200 and rolled.json()["version"] == 3
    hits = client.get(f"/api/sessions/{session_id}/search", params={"q": "bell", "k": 3}).json()
    assert hits[0]["text"].endswith("ring the shrine bell with her mind.")
    turns = client.get(f"/api/sessions/{session_id}/turns").json()
    assert turns[0]["processing_status"] == "done"


def test_streamed_turn(client: TestClient) -> None:
    _, _, session_id = seed(client)
    with client.stream(
        "POST", f"/api/sessions/{session_id}/turns?stream=true", json={"message": "Go"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [block for block in text.split("\n\n") if block]
    deltas = [
        json.loads(e.split("data: ", 1)[1])["text"] for e in events if e.startswith("event: delta")
    ]
    assert "".join(deltas) == "Momo flexes her power; the bell rings."
    done = json.loads(events[-1].split("data: ", 1)[1])
    assert done["turn_index"] == 0


def test_a_turn_retried_with_its_idempotency_key_is_recorded_once(
    client: TestClient, lw: Loreweave, model: ScriptedChatModel
) -> None:
    """A client whose connection was cut after the turn was recorded sends it again with the
    same key: the first answer again, one turn, one chat call; plain, streamed and recorded."""
    _, _, session_id = seed(client)
    url = f"/api/sessions/{session_id}/turns"
    first = client.post(url, json={"message": "Go"}, headers={"Idempotency-Key": "k-1"})
    calls = len([c for c in model.calls if c.prompt == "chat"])
    again = client.post(url, json={"message": "Go"}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json()["turn_index"] == first.json()["turn_index"] == 0
    assert again.json()["reply"] == first.json()["reply"]
    assert len([c for c in model.calls if c.prompt == "chat"]) == calls  # no second chat call
    with client.stream(
        "POST", f"{url}?stream=true", json={"message": "Go"}, headers={"Idempotency-Key": "k-1"}
    ) as streamed:
        done = [b for b in "".join(streamed.iter_text()).split("\n\n") if "event: done" in b]
    assert json.loads(done[0].split("data: ", 1)[1])["turn_index"] == 0
    other = client.post(url, json={"message": "Stop"}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and "k-1" in other.json()["detail"]
    played = {"message": "Elsewhere.", "reply": "Played by another app."}
    for _ in range(2):
        recorded = client.post(url, json=played, headers={"Idempotency-Key": "k-2"})
        assert recorded.json()["turn_index"] == 1
    assert client.post(url, json={"message": "Go"}).json()["turn_index"] == 2  # no key: new
    with lw.database.uow(read_only=True) as uow:
        assert len(uow.turns.recent(uuid.UUID(session_id), 100)) == 3
    too_long = client.post(url, json={"message": "Go"}, headers={"Idempotency-Key": "k" * 201})
    assert too_long.status_code == 422


def test_promote_and_delete(client: TestClient, lw: Loreweave) -> None:
    world_id, _, session_id = seed(client)
    from loreweave.db.models import LoreEntry

    with lw.database.uow() as uow:
        created = uow.entries.add(
            LoreEntry(
                world_id=uuid.UUID(world_id),
                title="Kenta",
                content="A hunter.",
                is_dynamically_generated=True,
                origin_session_id=uuid.UUID(session_id),
            )
        )
        uow.commit()
    kenta = str(created.id)
    assert kenta not in [e["id"] for e in client.get(f"/api/worlds/{world_id}/lore-entries").json()]
    listed = client.get(
        f"/api/worlds/{world_id}/lore-entries", params={"session_id": session_id, "dynamic": True}
    ).json()
    assert [e["id"] for e in listed] == [kenta]
    promoted = client.post(f"/api/lore-entries/{kenta}/promote")
    assert promoted.status_code == 200 and promoted.json()["origin_session_id"] is None
    assert client.post(f"/api/lore-entries/{kenta}/promote").status_code == 409
    assert client.delete(f"/api/lore-entries/{kenta}").status_code == 204
    assert client.get(f"/api/lore-entries/{kenta}").status_code == 404


UNKNOWN = uuid.UUID(int=404)  # no row has it; fixed, so every xdist worker collects the same


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("post", "/api/worlds", {"name": ""}, 422),
        ("post", "/api/worlds", {"name": "x", "colour": "red"}, 422),
        ("get", "/api/worlds/not-a-uuid", None, 422),
        ("get", f"/api/worlds/{UNKNOWN}", None, 404),
        ("get", f"/api/lore-entries/{UNKNOWN}", None, 404),
        ("post", f"/api/sessions/{UNKNOWN}/turns", {"message": "hi"}, 404),
        ("post", f"/api/dual-queue/retry-note-update/{UNKNOWN}", None, 404),
        ("get", f"/api/sessions/{UNKNOWN}/search?q=x", None, 404),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(
    client: TestClient, method: str, path: str, body: object, code: int
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == code, response.text
    assert response.json()["detail"]


def test_size_limits(client: TestClient) -> None:
    world_id, _, session_id = seed(client)
    too_long = client.post(f"/api/sessions/{session_id}/turns", json={"message": "x" * 8001})
    assert too_long.status_code == 422
    huge = client.post(
        f"/api/worlds/{world_id}/lore-entries", json={"title": "T", "content": "x" * 20_001}
    )
    assert huge.status_code == 422
    tags = client.post(
        f"/api/worlds/{world_id}/lore-entries",
        json={"title": "T", "content": "c", "tags": ["t"] * 51},
    )
    assert tags.status_code == 422


def test_another_sessions_entry_is_not_visible(client: TestClient, lw: Loreweave) -> None:
    world_id, _, session_id = seed(client)
    other = client.post(f"/api/worlds/{world_id}/sessions", json={}).json()["id"]
    from loreweave.db.models import LoreEntry

    with lw.database.uow() as uow:
        secret = uow.entries.add(
            LoreEntry(
                world_id=uuid.UUID(world_id),
                title="Secret",
                content="Hidden.",
                origin_session_id=uuid.UUID(other),
            )
        )
        uow.commit()
    assert client.get(f"/api/composite-documents/{secret.id}/{session_id}").status_code == 404
    assert client.get(f"/api/composite-documents/{secret.id}/{other}").status_code == 200


def test_failed_task_retry(client: TestClient, lw: Loreweave) -> None:
    _, entry_id, session_id = seed(client)
    from loreweave.db.models import NoteUpdateTask

    with lw.database.uow() as uow:
        task = NoteUpdateTask(
            lore_entry_id=uuid.UUID(entry_id),
            session_id=uuid.UUID(session_id),
            update_summary="x",
            turn_index=0,
            status="failed",
            error_message="boom",
        )
        uow.session.add(task)
        uow.commit()
    status = client.get("/api/dual-queue/status").json()
    assert status["note_updates"]["counts"]["failed"] == 1
    assert status["note_updates"]["failed"][0]["error_message"] == "boom"
    retried = client.post(f"/api/dual-queue/retry-note-update/{task.id}")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert client.post(f"/api/dual-queue/retry-note-update/{task.id}").status_code == 409


def test_health_and_metrics(client: TestClient) -> None:
    _, _, session_id = seed(client)
    client.post(f"/api/sessions/{session_id}/turns", json={"message": "Hello"})
    assert client.get("/healthz").json()["status"] == "ok"
    metrics = client.get("/metrics").text
    assert 'loreweave_queue_tasks{queue="analysis",status="pending"} 1.0' in metrics
    assert "loreweave_turn_overhead_seconds_count 1.0" in metrics
    assert client.get("/openapi.json").json()["info"]["title"] == "loreweave"


def test_api_keys(database: Database, tmp_path: Path, model: ScriptedChatModel) -> None:
    lw = make_app(database, tmp_path, model, notifier=NullNotifier(), api_keys="k1,k2")
    with TestClient(create_app(lw)) as client:
        assert client.get("/healthz").status_code == 200
        denied = client.get("/api/worlds")
        assert denied.status_code == 401 and "Bearer" in denied.json()["detail"]
        assert (
            client.get("/api/worlds", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        assert client.get("/api/worlds", headers={"Authorization": "Bearer k2"}).status_code == 200
        assert client.get("/metrics").status_code == 401

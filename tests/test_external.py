"""Memory as a layer under another app's chat loop: recorded external turns and the context
endpoint (DESIGN §1.5)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from loreweave.api.app import create_app
from loreweave.db import Database
from loreweave.llm.types import ChatRequest, ChatResponse
from tests.pipeline_support import AppendingRewriter, make_app


class Analyst:
    """Analysis: every turn updates the entry titled ``target`` with the turn's reply; rewrites
    append; a chat call fails the test (an external turn must not make one).  The last chat
    prompt is kept when ``chat`` is allowed."""

    provider = "analyst"

    def __init__(self, *, chat: bool = False) -> None:
        self.target = ""
        self.chat = chat
        self.system_prompt = ""
        self.rewriter = AppendingRewriter()

    def complete(self, request: ChatRequest) -> ChatResponse:
        if request.prompt == "chat":
            assert self.chat, "an external turn made a chat call"
            self.system_prompt = request.messages[0].content
            return ChatResponse("The lamp burns on.", request.model)
        if request.prompt == "analysis":
            reply = request.messages[-1].content.rsplit("Narrator:", 1)[-1].splitlines()[0]
            prompt = request.messages[-1].content
            ref = re.search(rf"(E\d+)\b[^\n]*{self.target}", prompt)
            assert ref, prompt
            update = {"lore_entry_id": ref.group(1), "update_summary": reply.strip()}
            return ChatResponse(json.dumps({"updates": [update], "creations": []}), "m")
        return self.rewriter.complete(request)


def client_for(database: Database, tmp_path: Path, model: Analyst) -> tuple[TestClient, object]:
    lw = make_app(database, tmp_path, model)
    return TestClient(create_app(lw)), lw


def world(client: TestClient) -> tuple[str, str, dict[str, str]]:
    world_id = client.post("/api/worlds", json={"name": "Cliffs"}).json()["id"]
    session = client.post(f"/api/worlds/{world_id}/sessions", json={}).json()["id"]
    entries = f"/api/worlds/{world_id}/lore-entries"
    ids = {}
    for title, content, extra in [
        ("Lighthouse", "A lighthouse on the cliffs whose lamp never goes out.", {}),
        ("Harbour Law", "No fires on the docks.", {"constant": True}),
        *[(f"Cottage {i}", f"A fisher's cottage by the bay, number {i}.", {}) for i in range(8)],
    ]:
        body = {"title": title, "content": content, **extra}
        ids[title] = client.post(entries, json=body).json()["id"]
    return world_id, session, ids


def test_an_external_turn_is_recorded_and_analysed_without_a_chat_call(
    database: Database, tmp_path: Path
) -> None:
    model = Analyst()
    client, lw = client_for(database, tmp_path, model)
    _, session, _ = world(client)
    model.target = "Lighthouse"
    turn = {"message": "We climb the lighthouse.", "reply": "The keeper lets you in."}
    answer = client.post(f"/api/sessions/{session}/turns", json=turn)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["reply"], answer.json()["used_entries"]) == (turn["reply"], [])
    [recorded] = client.get(f"/api/sessions/{session}/turns").json()
    assert (recorded["user_message"], recorded["assistant_message"]) == tuple(turn.values())
    assert recorded["processing_status"] == "pending"  # its analysis job, in the same commit
    assert lw.pipeline.drain() > 0  # type: ignore[attr-defined]
    notes = client.get(f"/api/sessions/{session}/notes").json()
    assert [n["note_content"] for n in notes] == ["The keeper lets you in."]


def test_a_recorded_turn_is_validated(database: Database, tmp_path: Path) -> None:
    client, _ = client_for(database, tmp_path, Analyst())
    _, session, _ = world(client)
    turns = f"/api/sessions/{session}/turns"
    assert client.post(turns, json={"message": "Hi.", "reply": "  "}).status_code == 422
    assert client.post(turns, json={"message": "Hi.", "reply": "x" * 40_000}).status_code == 422
    streamed = client.post(f"{turns}?stream=true", json={"message": "Hi.", "reply": "Hello."})
    assert streamed.status_code == 422 and "not streamed" in streamed.text
    assert client.get(turns).json() == []


def test_the_context_is_what_a_turn_would_give_the_chat_model(
    database: Database, tmp_path: Path
) -> None:
    model = Analyst(chat=True)
    client, _ = client_for(database, tmp_path, model)
    _, session, _ = world(client)
    message = "We walk up to the lighthouse."
    context = client.post(f"/api/sessions/{session}/context", json={"message": message}).json()
    assert [(e["title"], e["why"]) for e in context["entries"]][:2] == [
        ("Harbour Law", "constant"),
        ("Lighthouse", "keyword"),
    ]
    assert context["tokens"] == sum(e["tokens"] for e in context["entries"])
    assert "[Base Lore]\nA lighthouse on the cliffs" in context["text"]
    client.post(f"/api/sessions/{session}/turns", json={"message": message})
    assert context["text"] in model.system_prompt  # the same block, the same budget


def test_the_context_keeps_to_its_budget_and_reads_the_apps_history(
    database: Database, tmp_path: Path
) -> None:
    client, _ = client_for(database, tmp_path, Analyst())
    _, session, _ = world(client)
    url = f"/api/sessions/{session}/context"
    small = client.post(url, json={"message": "the cottages by the bay", "token_budget": 50})
    assert small.status_code == 200
    assert small.json()["tokens"] <= 50 and small.json()["skipped"]
    history = [
        {"role": "assistant", "content": "You wake on the beach."},
        {"role": "user", "content": "I walk towards the lighthouse on the cliffs."},
        {"role": "assistant", "content": "Its lamp never goes out."},
    ]
    titles = lambda body: [e["title"] for e in client.post(url, json=body).json()["entries"]]  # noqa: E731
    assert "Lighthouse" in titles({"message": "And then?", "history": history})
    assert "Lighthouse" not in titles({"message": "And then?", "history": []})
    bad = client.post(url, json={"message": "x", "history": [{"role": "system", "content": "x"}]})
    assert bad.status_code == 422

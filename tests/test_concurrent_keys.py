"""The same Idempotency-Key twice at the same moment (issue 41, point 5): one chat call in all.
The first request claims the key before its chat call; the second waits for the first's turn
and answers it (plain: the stored turn; streamed: the stored reply as one chunk).  Through
the proxy, two identical first requests of a new chat make one session and one upstream call.
On SQLite and PostgreSQL, over HTTP."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.db.models import ChatSession, ChatTurn, LoreEntry, World
from loreweave.llm.types import ChatRequest, ChatResponse

from .pipeline_support import make_app
from .private_services import serving

REPLY = "The lamp is lit; the harbour sleeps."


class GatedChat:
    """A chat model whose chat calls wait at a gate the test opens: the first request is held
    inside its chat call while the second arrives.  Analyses find nothing."""

    provider = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.chat_calls = 0
        self._lock = threading.Lock()

    def complete(self, request: ChatRequest) -> ChatResponse:
        if request.prompt != "chat":
            return ChatResponse(json.dumps({"updates": [], "creations": []}), request.model)
        with self._lock:
            self.chat_calls += 1
        assert self.gate.wait(30), "the test never opened the gate"
        return ChatResponse(REPLY, request.model)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        text = self.complete(request).text
        yield from (text[i : i + 5] for i in range(0, len(text), 5))


def _waiting_on_the_key(database: Database) -> Callable[[], bool]:
    """Whether a request found the key held (its claim refused by the key's row)."""
    refused = threading.Event()

    def on_error(context: Any) -> None:
        if "request_keys" in str(context.statement or ""):
            refused.set()

    event.listen(database.engine, "handle_error", on_error)
    return refused.is_set


def _race(
    model: GatedChat, database: Database, first: Callable[[], Any], second: Callable[[], Any]
) -> list[Any]:
    """``first`` held in its chat call; ``second`` sent meanwhile; the gate opened once the
    second waits on the key (or, as before the fix, made its own chat call)."""
    results: list[Any] = [None, None]
    waiting = _waiting_on_the_key(database)

    def run(i: int, call: Callable[[], Any]) -> None:
        results[i] = call()

    threads = [threading.Thread(target=run, args=(0, first))]
    threads[0].start()
    deadline = time.monotonic() + 30
    while model.chat_calls < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    threads.append(threading.Thread(target=run, args=(1, second)))
    threads[1].start()
    while not waiting() and model.chat_calls < 2:
        assert time.monotonic() < deadline, "the second request neither waited nor called"
        time.sleep(0.01)
    model.gate.set()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def served(database: Database, tmp_path: Path) -> Iterator[tuple[str, Loreweave, GatedChat]]:
    model = GatedChat()
    lw = make_app(database, tmp_path, model)
    with serving(lw) as url:
        yield url, lw, model


def _session(lw: Loreweave) -> uuid.UUID:
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name="Harbour"))
        uow.entries.add(LoreEntry(world_id=world.id, title="Lighthouse", content="A lamp."))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        uow.commit()
        return session.id


def _turns(lw: Loreweave) -> int:
    with lw.database.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(ChatTurn)) or 0)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_same_key_twice_at_once_makes_one_chat_call(
    served: tuple[str, Loreweave, GatedChat], stream: bool
) -> None:
    url, lw, model = served
    turns = f"{url}api/sessions/{_session(lw)}/turns"
    headers = {"Idempotency-Key": "k-1"}

    def plain() -> dict[str, Any]:
        response = httpx.post(turns, json={"message": "Light it."}, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def streamed() -> list[str]:
        body = {"message": "Light it."}
        with httpx.stream(
            "POST", f"{turns}?stream=true", json=body, headers=headers, timeout=60
        ) as response:
            text = "".join(response.iter_text())
        events = [block for block in text.split("\n\n") if block.startswith("event: delta")]
        return [json.loads(e.split("data: ", 1)[1])["text"] for e in events]

    first, second = _race(model, lw.database, plain, streamed if stream else plain)
    assert model.chat_calls == 1
    assert _turns(lw) == 1
    assert first["reply"] == REPLY
    if stream:
        assert second == [REPLY]  # the stored reply, as one chunk
    else:
        assert second["reply"] == REPLY and second["turn_index"] == first["turn_index"] == 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_two_identical_first_requests_of_a_proxy_chat_make_one_session(
    database: Database, tmp_path: Path, stream: bool
) -> None:
    model = GatedChat()
    lw = make_app(database, tmp_path, model, api_keys=["sk-test"])
    with lw.database.uow() as uow:
        uow.worlds.add(World(name="Harbour"))
        uow.commit()
    body = {
        "model": "loreweave/Harbour",
        "messages": [{"role": "user", "content": "To the lighthouse."}],
        "stream": stream,
    }
    headers = {"Authorization": "Bearer sk-test", "Idempotency-Key": "turn-1"}
    with serving(lw) as url:

        def ask() -> str:
            response = httpx.post(
                f"{url}v1/chat/completions", json=body, headers=headers, timeout=60
            )
            assert response.status_code == 200, response.text
            if not stream:
                return str(response.json()["choices"][0]["message"]["content"])
            chunks = [
                json.loads(line[len("data: ") :])
                for line in response.text.splitlines()
                if line.startswith("data: {")
            ]
            return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)

        first, second = _race(model, lw.database, ask, ask)
    assert model.chat_calls == 1
    assert first == second == REPLY
    with lw.database.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(ChatSession)) == 1
    assert _turns(lw) == 1

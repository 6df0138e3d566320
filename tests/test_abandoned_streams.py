"""A reply whose stream the client abandons is recorded as far as it went (issue 40): the app
keeps what it showed (SillyTavern keeps a stopped reply), so the memory follows that."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.llm.types import ChatRequest, ChatResponse

from .pipeline_support import make_app
from .private_services import serving

FIRST = "Once"


class EndlessUpstream:
    """A chat model whose streamed reply never ends: only a client going away stops it."""

    provider = "scripted"

    def complete(self, request: ChatRequest) -> ChatResponse:
        raise AssertionError("only streamed here")

    def stream(self, request: ChatRequest) -> Iterator[str]:
        yield FIRST
        for n in itertools.count():
            yield f" and {n}"


def endless(count: int) -> str:
    return FIRST + "".join(f" and {n}" for n in range(count))


def recorded(lw: Loreweave, session_id: uuid.UUID) -> list[tuple[str, str]]:
    """The session's turns once one is recorded (the server records it after the client left)."""
    deadline = time.monotonic() + 15
    while True:
        with lw.database.uow(read_only=True) as uow:
            turns = [(t.user_message, t.assistant_message) for t in uow.turns.recent(session_id, 5)]
        if turns or time.monotonic() > deadline:
            return turns
        time.sleep(0.05)


def read_until(lines: Iterator[str], text: str) -> None:
    """Read a stream until a line holds ``text`` (the client has been shown it)."""
    for line in lines:
        if text in line:
            return
    pytest.fail(f"the stream ended before {text!r}")


@pytest.fixture
def lw(database: Database, tmp_path: Path) -> Iterator[Loreweave]:
    app = make_app(database, tmp_path, EndlessUpstream())
    yield app
    app.close()


def test_a_proxied_reply_the_client_stops_is_recorded_as_far_as_it_went(lw: Loreweave) -> None:
    lw.lore.create_world("Hollow Hill")
    body = {
        "model": "loreweave/Hollow Hill",
        "messages": [{"role": "user", "content": "Tell me a story."}],
        "stream": True,
    }
    with serving(lw, workers=False) as url, httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", "v1/chat/completions", json=body) as answer:
            assert answer.status_code == 200
            session_id = uuid.UUID(answer.headers["x-loreweave-session"])
            read_until(answer.iter_lines(), f'"content": "{FIRST}"')
        # the client stopped the generation: the response is closed mid-stream
        turns = recorded(lw, session_id)
    assert len(turns) == 1, "the turn the app shows was not recorded"
    message, reply = turns[0]
    assert message == "Tell me a story."
    assert reply.startswith(FIRST) and reply == endless(reply.count(" and "))


def test_a_chat_reply_the_client_stops_is_recorded_as_far_as_it_went(lw: Loreweave) -> None:
    world = lw.lore.create_world("Hollow Hill")
    session = lw.chat.start_session(world.id, "stopped")
    with serving(lw, workers=False) as url, httpx.Client(base_url=url, timeout=30) as client:
        path = f"api/sessions/{session.id}/turns"
        body = {"message": "Tell me a story."}
        with client.stream("POST", path, params={"stream": "true"}, json=body) as answer:
            assert answer.status_code == 200
            read_until(answer.iter_lines(), f'"text": "{FIRST}"')
        turns = recorded(lw, session.id)
    assert len(turns) == 1, "the turn the UI shows was not recorded"
    message, reply = turns[0]
    assert message == "Tell me a story."
    assert reply.startswith(FIRST) and reply == endless(reply.count(" and "))

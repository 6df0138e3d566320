"""Chats of different callers never meet: the terminal chat's sessions are its own."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from loreweave.api import create_app
from loreweave.db import Database
from loreweave.entrypoints.terminal import open_session
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier

from .pipeline_support import make_app

FIRST = "I knock on the shrine door."


def test_a_keyless_proxy_request_never_continues_the_terminal_chat(
    database: Database, tmp_path: Path
) -> None:
    """Issue 40: the README's curl, after `loreweave chat` in the same world with the same first
    line, was taken as a regenerate of the terminal chat's turn (same caller: no key)."""
    model = ScriptedChatModel()
    model.add("The door creaks open.", prompt="chat", repeat=True)
    model.add({"updates": []}, prompt="analysis", repeat=True)
    lw = make_app(database, tmp_path, model, notifier=NullNotifier())
    world = lw.lore.create_world("Hollow Hill")
    terminal, _ = open_session(lw, world.id, None)
    lw.chat.turn(terminal, FIRST)
    with TestClient(create_app(lw)) as client:
        answer = client.post(
            "/v1/chat/completions",
            json={
                "model": "loreweave/Hollow Hill",
                "messages": [{"role": "user", "content": FIRST}],
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Loreweave-Session"] != str(terminal)  # a chat of its own
    with database.uow(read_only=True) as uow:
        (turn,) = uow.turns.recent(terminal, 10)
        assert len(turn.alternatives or []) <= 1  # its reply was not regenerated

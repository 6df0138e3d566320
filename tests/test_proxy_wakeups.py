"""A proxied turn wakes each queue once, and only the queues it gave work, and a plain one is
one read and one write (issue 36)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from loreweave.api import create_app
from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.memory.queues import ANALYSIS_QUEUE, QueueName

from .pipeline_support import make_app


class CountingNotifier:
    """A Notifier that counts the wake-ups each queue is sent."""

    def __init__(self) -> None:
        self.sent: Counter[QueueName] = Counter()

    def notify(self, queue: QueueName, count: int = 1) -> None:
        self.sent[queue] += 1


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_plain_proxied_turn_wakes_the_analysis_once_in_two_transactions(
    database: Database, tmp_path: Path, stream: bool
) -> None:
    """It woke the analysis twice and the other queues for nothing, and opened eight
    transactions, six of them reads (issue 36)."""
    model = ScriptedChatModel()
    model.add("The door creaks open.", prompt="chat", repeat=True)
    notifier = CountingNotifier()
    lw = make_app(database, tmp_path, model, notifier=notifier)
    lw.lore.create_world("Hollow Hill")
    commits: list[int] = []
    begins: list[int] = []
    event.listen(database.engine, "commit", lambda _connection: commits.append(1))
    event.listen(database.engine, "begin", lambda _connection: begins.append(1))
    messages = [{"role": "user", "content": "I knock on the shrine door."}]
    with TestClient(create_app(lw)) as client:
        for reply in ("", "The door creaks open."):  # a new chat, then a chat that goes on
            if reply:
                messages += [
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": "I step inside."},
                ]
            notifier.sent.clear()
            commits.clear()
            begins.clear()
            answer = client.post(
                "/v1/chat/completions",
                json={"model": "loreweave/Hollow Hill", "messages": messages, "stream": stream},
            )
            assert answer.status_code == 200, answer.text
            assert notifier.sent == Counter({ANALYSIS_QUEUE: 1})
    # a chat that goes on by one turn: one transaction reads the world, the chats and the lore
    # before the upstream call, one writes the turn, its analysis job and the chat's match after
    assert len(begins) <= 2, f"{len(begins)} transactions"
    assert len(commits) <= 1, f"{len(commits)} commits"

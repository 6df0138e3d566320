"""The proxy follows SillyTavern's real traffic.

``tests/data/sillytavern-requests/sequences.json`` holds every request a real SillyTavern 1.12.6
sent to an OpenAI-compatible endpoint over 36 user actions (send, swipe, regenerate, continue,
impersonate, edits, deletions, a branch, a new chat, a context so full the oldest turns are
dropped), and SillyTavern's own chat after each action.  The requests are replayed through
``/v1/chat/completions`` as recorded (streamed, system messages and all), with the proxy's replies
swapped in where later requests quote the recorded ones.  After each action that sent a request,
the chat loreweave holds for that SillyTavern chat must be exactly SillyTavern's; at the end, once
the queues drain, each chat's memory must equal that of a fresh session fed its final transcript.

The recording is replayed as sent and in every other prompt shape: each request post-processed
as SillyTavern's "Prompt Post-Processing" would ("claude": 1.12.6's own), and with a World Info
entry placed @depth 2 in the user's role put into the chat whenever the player's last message
names the village (as SillyTavern 1.12.6 puts it in, ``tests/post_processing.py``).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loreweave.api.app import create_app
from loreweave.app.follow import AppMessage, as_shown, to_messages
from loreweave.db import Database
from tests.pipeline_support import StoryUpstream, make_app, notes_of, replayed_notes
from tests.post_processing import MODES, inject, post_process

SEQUENCES = Path(__file__).parent / "data" / "sillytavern-requests" / "sequences.json"
MODEL = "loreweave/Eldoria"
START = "[Start a new Chat]"
VILLAGE = (2, "user", "[The village of Eldoria lies two hours east, past the river.]")


def reshaped(messages: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """A recorded request as SillyTavern sends it with the village's World Info entry @depth
    (when the player's last message names the village) and ``mode``'s post-processing."""
    start = next(i for i, m in enumerate(messages) if m["content"] == START) + 1
    end = len(messages)
    while messages[end - 1]["role"] == "system":  # the nudges come after the chat
        end -= 1
    said = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    fired = [VILLAGE] if "village" in said else []
    chat = inject(messages[start:end], fired)
    return post_process([*messages[:start], *chat, *messages[end:]], mode)


def swapped(text: str, swap: dict[str, str]) -> str:
    for recorded in sorted(swap, key=len, reverse=True):
        text = text.replace(recorded, swap[recorded])
    return text


def read_stream(body: str) -> str:
    parts = []
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            event = json.loads(line[len("data: ") :])
            assert "error" not in event, event
            parts += [c["delta"].get("content") or "" for c in event["choices"]]
    return "".join(parts)


def chat_of(database: Database, session_id: str) -> list[AppMessage]:
    with database.uow(read_only=True) as uow:
        turns = uow.turns.recent(uuid.UUID(session_id), 10_000)
        return to_messages([(t.user_message, t.assistant_message) for t in turns])


class Replay:
    """SillyTavern's recorded session, played through the proxy, checked as it goes."""

    REGENERATIONS = ("swipe_regenerate", "regenerate_menu", "swipe_right_gen")

    def __init__(self, database: Database, tmp_path: Path, mode: str = "none") -> None:
        self.database = database
        self.mode = mode
        self.recording = json.loads(SEQUENCES.read_text())
        self.upstream = StoryUpstream("Seraphina")
        self.lw = make_app(database, tmp_path, self.upstream, api_keys=["sk-standin-key"])
        self.client = TestClient(create_app(self.lw))
        self.auth = {"Authorization": "Bearer sk-standin-key"}
        self.world = self.post("/api/worlds", {"name": "Eldoria"})["id"]
        seraphina = {
            "title": "Seraphina",
            "entity_type": "Character",
            "content": "Seraphina is the guardian of the forest glade of Eldoria.",
            "aliases": ["guardian"],
        }
        self.post(f"/api/worlds/{self.world}/lore-entries", seraphina)
        self.swap: dict[str, str] = {}  # recorded reply -> the proxy's
        self.sessions: dict[str, str] = {}  # SillyTavern's chat id -> loreweave's session
        self.known: dict[str, list[AppMessage]] = {}  # each chat as SillyTavern last showed it
        self.previous: tuple[str, str] = ("", "")  # the last step's session and recorded reply

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self.auth).json()

    def reply_of(self, name: str) -> str:
        """The proxy's reply in step ``name``."""
        [step] = [s for s in self.recording["steps"] if s["step"] == name]
        return self.swap[step["requests"][-1]["reply_text"]]

    def send(self, step: dict[str, Any]) -> bool:
        """Send the step's requests as recorded; whether one was a chat request."""
        sent = False
        for request in step["requests"]:
            if request["path"] == "/v1/models":
                listed = self.client.get("/v1/models", headers=self.auth).json()
                assert MODEL in [m["id"] for m in listed["data"]]
                continue
            body = dict(request["body"], model=MODEL)
            body["messages"] = reshaped(
                [dict(m, content=swapped(m["content"], self.swap)) for m in body["messages"]],
                self.mode,
            )
            answer = self.client.post("/v1/chat/completions", json=body, headers=self.auth)
            assert answer.status_code == 200, (step["step"], answer.text)
            # SillyTavern shows (and resends) a reply trimmed
            self.swap[request["reply_text"]] = as_shown(read_stream(answer.text))
            self.sessions[step["st_state_after"]["chatId"]] = answer.headers["X-Loreweave-Session"]
            assert "[Base Lore]" in self.upstream.seen[-1].text()  # the lore block went upstream
            sent = True
        return sent

    def check(self, step: dict[str, Any]) -> None:
        state = step["st_state_after"]
        self.known[state["chatId"]] = [
            AppMessage(
                "user" if m["is_user"] else "assistant", as_shown(swapped(m["mes"], self.swap))
            )
            for m in state["chat"]
            if not m["is_system"]
        ]
        for chat_id, shown in self.known.items():  # this chat, and every other one as it was
            assert chat_of(self.database, self.sessions[chat_id]) == shown, (step["step"], chat_id)
        session = self.sessions[state["chatId"]]
        with self.database.uow(read_only=True) as uow:
            last_two = uow.turns.recent(uuid.UUID(session), 2)
        if step["step"] in self.REGENERATIONS:  # a new reply to the same turn, the old one kept
            assert session == self.previous[0]
            assert self.swap[self.previous[1]] in last_two[-1].alternatives
        if step["step"] == "send_7":  # the reply swiped back to is picked, the other kept
            assert last_two[0].assistant_message == self.reply_of("send_6")
            assert self.reply_of("swipe_right_gen") in last_two[0].alternatives
        self.previous = (session, step["requests"][-1]["reply_text"])

    def check_memory(self) -> None:
        """Each chat's memory equals that of a fresh session fed its final transcript."""
        assert self.lw.pipeline.drain() > 0
        for session_id in map(uuid.UUID, set(self.sessions.values())):
            replayed = replayed_notes(self.lw, session_id)
            assert replayed["Seraphina"]  # the chat did change the memory
            assert replayed == notes_of(self.database, session_id)


@pytest.mark.skipif(not SEQUENCES.is_file(), reason="tests/data missing")
@pytest.mark.parametrize("mode", MODES)
def test_sillytavern_sequence_through_the_proxy(
    database: Database, tmp_path: Path, mode: str
) -> None:
    replay = Replay(database, tmp_path, mode)
    checked = 0
    for step in replay.recording["steps"]:
        if replay.send(step):  # an edit, a deletion, a swipe back: nothing until the next request
            replay.check(step)
            checked += 1
    assert checked == 25
    replay.check_memory()

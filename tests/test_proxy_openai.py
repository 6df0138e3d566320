"""The proxy driven by the unmodified ``openai`` SDK, over HTTP, plain and streamed: a chat of
five turns, regenerations, an edit, a deletion, a branch continued on both sides; two chats that
open alike, interleaved, stay two chats (one key or two); the key, the model name and the
upstream's failures in the OpenAI format."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from loreweave.app.follow import AppMessage, to_messages
from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.db.models import LoreEntry, SessionNoteRevision, World

from .pipeline_support import StoryUpstream, make_app, notes_of, replayed_notes, wait_until_idle
from .private_services import serving

KEY = "sk-proxy-test"
OTHER_KEY = "sk-proxy-other"


@pytest.fixture
def proxy(
    database: Database, tmp_path: Path
) -> Iterator[tuple[openai.OpenAI, Loreweave, StoryUpstream]]:
    upstream = StoryUpstream("Lighthouse")
    lw = make_app(database, tmp_path, upstream, api_keys=[KEY, OTHER_KEY])
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name="Harbour"))
        entries = [
            uow.entries.add(LoreEntry(world_id=world.id, title=title, content=content)).id
            for title, content in [
                ("Captain Reyes", "The harbour master, a retired sailor."),
                ("Lighthouse", "A lighthouse on the cliffs whose lamp never goes out."),
            ]
        ]
        uow.commit()
    lw.vectors.sync_entries(entries)
    with serving(lw) as url:
        client = openai.OpenAI(base_url=f"{url}v1", api_key=KEY, max_retries=0)
        yield client, lw, upstream


class Chat:
    """What an app holds: its messages; it sends them all, every time."""

    def __init__(self, client: openai.OpenAI, stream: bool, *opening: dict[str, str]) -> None:
        self.client = client
        self.stream = stream
        self.messages: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]
        self.messages += opening
        self.session = ""
        self.timing = ""  # the last answer's Server-Timing header
        self.changes: str | None = None  # the last answer's X-Loreweave-Changes header

    def ask(self, text: str | None = None) -> str:
        if text is not None:
            self.messages.append({"role": "user", "content": text})
        reply = self.complete(self.messages)
        self.messages.append({"role": "assistant", "content": reply})
        return reply

    def complete(self, messages: list[dict[str, str]]) -> str:
        if self.stream:
            streamed = self.client.chat.completions.with_raw_response.create(
                model="loreweave/Harbour",
                messages=messages,  # type: ignore[arg-type]
                stream=True,
            )
            self.session = streamed.headers["x-loreweave-session"]
            self.timing = streamed.headers["server-timing"]
            parts = [c.choices[0].delta.content or "" for c in streamed.parse() if c.choices]
            return "".join(parts)
        raw = self.client.chat.completions.with_raw_response.create(
            model="loreweave/Harbour",
            messages=messages,  # type: ignore[arg-type]
        )
        self.session = raw.headers["x-loreweave-session"]
        self.timing = raw.headers["server-timing"]
        self.changes = raw.headers.get("x-loreweave-changes")
        return raw.parse().choices[0].message.content or ""

    def regenerate(self) -> str:
        self.messages.pop()
        return self.ask()

    def shown(self) -> list[AppMessage]:
        return [AppMessage(m["role"], m["content"]) for m in self.messages if m["role"] != "system"]  # type: ignore[arg-type]


def stored(lw: Loreweave, session: str) -> list[AppMessage]:
    with lw.database.uow(read_only=True) as uow:
        turns = uow.turns.recent(uuid.UUID(session), 1000)
        return to_messages([(t.user_message, t.assistant_message) for t in turns])


def alternatives(lw: Loreweave, session: str) -> list[list[str]]:
    with lw.database.uow(read_only=True) as uow:
        return [list(t.alternatives) for t in uow.turns.recent(uuid.UUID(session), 1000)]


def test_each_answer_names_the_previous_turns_changes(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],
) -> None:
    client, lw, _ = proxy
    chat = Chat(client, False)
    chat.ask("Message 0 about the lighthouse.")
    assert chat.changes is None  # no turn before the first
    chat.ask("Message 1 about the lighthouse.")
    assert chat.changes == f"/api/sessions/{chat.session}/turns/0/changes"
    chat.regenerate()  # the last turn's reply is replaced: the one before it is unchanged
    assert chat.changes == f"/api/sessions/{chat.session}/turns/0/changes"
    wait_until_idle(lw.database)
    base = str(client.base_url).removesuffix("/v1/")
    answer = httpx.get(base + chat.changes, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200, (base, answer.text)
    found = answer.json()
    assert found["turn"] == 0 and found["state"] == "done"
    assert {c["title"] for c in found["changes"] if c["kind"] == "note"} >= {"Lighthouse"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_chat_through_the_openai_sdk(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream], stream: bool
) -> None:
    client, lw, upstream = proxy
    chat = Chat(client, stream)
    for i in range(5):
        assert chat.ask(f"Message {i} about the lighthouse.").startswith("Proxy reply")
    session = chat.session
    assert stored(lw, session) == chat.shown()
    assert any("[Base Lore]\nA lighthouse" in m.content for m in upstream.seen[-1].messages)
    # where the time went: a streamed answer's headers leave before the upstream call
    phases = dict(part.split(";dur=") for part in chat.timing.split(", "))
    before = {"body", "target", "match", "stored", "retrieve"}  # "follow" once the chat changed
    assert set(phases) - {"follow"} == before | (set() if stream else {"upstream", "record"})
    assert all(float(ms) >= 0 for ms in phases.values())

    first, second = chat.messages[-1]["content"], chat.regenerate()
    third = chat.regenerate()
    assert (chat.session, stored(lw, session)) == (session, chat.shown())
    assert alternatives(lw, session)[-1] == [first, second] and third not in (first, second)

    chat.messages[3]["content"] = "Message 1, edited: about Captain Reyes."  # an earlier message
    chat.ask("Message 5.")
    assert (chat.session, stored(lw, session)) == (session, chat.shown())

    del chat.messages[-2:]  # the last two messages deleted
    chat.ask("Message 6, after a deletion.")
    assert stored(lw, chat.session) == chat.shown()

    # a branch from turn 2: the first two turns, then a new message; both sides go on
    parent = chat
    branch = Chat(client, stream)
    branch.messages = [dict(m) for m in parent.messages[:5]]
    branch.ask("In the branch: we stay at the lighthouse.")
    parent_session = parent.session
    parent.ask("In the parent: we sail away.")
    branch.ask("Still in the branch.")
    assert branch.session != parent.session == parent_session
    assert stored(lw, branch.session) == branch.shown()
    assert stored(lw, parent.session) == parent.shown()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_reply_shown_trimmed_is_not_an_edit(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream], stream: bool
) -> None:
    """Models pad their replies; SillyTavern shows and resends them trimmed (and a Windows
    client with CRLF line ends): the chat goes on, nothing is reverted or analysed again."""
    client, lw, upstream = proxy
    upstream.padding = ("\n ", " \n\n")
    chat = Chat(client, stream)
    for text in ("To the lighthouse.", "Up the stairs\nto the lamp.", "The lamp is lit."):
        chat.ask(text)
        chat.messages[-1]["content"] = chat.messages[-1]["content"].strip()
        chat.messages[-2]["content"] = chat.messages[-2]["content"].replace("\n", "\r\n")
    assert stored(lw, chat.session) == [
        AppMessage(m.role, m.content.replace("\r\n", "\n")) for m in chat.shown()
    ]
    wait_until_idle(lw.database)
    with lw.database.uow(read_only=True) as uow:
        reasons = uow.session.scalars(select(SessionNoteRevision.reason)).all()
    assert reasons and "revert" not in reasons
    session = uuid.UUID(chat.session)
    assert notes_of(lw.database, session) == replayed_notes(lw, session)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_request_retried_with_its_idempotency_key_is_recorded_once(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream], stream: bool
) -> None:
    """The connection cut after the turn was recorded, the client sends the same request with
    the same key: the recorded reply, no upstream call, no alternative.  Without the key the
    same request is a regenerate (SillyTavern's swipe sends exactly that)."""
    client, lw, upstream = proxy
    chat = Chat(client.with_options(default_headers={"Idempotency-Key": "turn-1"}), stream)
    chat.messages.append({"role": "user", "content": "To the lighthouse."})
    first = chat.complete(chat.messages)
    calls = upstream.replies
    assert chat.complete(chat.messages) == first and upstream.replies == calls
    assert stored(lw, chat.session) == [*chat.shown(), AppMessage("assistant", first)]
    assert alternatives(lw, chat.session) == [[]]
    chat.client = client  # no key: a swipe
    second = chat.complete(chat.messages)
    assert second != first and alternatives(lw, chat.session) == [[first]]


def test_the_abandoned_side_of_a_branch_is_listed_apart_archived_or_deleted(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],
) -> None:
    """ "Delete the last messages, then send" is a fork to the proxy (it cannot tell it from a
    branch): the side no request shows any more is listed apart, and a person archives it (no
    request matches it again) or deletes it with its memory; nothing is deleted silently."""
    client, lw, _ = proxy
    from fastapi.testclient import TestClient

    from loreweave.api import create_app

    chat = Chat(client, False)
    for text in ("To the lighthouse.", "Up the stairs.", "At the lamp."):
        chat.ask(text)
    original = chat.session
    del chat.messages[-4:]  # the last two exchanges deleted in the app
    chat.ask("Back down, to the harbour.")
    fork = chat.session
    assert fork != original
    api = TestClient(create_app(lw), headers={"Authorization": f"Bearer {KEY}"})
    with lw.database.uow(read_only=True) as uow:
        world = uow.sessions.require(uuid.UUID(fork)).world_id
    url = f"/api/worlds/{world}/sessions"
    [left] = api.get(url, params={"side": "abandoned"}).json()
    assert (left["id"], left["abandoned_for"]) == (original, fork)
    [active] = api.get(url, params={"side": "active"}).json()
    assert (active["id"], active["forked_from_id"], active["forked_at_turn"]) == (fork, original, 0)
    assert api.post(f"/api/sessions/{original}/archive").json()["archived_at"]
    assert api.get(url, params={"side": "abandoned"}).json() == []
    assert [s["id"] for s in api.get(url, params={"side": "archived"}).json()] == [original]
    # the full original transcript again: never matched to the archived chat
    kept = stored(lw, original)
    again = Chat(client, False)
    again.messages = [{"role": "system", "content": "Be brief."}]
    again.messages += [dict(m) for m in stored_as_openai(lw, original)]
    again.ask("Once more at the lamp.")
    assert again.session != original
    assert stored(lw, original) == kept  # nothing added to it
    assert api.delete(f"/api/sessions/{original}").status_code == 204
    assert api.get(f"/api/sessions/{fork}").json()["forked_from_id"] is None


def stored_as_openai(lw: Loreweave, session: str) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in stored(lw, session)]


def test_keys_models_and_upstream_errors(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],
) -> None:
    client, _, upstream = proxy
    assert [m.id for m in client.models.list()] == ["loreweave/Harbour"]
    stranger = openai.OpenAI(base_url=str(client.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    messages: Any = [{"role": "user", "content": "Hello."}]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="loreweave/Nowhere", messages=messages)
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o", messages=messages)
    upstream.fail = True
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="loreweave/Harbour", messages=messages)
    assert failed.value.status_code == 502 and "overloaded" in failed.value.message
    # the failed request recorded nothing; the same request again is a new chat's first turn
    reply = client.chat.completions.create(model="loreweave/Harbour", messages=messages)
    assert reply.choices[0].message.content == "Proxy reply 1 to: Hello."


GREETING = {"role": "assistant", "content": "The harbour is quiet tonight. What brings you here?"}


def interleaved(first: Chat, second: Chat) -> None:
    """Two people playing at once, each opening with the most common first message."""
    for i in range(3):
        first.ask("Hello!" if i == 0 else f"A{i}: to the lighthouse.")
        second.ask("Hello!" if i == 0 else f"B{i}: to the harbour master.")


def same_memory_as_its_transcript(lw: Loreweave, *chats: Chat) -> None:
    wait_until_idle(lw.database)
    for chat in chats:
        notes = notes_of(lw.database, uuid.UUID(chat.session))
        assert notes["Lighthouse"]  # the chat did change the memory
        assert replayed_notes(lw, uuid.UUID(chat.session)) == notes


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_two_chats_that_open_alike_stay_two_chats(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream], stream: bool
) -> None:
    """Same key, same system prompt, greeting and first message, interleaved: B's first request
    looks like a regenerate of A's first turn, and B's second one picks that reply and goes on:
    a fork, never a cut of A's turns."""
    client, lw, _ = proxy
    a, b = Chat(client, stream, GREETING), Chat(client, stream, GREETING)
    interleaved(a, b)
    assert a.session != b.session
    assert stored(lw, a.session) == a.shown()
    assert stored(lw, b.session) == b.shown()
    same_memory_as_its_transcript(lw, a, b)


def test_chats_of_other_keys_or_users_are_never_touched(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],
) -> None:
    """Two keys, the very same transcript: two chats; so are two ``user`` fields of one key,
    and two ``X-Loreweave-Chat`` headers.  A regenerate stays in its caller's chat."""
    client, lw, _ = proxy
    other = openai.OpenAI(base_url=str(client.base_url), api_key=OTHER_KEY, max_retries=0)
    a, b = Chat(client, False, GREETING), Chat(other, False, GREETING)
    for text in ("Hello!", "To the lighthouse."):
        a.ask(text)
        b.messages = [dict(m) for m in a.messages]
        b.complete(b.messages[:-1])  # the whole transcript, again: a regenerate, elsewhere
    assert a.session != b.session
    assert stored(lw, a.session) == a.shown()
    assert alternatives(lw, a.session)[-1] == []
    channels = {
        client.with_options(default_headers={"X-Loreweave-Chat": channel})
        .chat.completions.with_raw_response.create(
            model="loreweave/Harbour",
            messages=[{"role": "user", "content": "Hello!"}],
            user="player-1",
        )
        .headers["x-loreweave-session"]
        for channel in ("general", "tavern")
    }
    assert len(channels) == 2 and a.session not in channels
    users = {
        client.chat.completions.with_raw_response.create(
            model="loreweave/Harbour",
            messages=[{"role": "user", "content": "Hello!"}],
            user=user,
        ).headers["x-loreweave-session"]
        for user in ("player-1", "player-2")
    }
    assert len(users) == 2 and a.session not in users
    same_memory_as_its_transcript(lw, a, b)


def test_name_macros_take_the_names_a_request_carries(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],
) -> None:
    client, lw, upstream = proxy
    with lw.database.uow() as uow:
        world = next(w for w in uow.worlds.list() if w.name == "Harbour")
        keeper = uow.entries.add(
            LoreEntry(
                world_id=world.id,
                title="Keeper",
                content="{{char}} keeps the lighthouse and owes {{user}} a favour.",
            )
        ).id
        uow.commit()
    lw.vectors.sync_entries([keeper])

    def lore_sent(messages: list[dict[str, str]]) -> str:
        client.chat.completions.create(model="loreweave/Harbour", messages=messages)  # type: ignore[arg-type]
        return next(m.content for m in upstream.seen[-1].messages if "[Base Lore]" in m.content)

    named = [
        {"role": "assistant", "content": "The lamp is lit.", "name": "Isolde"},
        {"role": "user", "content": "Who keeps the lighthouse?", "name": "Corwin"},
    ]
    assert "Isolde keeps the lighthouse and owes Corwin a favour." in lore_sent(named)
    # no names in the request: the settings' (persona_name, character_name)
    plain = [{"role": "user", "content": "Who keeps the lighthouse, then?"}]
    assert "Character keeps the lighthouse and owes User a favour." in lore_sent(plain)

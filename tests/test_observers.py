"""Who knows what (DESIGN §1.6, issue 26): every event carries its witnesses, and a character's
view of the world holds only what it witnessed or what is public — through the context endpoint,
a played turn, a fork, a cut, and the proxy, which reads the observer from SillyTavern's main
prompt."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loreweave.api.app import create_app
from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.db.models import USER, LoreEntry, NoteUpdateTask
from loreweave.llm.types import ChatRequest, ChatResponse

from .pipeline_support import AppendingRewriter, make_app, make_world, wait_until_idle
from .private_services import serving

# turn text -> the events it makes: (entity title, summary, titles of who knows it; () = public)
STORY: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "Mira hides the key under the altar while Tomas sleeps.": [
        ("Iron Key", "Mira hid the key under the altar.", ("Mira",)),
        ("Mira", "Mira hid the key under the altar while Tomas slept.", ("Mira",)),
        ("Tomas", "Tomas fell asleep in the chapel.", ()),
    ],
    "Tomas wakes and stretches.": [("Tomas", "Tomas woke up in the chapel.", ())],
    # a newcomer only Mira meets, then a secret she shares with the newcomer alone
    "A stranger named Dee slips Mira a letter.": [("+Dee", "Dee, a courier.", ("Mira",))],
    "Mira burns the letter with Dee.": [("Mira", "Mira burned Dee's letter.", ("Mira", "Dee"))],
    "Mira tells Tomas where the key is.": [
        ("Iron Key", "Mira told Tomas the key lies under the altar.", ("Mira", "Tomas")),
        ("Tomas", "Tomas learned from Mira that the key is under the altar.", ("Mira", "Tomas")),
    ],
}
TURNS = [t for t in STORY if "Dee" not in t]
SECRET = "altar"
ENTITY_LINE = re.compile(r"^(E\d+) \| [^|]+ \| (.+?)(?: \(also:.*)?$", re.M)


class WitnessModel:
    """Analyses by the story's script, naming entities and witnesses by the refs the prompt
    shows (so the answers never depend on the list's order); rewrites append events; chat
    replies are numbered and every chat request is kept."""

    provider = "witness"

    def __init__(self) -> None:
        self.rewriter = AppendingRewriter()
        self.chats: list[ChatRequest] = []
        self.lock = threading.Lock()

    def complete(self, request: ChatRequest) -> ChatResponse:
        if request.prompt == "analysis":
            return ChatResponse(json.dumps(self._analysis(request.messages[-1].content)), "m")
        if request.prompt == "creation":
            body = {"title": "Dee", "content": "Dee, a courier of the coast road.", "tags": []}
            return ChatResponse(json.dumps(body), "m")
        if request.prompt == "chat":
            with self.lock:
                self.chats.append(request)
                return ChatResponse(f"Reply {len(self.chats)}.", "m")
        return self.rewriter.complete(request)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        yield self.complete(request).text

    @staticmethod
    def _analysis(prompt: str) -> dict[str, object]:
        refs = {title: ref for ref, title in ENTITY_LINE.findall(prompt)}
        latest = prompt.split("[Latest Turn]:", 1)[1]
        events = next((v for turn, v in STORY.items() if turn in latest), [])
        updates = [
            {
                "lore_entry_id": refs[title],
                "update_summary": summary,
                "known_by": [refs[w] for w in witnesses],
            }
            for title, summary, witnesses in events
            if not title.startswith("+")
        ]
        creations = [
            {
                "entity_type": "Character",
                "creation_summary": summary,
                "known_by": [refs[w] for w in witnesses],
            }
            for title, summary, witnesses in events
            if title.startswith("+")
        ]
        return {"updates": updates, "creations": creations}


@pytest.fixture
def chapel(database: Database, tmp_path: Path) -> Iterator[tuple[Loreweave, WitnessModel]]:
    model = WitnessModel()
    lw = make_app(database, tmp_path, model)
    yield lw, model
    lw.close()


def _world(database: Database) -> tuple[uuid.UUID, uuid.UUID, dict[str, uuid.UUID]]:
    return make_world(
        database,
        ("Mira", "Character", "A young priestess of the chapel."),
        ("Tomas", "Character", "A travelling knight, Mira's companion."),
        ("Iron Key", "Item", "An old iron key that opens the crypt."),
    )


def _context(client: TestClient, session_id: uuid.UUID, observer: str | None) -> str:
    body: dict[str, object] = {"message": "Where is the iron key? Mira, Tomas.", "k": 10}
    if observer is not None:
        body["observer"] = observer
    answer = client.post(f"/api/sessions/{session_id}/context", json=body)
    assert answer.status_code == 200, answer.text
    named = {None: None, "tomas": "Tomas", USER: "User"}.get(observer, observer)
    assert answer.json()["observer"] in (named, "Tomas")  # as the entry is titled
    return str(answer.json()["text"])


def _play(lw: Loreweave, session_id: uuid.UUID, *turns: str) -> None:
    for turn in turns:
        lw.chat.record(session_id, turn, "…")
        lw.pipeline.drain()


def test_a_secret_reaches_only_those_who_know_it(chapel: tuple[Loreweave, WitnessModel]) -> None:
    """The issue's story: Mira hides the key while Tomas sleeps; Tomas wakes; Mira tells him.
    Tomas's context has nothing of the key's hiding place until he is told, a deletion of the
    telling takes it out again, and a fork before it has him not knowing."""
    lw, _ = chapel
    _, session_id, ids = _world(lw.database)
    lw.vectors.sync_entries(list(ids.values()))
    client = TestClient(create_app(lw))
    _play(lw, session_id, TURNS[0], TURNS[1])

    with lw.database.uow(read_only=True) as uow:  # the witnesses are stored with the events
        stored = {t.update_summary: t.known_by for t in uow.session.scalars(select(NoteUpdateTask))}
    assert stored["Mira hid the key under the altar."] == [str(ids["Mira"])]
    assert stored["Tomas woke up in the chapel."] == []

    narrator = _context(client, session_id, None)
    assert SECRET in narrator  # the narrator's view: the notes, everything
    mira = _context(client, session_id, "Mira")
    assert SECRET in mira  # she knows every event: her view is the notes themselves
    tomas = _context(client, session_id, "tomas")  # any case
    assert SECRET not in tomas
    assert "Tomas woke up in the chapel." in tomas  # what is public, he knows
    # of Mira and the key he knows nothing of this story: their base lore alone
    assert "### Mira (Character)\n[Base Lore]\nA young priestess of the chapel.\n\n###" in tomas
    assert "Tomas knows nothing more of it" in tomas
    assert SECRET not in _context(client, session_id, USER)
    assert SECRET not in _context(client, session_id, str(ids["Tomas"]))  # by id too

    _play(lw, session_id, TURNS[2])
    told = _context(client, session_id, "Tomas")  # Mira told him: that, not how she hid it
    assert "[Known to Tomas]\n- Mira told Tomas the key lies under the altar." in told
    assert "Mira hid the key" not in told

    fork = client.post(f"/api/sessions/{session_id}/fork", json={"at_turn": 1})
    assert fork.status_code == 201, fork.text
    forked = uuid.UUID(fork.json()["id"])
    assert SECRET not in _context(client, forked, "Tomas")
    assert SECRET in _context(client, forked, "Mira")

    assert client.delete(f"/api/sessions/{session_id}/turns/2").is_success
    lw.pipeline.drain()
    assert SECRET not in _context(client, session_id, "Tomas")
    assert SECRET in _context(client, session_id, "Mira")


def test_an_observer_that_is_no_character_is_a_clear_error(
    chapel: tuple[Loreweave, WitnessModel],
) -> None:
    lw, _ = chapel
    _, session_id, _ = _world(lw.database)
    client = TestClient(create_app(lw))
    for observer in ("Nobody", "Iron Key", str(uuid.uuid4())):
        answer = client.post(
            f"/api/sessions/{session_id}/context", json={"message": "hi", "observer": observer}
        )
        assert answer.status_code == 422, answer.text
        assert "no Character this session can see" in answer.json()["detail"]


def test_a_played_turn_as_a_character_is_given_that_characters_view(
    chapel: tuple[Loreweave, WitnessModel],
) -> None:
    lw, model = chapel
    _, session_id, ids = _world(lw.database)
    lw.vectors.sync_entries(list(ids.values()))
    _play(lw, session_id, TURNS[0])
    lw.chat.turn(session_id, "Where is the iron key, Tomas?", observer="Tomas")
    lw.chat.turn(session_id, "Where is the iron key, Mira?", observer="Mira")
    tomas, mira = (request.messages[0].content for request in model.chats)
    assert "Iron Key" in tomas and SECRET not in tomas
    assert SECRET in mira


def test_the_proxy_gives_the_character_a_prompt_is_written_for_its_view(
    chapel: tuple[Loreweave, WitnessModel],
) -> None:
    """SillyTavern's main prompt names the character ("Write Tomas's next reply…"): the lore
    sent upstream is what Tomas knows; a prompt for Mira gets Mira's."""
    lw, model = chapel
    _, session_id, ids = _world(lw.database)
    with lw.database.uow(read_only=True) as uow:
        world = uow.worlds.require(uow.sessions.require(session_id).world_id).name
    lw.vectors.sync_entries(list(ids.values()))

    def main_prompt(char: str) -> str:
        return f"Write {char}'s next reply in a fictional chat between {char} and User. Be brief."

    with serving(lw) as url:
        client = openai.OpenAI(base_url=f"{url}v1", api_key="unused", max_retries=0)
        for char in ("Tomas", "Mira"):
            messages: list[dict[str, str]] = [{"role": "system", "content": main_prompt(char)}]
            for turn in [*TURNS[:2], "Where is the iron key?"]:
                messages.append({"role": "user", "content": turn})
                reply = client.chat.completions.create(
                    model=f"loreweave/{world}",
                    messages=messages,  # type: ignore[arg-type]
                    extra_headers={"X-Loreweave-Chat": char},
                )
                answer = reply.choices[0].message.content or ""
                messages.append({"role": "assistant", "content": answer})
                wait_until_idle(lw.database)  # the server's own workers analyse it
    last_for = {
        char: next(r for r in reversed(model.chats) if f"Write {char}'s" in r.messages[0].content)
        for char in ("Tomas", "Mira")
    }
    tomas, mira = (
        "\n".join(m.content for m in last_for[char].messages if m.role == "system")
        for char in ("Tomas", "Mira")
    )
    assert "Iron Key" in tomas and SECRET not in tomas
    assert SECRET in mira


def test_a_newcomer_met_by_some_and_a_witness_it_becomes_follow_a_fork(
    chapel: tuple[Loreweave, WitnessModel],
) -> None:
    """Dee, created by the session and met only by Mira, is not in Tomas's view at all; an event
    Dee witnessed names Dee's entry, and in a fork it names the fork's own copy of Dee."""
    lw, _ = chapel
    _, session_id, ids = _world(lw.database)
    lw.vectors.sync_entries(list(ids.values()))
    client = TestClient(create_app(lw))
    _play(
        lw,
        session_id,
        "A stranger named Dee slips Mira a letter.",
        "Mira burns the letter with Dee.",
    )

    def ask(session: uuid.UUID, observer: str) -> str:
        body = {"message": "Dee and the letter, Mira.", "k": 10, "observer": observer}
        answer = client.post(f"/api/sessions/{session}/context", json=body)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["text"])

    assert "### Dee" in ask(session_id, "Mira") and "### Dee" not in ask(session_id, "Tomas")
    assert "burned Dee's letter" in ask(session_id, "Dee")  # Dee as an observer, by title
    assert "burned" not in ask(session_id, "Tomas")

    forked = uuid.UUID(
        client.post(f"/api/sessions/{session_id}/fork", json={"at_turn": 1}).json()["id"]
    )
    with lw.database.uow(read_only=True) as uow:
        dee = {
            e.origin_session_id: str(e.id)
            for e in uow.session.scalars(select(LoreEntry).where(LoreEntry.title == "Dee"))
        }
        burned = {
            t.session_id: t.known_by
            for t in uow.session.scalars(select(NoteUpdateTask))
            if "burned" in t.update_summary
        }
    assert burned[session_id] == [str(ids["Mira"]), dee[session_id]]
    assert burned[forked] == [str(ids["Mira"]), dee[forked]]  # the fork's own Dee
    assert "burned Dee's letter" in ask(forked, "Dee")
    assert "### Dee" not in ask(forked, "Tomas")


def test_in_a_group_chat_the_member_who_speaks_next_is_the_observer(
    chapel: tuple[Loreweave, WitnessModel],
) -> None:
    """The group nudge names who speaks next: a reply as Tomas gets Tomas's view, the next as
    Mira gets Mira's, in the same chat."""
    lw, model = chapel
    _, session_id, ids = _world(lw.database)
    with lw.database.uow(read_only=True) as uow:
        world = uow.worlds.require(uow.sessions.require(session_id).world_id).name
    lw.vectors.sync_entries(list(ids.values()))
    shown: list[dict[str, str]] = [
        {"role": "system", "content": "A group roleplay."},
        {"role": "system", "content": "[Start a new group chat. Group members: Mira, Tomas]"},
    ]
    lore: dict[str, str] = {}
    with serving(lw) as url:
        client = openai.OpenAI(base_url=f"{url}v1", api_key="unused", max_retries=0)
        for text, member in [(TURNS[0], "Mira"), (TURNS[1], "Tomas"), ("The key?", "Tomas")]:
            shown.append({"role": "user", "content": text})
            nudge = {"role": "system", "content": f"[Write the next reply only as {member}.]"}
            reply = client.chat.completions.create(
                model=f"loreweave/{world}",
                messages=[*shown, nudge],  # type: ignore[list-item]
            )
            shown.append(
                {"role": "assistant", "content": f"{member}: {reply.choices[0].message.content}"}
            )
            wait_until_idle(lw.database)
            lore[member] = "\n".join(
                m.content for m in model.chats[-1].messages if m.role == "system"
            )
        shown.append({"role": "user", "content": "And you, Mira?"})
        nudge = {"role": "system", "content": "[Write the next reply only as Mira.]"}
        client.chat.completions.create(
            model=f"loreweave/{world}",
            messages=[*shown, nudge],  # type: ignore[list-item]
        )
        lore["Mira"] = "\n".join(m.content for m in model.chats[-1].messages if m.role == "system")
    assert "Iron Key" in lore["Tomas"] and SECRET not in lore["Tomas"]
    assert SECRET in lore["Mira"]


def test_an_observer_is_named_by_title_alias_or_id_in_any_case(database: Database) -> None:
    from loreweave.memory.observer import resolve

    _, session_id, ids = make_world(database, ("Tomas", "Character", "A knight."))
    with database.uow() as uow:
        uow.entries.require(ids["Tomas"]).aliases = ["Sir Tomas", "the 100% Knight"]
        uow.commit()
    with database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        for name in ("tomas", "SIR  TOMAS", "The 100% knight", str(ids["Tomas"])):
            found = resolve(uow, session, name)
            assert found is not None and found.witness == str(ids["Tomas"]), name
        assert resolve(uow, session, "user") == resolve(uow, session, USER)
        assert resolve(uow, session, "Sir", strict=False) is None  # a part of an alias is not it

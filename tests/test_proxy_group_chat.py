"""SillyTavern group chats through the proxy (issue 25): one request per member who speaks,
every character message sent as "<Name>: <text>" (the player's as typed), each request ending
with the group nudge "[Write the next reply only as <Name>.]".  After every request the stored
chat is what SillyTavern shows, each reply with its speaker; after draining, the memory equals
the replay of the final transcript."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

from loreweave.bootstrap import Loreweave

from .pipeline_support import StoryUpstream, notes_of, replayed_notes, wait_until_idle
from .post_processing import MODES, inject, post_process
from .test_proxy_openai import proxy  # noqa: F401  (the fixture)

MEMBERS = ("Mira", "Kai")
CONTINUE = {"role": "system", "content": "[Continue your last message without repeating it.]"}


class GroupChat:
    """What SillyTavern holds for a group: (speaker, text) messages, None for the player."""

    def __init__(self, client: openai.OpenAI, mode: str = "none", names: bool = False) -> None:
        self.client = client
        self.mode = mode  # SillyTavern's Prompt Post-Processing
        self.names = names  # member names in the OpenAI ``name`` field, not the content
        self.shown: list[tuple[str | None, str]] = [("Mira", "Welcome to the lighthouse.")]
        self.session = ""

    def request(
        self, member: str, messages: list[tuple[str | None, str]], *after: dict[str, str]
    ) -> str:
        body: list[dict[str, str]] = [
            {"role": "system", "content": "A group roleplay."},
            {"role": "system", "content": "[Start a new group chat. Group members: Mira, Kai]"},
        ]
        for speaker, text in messages:
            if speaker is None:
                body.append({"role": "user", "content": text})
            elif self.names:
                body.append({"role": "assistant", "content": text, "name": speaker})
            else:
                body.append({"role": "assistant", "content": f"{speaker}: {text}"})
        body.append({"role": "system", "content": f"[Write the next reply only as {member}.]"})
        body += after
        raw = self.client.chat.completions.with_raw_response.create(
            model="loreweave/Harbour",
            messages=post_process(body, self.mode),  # type: ignore[arg-type]
        )
        self.session = raw.headers["x-loreweave-session"]
        return raw.parse().choices[0].message.content or ""

    def round(self, text: str) -> None:
        """The player speaks; every member answers in turn."""
        self.shown.append((None, text))
        for member in MEMBERS:
            self.shown.append((member, self.request(member, self.shown).strip()))

    def continue_(self) -> None:
        """The last member's reply continued: the group nudge naming that member, then the
        continue nudge; SillyTavern shows the reply and its continuation joined by a space."""
        member, text = self.shown[-1]
        assert member is not None
        more = self.request(member, self.shown, CONTINUE).strip()
        self.shown[-1] = (member, f"{text} {more}")

    def swipe(self) -> str:
        """A new reply of the last member, the same request again."""
        member, old = self.shown.pop()
        assert member is not None
        self.shown.append((member, self.request(member, self.shown).strip()))
        return old


def stored(lw: Loreweave, session: str) -> list[tuple[str | None, str]]:
    """The stored chat as SillyTavern shows it, and who spoke each reply."""
    messages: list[tuple[str | None, str]] = []
    with lw.database.uow(read_only=True) as uow:
        for turn in uow.turns.recent(uuid.UUID(session), 1000):
            if turn.user_message:
                messages.append((None, turn.user_message))
            if turn.assistant_message or not turn.user_message:
                messages.append((turn.speaker, turn.assistant_message))
    return messages


@pytest.mark.parametrize(
    ("mode", "names"),
    [(mode, False) for mode in MODES] + [("none", True), ("strict", True)],
    ids=[*MODES, "names", "strict-names"],
)
def test_a_two_member_group_chat_is_followed_request_by_request(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],  # noqa: F811
    mode: str,
    names: bool,
) -> None:
    """In SillyTavern's every Prompt Post-Processing mode but "single user message", and with
    the names sent in the ``name`` field."""
    client, lw, upstream = proxy
    chat = GroupChat(client, mode, names)
    chat.round("We climb to the lighthouse lamp.")
    session = chat.session
    # the greeting, the player, then each member's reply recorded with its speaker
    assert stored(lw, session) == chat.shown
    assert [s for s, _ in chat.shown] == ["Mira", None, "Mira", "Kai"]

    calls = upstream.replies
    old = chat.swipe()  # Kai's reply swiped: the same request again
    assert upstream.replies == calls + 1
    assert (chat.session, stored(lw, session)) == (session, chat.shown)
    with lw.database.uow(read_only=True) as uow:
        assert uow.turns.recent(uuid.UUID(session), 1000)[-1].alternatives == [old]

    chat.round("The lighthouse lamp flickers.")
    assert (chat.session, stored(lw, session)) == (session, chat.shown)
    chat.continue_()  # Kai's reply continued: its text and speaker, no "Kai: " in the text
    assert (chat.session, stored(lw, session)) == (session, chat.shown)

    # the player edits Mira's first reply, then goes on: an edit of that turn, in place
    chat.shown[2] = ("Mira", "Mira lights the lighthouse lamp herself.")
    chat.round("We watch the sea from the lighthouse.")
    assert (chat.session, stored(lw, session)) == (session, chat.shown)
    assert len(stored(lw, session)) == len(chat.shown)

    # a branch from the first round: a chat of its own, the original untouched
    original = list(chat.shown)
    branch = GroupChat(client, mode, names)
    branch.shown = list(chat.shown[:4])
    branch.round("In the branch, we go back down from the lighthouse.")
    assert branch.session != session
    assert stored(lw, branch.session) == branch.shown
    assert stored(lw, session) == original

    wait_until_idle(lw.database)
    for each in (session, branch.session):
        notes = notes_of(lw.database, uuid.UUID(each))
        assert notes["Lighthouse"]
        assert replayed_notes(lw, uuid.UUID(each)) == notes


def test_members_who_speak_are_given_to_the_analysis(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],  # noqa: F811
) -> None:
    client, lw, upstream = proxy
    seen: list[Any] = []
    original = upstream.complete

    def watch(request: Any) -> Any:
        if request.prompt and request.prompt.startswith("analysis"):
            seen.append(request.messages[-1].content)
        return original(request)

    upstream.complete = watch  # type: ignore[method-assign]
    chat = GroupChat(client)
    chat.round("Hello, everyone, at the lighthouse.")
    wait_until_idle(lw.database)
    said = "\n".join(seen)
    assert "Mira: Proxy reply" in said and "Kai: Proxy reply" in said


# Text put in at a depth (depth, role, content), and the word in the player's last message that
# makes each fire: World Info entries in the user's role — the river's text is nowhere in
# loreweave, the lamp's is the world's lore (a lorebook imported into loreweave as well) — and
# in the assistant's (the harbour master's, lore too); an Author's Note, a system message at
# depth 4, on every request ("" fires always): at the chat's top while the chat is shorter
RIVER = ((2, "user", "[The river is rising fast.]"), "river")
LAMP = ((0, "user", "A lighthouse on the cliffs whose lamp never goes out."), "lamp")
REYES = ((1, "assistant", "The harbour master, a retired sailor."), "stairs")
NOTE = ((4, "system", "[Author's note: the fog thickens.]"), "")


@pytest.mark.parametrize("mode", MODES)
def test_a_one_to_one_chat_in_every_post_processing_mode(
    proxy: tuple[openai.OpenAI, Loreweave, StoryUpstream],  # noqa: F811
    mode: str,
) -> None:
    """A greeting (strict mode puts its placeholder before it), turns, a continue (its nudge a
    user message in the strict modes), a swipe, while World Info entries @depth fire on some
    requests and not others: followed as the plain shape, in one session, the injected text
    never a turn, the swiped reply kept as an alternative."""
    client, lw, _ = proxy
    shown: list[dict[str, str]] = [{"role": "assistant", "content": "The harbour is quiet."}]
    session = ""

    def send(*tail: dict[str, str]) -> str:
        nonlocal session
        said = next((m["content"] for m in reversed(shown) if m["role"] == "user"), "")
        fired = [entry for entry, word in (RIVER, LAMP, REYES, NOTE) if word in said]
        body = [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "[Start a new Chat]"},
            *inject(shown, fired),
            *tail,
        ]
        raw = client.chat.completions.with_raw_response.create(
            model="loreweave/Harbour",
            messages=post_process(body, mode),  # type: ignore[arg-type]
        )
        assert session in ("", raw.headers["x-loreweave-session"])  # never a new chat
        session = raw.headers["x-loreweave-session"]
        return (raw.parse().choices[0].message.content or "").strip()

    def say(text: str) -> None:
        shown.append({"role": "user", "content": text})
        shown.append({"role": "assistant", "content": send()})
        assert chat_of(lw, session) == shown

    say("To the lighthouse.")
    say("Down to the river.")  # the river's text at depth 2: between the first turn's messages
    say("Up the stairs to the lamp.")  # the lamp's at depth 0: after it; Reyes's before it
    nudge = {"role": "system", "content": "[Continue your last message without repeating it.]"}
    more = send(nudge)  # the lamp's text between the reply and the nudge
    shown[-1]["content"] = f"{shown[-1]['content']} {more}"
    assert chat_of(lw, session) == shown
    swiped = shown.pop()["content"]  # a swipe: the lamp's text where the reply was
    shown.append({"role": "assistant", "content": send()})
    assert chat_of(lw, session) == shown
    with lw.database.uow(read_only=True) as uow:
        assert uow.turns.recent(uuid.UUID(session), 1)[0].alternatives == [swiped]
    say("Back down by the river.")  # the river's text glued to the lamp turn's message
    say("Home.")  # nothing fires
    wait_until_idle(lw.database)
    assert replayed_notes(lw, uuid.UUID(session)) == notes_of(lw.database, uuid.UUID(session))


def chat_of(lw: Loreweave, session: str) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in stored_messages(lw, session)]


def stored_messages(lw: Loreweave, session: str) -> list[Any]:
    from loreweave.app.follow import to_messages

    with lw.database.uow(read_only=True) as uow:
        turns = uow.turns.recent(uuid.UUID(session), 1000)
        return to_messages([(t.user_message, t.assistant_message) for t in turns])


def test_a_text_found_injected_is_known_only_when_long_enough() -> None:
    from loreweave.app.injections import Injected

    world = uuid.uuid4()
    injected = Injected()
    injected.learn(world, ["Yes.", "[The river is rising fast.]"])
    assert injected.known(world) == {"[The river is rising fast.]"}
    assert injected.known(uuid.uuid4()) == set()

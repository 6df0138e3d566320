"""Following an app's transcript from its requests alone (DESIGN §1.5).

An OpenAI-compatible client sends only ``messages``: no chat id, no swipe, edit or branch flag.
This module says which stored chat a request continues and what the request means, as a plan
the proxy carries out with the transcript's operations (so the memory follows, exactly).

- Messages are compared as the app shows them (:func:`as_shown`: no surrounding whitespace,
  ``\\n`` line ends).  System messages are dropped (they come and go: World Info, the card,
  author's notes); a trailing system message after the last reply is a *nudge*: continue or
  impersonate.  Text injected into the chat itself, in any role, is taken out against the
  stored chat (:mod:`loreweave.app.injections`).
- The chat is found from its turns, among the chats of the same caller (the proxy scopes them:
  the API key, the OpenAI ``user`` field, the ``X-Loreweave-Chat`` header): each message is
  compared by role and content with the stored chats; the one sharing the most messages (at
  least one the player wrote) wins.  The request may be a window of it: an app drops the oldest
  turns when its context is full, so a missing head is kept, never deleted.
- What changed, against that chat: a new user message appends a turn; the same turns as before
  without the last reply regenerate it; one message changed with the rest of the chat as it was
  is an edit in place, messages deleted with the rest as it was a deletion; a change of the last
  exchange (a swipe, an edit of the last message) replaces it.  Anything else changes a turn
  and everything after it (a branch, a reply's alternative chosen and gone on from, another
  chat that opened alike): a fork from the common prefix, and the chat it diverged from stays
  as it was (copy-on-write: no request cuts turns another request confirmed).

A chat is kept as turns (user message, reply): a reply without a user message before it (an
opening greeting, a second reply in a row after a deletion) is a turn with an empty user
message; a user message without a reply, one with an empty reply.  :func:`to_turns` and
:func:`to_messages` convert without loss.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Literal

from loreweave.app.injections import unmerged
from loreweave.app.shown import AppMessage as AppMessage  # re-exported: the proxy's and the API's
from loreweave.app.shown import as_shown as as_shown
from loreweave.app.shown import paragraphs

Turn = tuple[str, str]  # (user message, reply); either may be empty


def to_turns(messages: Sequence[AppMessage]) -> list[Turn]:
    turns: list[Turn] = []
    for message in messages:
        if message.role == "user":
            turns.append((message.content, ""))
        elif turns and turns[-1][0] and not turns[-1][1]:
            turns[-1] = (turns[-1][0], message.content)
        else:
            turns.append(("", message.content))
    return turns


def to_messages(turns: Sequence[Turn]) -> list[AppMessage]:
    messages = []
    for user, reply in turns:
        if user:
            messages.append(AppMessage("user", user))
        if reply or not user:
            messages.append(AppMessage("assistant", reply))
    return messages


# -- the request -------------------------------------------------------------------------------

Nudge = Literal["continue", "impersonate", "group", "other"]

# SillyTavern's default prompts: "[Continue the following message. …]" (1.12) or "[Continue your
# last message without repeating its original content.]" (later), "[Write your next reply from
# the point of view of {{user}}, …]", and a group chat's "[Write the next reply only as
# {{char}}.]" (the member who speaks next: the pattern's ``name``)
CONTINUE_PATTERNS = (r"^\[Continue the following message", r"^\[Continue your last message")
IMPERSONATE_PATTERNS = (r"^\[Write your next reply from the point of view of",)
GROUP_PATTERNS = (r"^\[Write the next reply only as (?P<name>[^\]\n]+?)\.\]$",)
# a group chat's start marker, naming its members ("[Start a new group chat. Group members: …]")
MEMBERS_PATTERNS = (r"^\[Start a new group chat\. Group members: (?P<names>[^\]\n]+)\]$",)
# a 1:1 chat's start marker (SillyTavern's new_chat_prompt)
START_PATTERNS = (r"^\[Start a new Chat\]$",)


@dataclass(frozen=True)
class Request:
    messages: list[AppMessage]  # user and assistant messages, in order
    nudge: Nudge | None  # a trailing system message after the last reply
    speaker: str | None = None  # a group chat: the member who speaks next (the group nudge)


def group_speaker(text: str, patterns: Sequence[str] = GROUP_PATTERNS) -> str | None:
    """The member a group chat's nudge names, or None."""
    for pattern in patterns:
        found = re.search(pattern, text.strip())
        if found is not None:
            return found.group("name").strip()
    return None


PLACEHOLDER = "Let's get started."  # SillyTavern's promptPlaceholder (config.yaml)
_NAMED = re.compile(r"^([^:\n]{1,100}): ")


def _is_nudge(text: str, patterns: Sequence[str]) -> bool:
    return any(re.search(p, text.strip()) for p in patterns)


def group_members(raw: Sequence[tuple[str, str]], patterns: Sequence[str]) -> set[str]:
    """The members a group chat's request names (SillyTavern's "[Start a new group chat. Group
    members: Mira, Kai]"), in any message."""
    members: set[str] = set()
    for _, content in raw:
        for pattern in patterns:
            for found in re.finditer(pattern, content, re.M):
                members.update(n.strip() for n in found.group("names").split(",") if n.strip())
    return members


def _split_members(chat: list[tuple[str, str]], names: set[str]) -> list[tuple[str, str]]:
    """A group chat's member replies merged into one assistant message, split at each member's
    name (``names``: the members the request names, the one the nudge names, and those its
    messages start with)."""
    starts = [_NAMED.match(text) for role, text in chat if role == "assistant"]
    names = names | {found.group(1) for found in starts if found}
    at_a_name = re.compile(r"\n\n(?=(?:" + "|".join(map(re.escape, sorted(names))) + r"): )")
    split: list[tuple[str, str]] = []
    for role, text in chat:
        parts = at_a_name.split(text) if role == "assistant" else [text]
        split.extend((role, part) for part in parts)
    return split


def _trailing_nudges(
    raw: Sequence[tuple[str, str]], chat: list[tuple[str, str]], known: Sequence[str]
) -> tuple[list[str], bool, list[tuple[str, str]]]:
    """The nudges after the chat — (their texts in order, whether the last came as a system
    message, the chat without them): the system messages after the last chat message, and the
    known nudges post-processing made user messages of (alone, or merged as the last paragraphs
    of the last user message).  A continue in a group chat has two: the group nudge naming the
    member, then the continue nudge."""
    nudges: list[str] = []
    for role, content in reversed(raw if chat else ()):
        if role != "system":
            break
        nudges[:0] = paragraphs(content)  # merged ("merge"): one message, a nudge a paragraph
    as_system = bool(nudges)
    while chat and chat[-1][0] == "user":
        last = chat[-1][1].strip()
        head, _, tail = last.rpartition("\n\n")
        if _is_nudge(last, known):
            nudges.insert(0, last)
            chat = chat[:-1]
        elif head and _is_nudge(tail, known):
            nudges.insert(0, tail)
            chat = [*chat[:-1], ("user", head)]
        else:
            break
    return nudges, as_system, chat


def _without_placeholder(
    chat: list[tuple[str, str]], placeholder: str | None
) -> list[tuple[str, str]]:
    opens_with_it = len(chat) > 1 and chat[0] == ("user", placeholder) and chat[1][0] == "assistant"
    return chat[1:] if placeholder and opens_with_it else chat


def _without_context_head(
    chat: list[tuple[str, str]], markers: Sequence[str]
) -> list[tuple[str, str]]:
    """A chat whose first message is the system text made a user message ("claude" post-
    processing: main prompt, World Info, card, then the chat's start marker, all merged): the
    paragraphs up to the last start marker are context; any after it, the chat's first
    message."""
    if not chat or chat[0][0] != "user":
        return chat
    parts = chat[0][1].split("\n\n")
    marked = [i for i, part in enumerate(parts) if _is_nudge(part, markers)]
    if not marked:
        return chat
    rest = "\n\n".join(parts[marked[-1] + 1 :]).strip()
    return [("user", rest), *chat[1:]] if rest else chat[1:]


def _kind(
    nudges: Sequence[str], as_system: bool, patterns: tuple[Sequence[str], Sequence[str]]
) -> Nudge | None:
    """What the nudges ask: a continue, an impersonation, something else (a system message
    after the chat: not a turn), or nothing."""
    continue_patterns, impersonate_patterns = patterns
    if any(_is_nudge(n, continue_patterns) for n in nudges):
        return "continue"
    if any(_is_nudge(n, impersonate_patterns) for n in nudges):
        return "impersonate"
    return "other" if as_system else None


def read_request(
    raw: Sequence[tuple[str, str]],
    continue_patterns: Sequence[str] = CONTINUE_PATTERNS,
    impersonate_patterns: Sequence[str] = IMPERSONATE_PATTERNS,
    group_patterns: Sequence[str] = GROUP_PATTERNS,
    placeholder: str | None = PLACEHOLDER,
    members_patterns: Sequence[str] = MEMBERS_PATTERNS,
    start_patterns: Sequence[str] = START_PATTERNS,
) -> Request:
    """(role, content) pairs as sent, system messages included, read as the plain shape
    whatever SillyTavern's Prompt Post-Processing did to them (``src/prompt-converters.js``):

    - the nudges are the last messages, system ones; post-processed ("semi", "strict",
      "claude") they are user messages of their own, or the last paragraphs of the last user
      message they were merged into — known nudges are split off;
    - "strict" puts ``placeholder`` ("Let's get started.") as a user message before a chat that
      opens with the character's greeting: dropped;
    - "claude" makes the leading system text one user message ending with the chat's start
      marker (``start_patterns``, ``members_patterns``): context, dropped;
    - merged ("merge" and on) a group chat's consecutive member replies are one assistant
      message, "Mira: …\\n\\nKai: …": split again at each member's name.
    """
    chat = [(role, content) for role, content in raw if role in ("user", "assistant")]
    known = (*continue_patterns, *impersonate_patterns, *group_patterns)
    nudges, as_system, chat = _trailing_nudges(raw, chat, known)
    chat = _without_placeholder(chat, placeholder)
    chat = _without_context_head(chat, (*start_patterns, *members_patterns))
    speaker = next(filter(None, (group_speaker(n, group_patterns) for n in nudges)), None)
    if speaker is not None:
        chat = _split_members(chat, {speaker} | group_members(raw, members_patterns))
    messages = [AppMessage(role, as_shown(content)) for role, content in chat]  # type: ignore[arg-type]
    if not messages:
        return Request(messages, None, speaker)
    nudge = _kind(nudges, as_system, (continue_patterns, impersonate_patterns))
    if speaker is not None and nudge not in ("continue", "impersonate"):
        nudge = "group"
    return Request(messages, nudge, speaker)


# -- which chat --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    session_id: uuid.UUID
    shared: int  # messages in common
    head: int  # stored messages before the request's first one (dropped by the app)
    view: list[AppMessage] = field(default_factory=list)  # the request without injected text
    new: tuple[int, ...] = ()  # the view's messages the stored chat does not have
    injected: tuple[str, ...] = ()  # the text taken out as injected


def match(
    candidates: dict[uuid.UUID, list[AppMessage]], request: Sequence[AppMessage]
) -> Match | None:
    """The stored chat the request is a view of: the most messages in common, at least one of
    them the player's; ties go to the first candidate (the caller orders them, latest first).
    Each chat is compared with the request read against it (:func:`unmerged`)."""
    best: Match | None = None
    for session_id, stored in candidates.items():
        view, new, injected = unmerged(stored, request)
        if len(stored) <= len(view) and view[: len(stored)] == stored:
            # the common case, a chat that goes on: the alignment is the whole stored chat
            shared, head = len(stored), 0
            users = sum(1 for m in stored if m.role == "user" and m.content)
        else:
            blocks = SequenceMatcher(None, view, stored, autojunk=False).get_matching_blocks()
            blocks = [b for b in blocks if b.size]
            shared = sum(b.size for b in blocks)
            users = sum(
                1
                for b in blocks
                for m in view[b.a : b.a + b.size]
                if m.role == "user" and m.content
            )
            head = max(0, blocks[0].b - blocks[0].a) if blocks else 0
        if not users or (best is not None and shared <= best.shared):
            continue
        best = Match(session_id, shared, head, view, new, injected)
    return best


# -- what the request means --------------------------------------------------------------------


@dataclass
class Plan:
    """What to do to a stored chat so that it is what the app shows, then what to generate.

    ``fork``: continue in a copy of the chat's first ``keep`` turns (the chat stays as it is);
    otherwise turns from ``keep`` on are changed: ``edit`` (one turn changed in place) or cut
    (every turn from ``keep`` dropped); then ``record`` is appended as it is (no chat call).
    ``generate``: ``turn`` (a reply to the last user message, a new turn), ``reply`` (another
    reply after the last one, a group chat's next member: a turn without a user message),
    ``regenerate``
    (a new reply to the last turn, the old one kept), ``continue`` (the last reply extended),
    ``impersonate`` (a reply that is not a turn: nothing recorded) or None.
    """

    keep: int
    fork: bool = False
    edit: Turn | None = None
    record: list[Turn] = field(default_factory=list)
    generate: Literal["turn", "reply", "regenerate", "continue", "impersonate"] | None = None

    @property
    def changes(self) -> bool:
        return self.fork or self.edit is not None or bool(self.record)


def plan(stored: Sequence[AppMessage], shown: Sequence[AppMessage], nudge: Nudge | None) -> Plan:
    """``stored``: the chat as loreweave has it; ``shown``: as the app shows it now (the
    request's messages after the stored head the app dropped)."""
    old, new = list(stored), list(shown)
    if nudge == "group":  # a group chat: the next member speaks
        if old and old[-1].role == "assistant" and new == old[:-1]:
            return Plan(keep=len(to_turns(old)), generate="regenerate")  # a swipe of that reply
        if new and new[-1].role == "assistant":  # after another member: a reply of its own
            step = _sync(to_turns(old), to_turns(new))
            step.generate = "reply"
            return step
        nudge = None  # after the player's message: that turn's reply
    if nudge in ("continue", "impersonate", "other") and new and new[-1].role == "assistant":
        step = plan(old, new, None)  # first the chat as shown, then the nudge
        step.generate = "continue" if nudge == "continue" else "impersonate"
        return step
    ends_with_user = bool(new) and new[-1].role == "user"
    if ends_with_user and old and old[-1].role == "assistant" and new == old[:-1]:
        return Plan(keep=len(to_turns(old)), generate="regenerate")
    if not ends_with_user:
        return _sync(to_turns(old), to_turns(new))
    # the chat as shown, then the new user message's turn generated (a user message before it
    # without a reply stays a turn without a reply)
    step = _sync(to_turns(old), to_turns(new)[:-1])
    step.generate = "turn"
    return step


def _common(old: Sequence[Turn], new: Sequence[Turn]) -> int:
    keep = 0
    while keep < min(len(old), len(new)) and old[keep] == new[keep]:
        keep += 1
    return keep


def _sync(old: list[Turn], new: list[Turn]) -> Plan:
    """The plan that makes ``old`` into ``new``: appended turns are recorded; one turn changed
    with the rest as it was is an edit; turns deleted with the rest as it was are cut and the
    rest recorded again; a change of the last exchange replaces it.  Anything else changes a
    turn and what followed it: a new chat copied from the common prefix, so a turn another
    request confirmed is never cut."""
    keep = _common(old, new)
    if keep == len(old):
        return Plan(keep=keep, record=new[keep:])
    if keep < len(new) and len(new) >= len(old) and old[keep + 1 :] == new[keep + 1 : len(old)]:
        return Plan(keep=keep, edit=new[keep], record=new[len(old) :])
    deleted = any(
        new[keep : keep + len(old) - rest] == old[rest:] for rest in range(keep + 1, len(old))
    )
    if deleted or keep >= len(old) - 1:
        return Plan(keep=keep, record=new[keep:])
    return Plan(keep=keep, fork=True, record=new[keep:])


def written_for(raw: Sequence[tuple[str, str]], patterns: Sequence[str]) -> str | None:
    """Whom a 1:1 request is written for: the ``name`` a pattern finds in its system messages
    (SillyTavern's main prompt "Write {{char}}'s next reply…", the macro substituted)."""
    for role, content in raw:
        if role != "system":
            continue
        for pattern in patterns:
            found = re.search(pattern, content)
            if found is not None and found.group("name").strip():
                return found.group("name").strip()
    return None

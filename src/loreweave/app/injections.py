"""Text injected into an app's chat (DESIGN §1.5).

An app puts text into the chat history at a depth (World Info @depth, the Author's Note,
extensions' prompts), in any role: SillyTavern d messages from the chat's end
(``populationInjectionPrompts``), where post-processing may merge it into a neighbouring
message of its role as a paragraph.  It is context, never a turn.  Read against the stored chat
a request is a view of, injected text is: a message between two messages the chat has (a chat
only grows at its end); paragraphs around a stored message's text; and, among the messages the
chat does not have yet, text the caller knows as injected (:func:`without_known`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Sequence
from difflib import SequenceMatcher

from loreweave.app.shown import AppMessage, paragraphs

INJECTED_KEPT = 200  # texts found injected, kept per world
INJECTED_MIN_CHARS = 16


def _merged_at(stored: AppMessage, message: AppMessage) -> int | None:
    """Where ``stored``'s paragraphs start among ``message``'s, when ``message`` is ``stored``
    with paragraphs merged in before or after it (else None)."""
    if stored.role != message.role:
        return None
    inner, outer = paragraphs(stored.content), paragraphs(message.content)
    if not 0 < len(inner) < len(outer):
        return None
    return next(
        (at for at in range(len(outer) - len(inner) + 1) if outer[at : at + len(inner)] == inner),
        None,
    )


def _next_merged(rest: Sequence[AppMessage], role: str, parts: list[str]) -> int | None:
    """The next of ``rest`` in ``role`` whose paragraphs ``parts`` opens with."""
    for at, message in enumerate(rest):
        inner = paragraphs(message.content)
        if message.role == role and inner and parts[: len(inner)] == inner:
            return at
    return None


def unmerged(
    stored: Sequence[AppMessage], request: Sequence[AppMessage]
) -> tuple[list[AppMessage], tuple[int, ...], tuple[str, ...]]:
    """The request as a view of ``stored``, without the text injected between and into the
    messages the chat has; which of its messages the chat does not have; the injected texts."""
    if len(stored) <= len(request) and request[: len(stored)] == stored:  # nothing in between
        return list(request), tuple(range(len(stored), len(request))), ()
    ops = SequenceMatcher(None, stored, request, autojunk=False).get_opcodes()
    last = max((j2 for tag, _, _, _, j2 in ops if tag == "equal"), default=0)
    view: list[AppMessage] = []
    new: list[int] = []
    injected: list[str] = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            view += request[j1:j2]
        elif tag == "insert" and j2 <= last:  # between messages the chat has
            injected += [m.content for m in request[j1:j2]]
        elif tag != "delete":
            found, dropped = _matched(stored[i1:i2], request[j1:j2], inside=j2 <= last)
            injected += dropped
            for message, known in found:
                if not known:
                    new.append(len(view))
                view.append(message)
    return view, tuple(new), tuple(injected)


def _matched(
    stored: Sequence[AppMessage], request: Sequence[AppMessage], *, inside: bool
) -> tuple[list[tuple[AppMessage, bool]], list[str]]:
    """A changed stretch of the request (``inside`` the stored chat, or at its end), each
    message with whether the chat has it, and the injected texts: a message that is a stored
    one merged with other text is that stored message (text before it injected; after it at
    the chat's end, the new messages merged into it: two user messages in a row are one
    message); inside, when every stored message is found so, the others are injected."""
    found: list[tuple[AppMessage, bool]] = []
    injected: list[str] = []
    rest = list(stored)
    for message in request:
        at, start = next(
            ((i, s) for i, old in enumerate(rest) if (s := _merged_at(old, message)) is not None),
            (None, None),
        )
        if at is None or start is None:
            found.append((message, False))
            continue
        found.append((rest[at], True))
        outer = paragraphs(message.content)
        injected += outer[:start]
        after = outer[start + len(paragraphs(rest[at].content)) :]
        rest = rest[at + 1 :]
        while (more := _next_merged(rest, message.role, after)) is not None:
            after = after[len(paragraphs(rest[more].content)) :]  # messages in a row, merged
            found.append((rest[more], True))
            rest = rest[more + 1 :]  # those skipped: deleted (what put these two in a row)
        if inside:
            injected += after
        elif after:
            found.append((AppMessage(message.role, "\n\n".join(after)), False))
    if inside and not rest and len(request) > len(stored):
        injected += [m.content for m, known in found if not known]
        return [pair for pair in found if pair[1]], injected
    return found, injected


def without_known(
    messages: Sequence[AppMessage], new: Sequence[int], injected: Collection[str]
) -> list[AppMessage]:
    """``messages`` without the paragraphs of the ``new`` ones (those the stored chat does not
    have) that are ``injected`` text (a message left empty goes)."""
    kept: list[AppMessage] = []
    for index, message in enumerate(messages):
        if index in new and injected:
            parts = [p for p in message.content.split("\n\n") if p.strip() not in injected]
            if not parts:
                continue
            message = AppMessage(message.role, "\n\n".join(parts).strip())
        kept.append(message)
    return kept


def opening(messages: Sequence[AppMessage]) -> tuple[list[AppMessage], list[str]]:
    """A new chat's first exchange — the greeting, the player's first message — without what
    came before the greeting (text put in at a depth beyond a chat that short lands at its top,
    or after "claude" post-processing's start marker); and the texts taken out."""
    first = next((i for i, m in enumerate(messages) if m.role == "assistant"), 0)
    roles = [m.role for m in messages]
    if first and roles[first:] == ["assistant", "user"] and set(roles[:first]) == {"user"}:
        return list(messages[first:]), [m.content for m in messages[:first]]
    return list(messages), []


def candidate_texts(messages: Sequence[AppMessage], new: Sequence[int]) -> set[str]:
    """What of the ``new`` messages might be injected text: each one and its paragraphs."""
    return {part for i in new for part in (messages[i].content, *paragraphs(messages[i].content))}


class Injected:
    """The texts found injected into each world's chats, the latest :data:`INJECTED_KEPT` a
    world (in this process: a cache, each process learns them from its requests).  A text
    shorter than :data:`INJECTED_MIN_CHARS` is not kept: a player's "Yes." taken out once by
    an odd alignment must not take out every later "Yes."."""

    def __init__(self) -> None:
        self._texts: dict[uuid.UUID, dict[str, None]] = {}
        self._lock = threading.Lock()

    def learn(self, world_id: uuid.UUID, texts: Sequence[str]) -> None:
        if not texts:
            return
        with self._lock:
            kept = self._texts.setdefault(world_id, {})
            for text in (t for t in texts if len(t) >= INJECTED_MIN_CHARS):
                kept.pop(text, None)
                kept[text] = None
            for text in list(kept)[: max(0, len(kept) - INJECTED_KEPT)]:
                del kept[text]

    def known(self, world_id: uuid.UUID) -> set[str]:
        with self._lock:
            return set(self._texts.get(world_id, ()))

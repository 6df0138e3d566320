"""The proxy's plan for a request (``follow.plan``), over every pair of a stored chat and a chat
as an app shows it (small alphabets, so the cases meet): carried out, the chat it leads to is
what the app shows; and no request cuts turns another request confirmed — unless it changes
only the last exchange, or edits or deletes with the rest of the chat as it was, the stored chat
stays whole and the request goes on in a fork."""

from __future__ import annotations

import uuid
from difflib import SequenceMatcher

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loreweave.app.follow import (
    AppMessage,
    Match,
    Plan,
    Turn,
    match,
    plan,
    to_messages,
    to_turns,
)
from loreweave.app.injections import unmerged

from .sizes import examples

turns = st.lists(
    st.tuples(st.sampled_from(["", "a", "b"]), st.sampled_from(["", "x", "y"])).filter(
        lambda t: t != ("", "")
    ),
    max_size=6,
)


def carried_out(step: Plan, old: list[Turn]) -> tuple[list[Turn], list[Turn]]:
    """(the chat the request goes on in, the stored chat afterwards)."""
    if step.fork:
        return old[: step.keep] + step.record, old
    if step.edit is not None:
        result = [*old[: step.keep], step.edit, *old[step.keep + 1 :], *step.record]
        return result, result
    result = old[: step.keep] + step.record
    return result, result


def kept_what_was_confirmed(step: Plan, old: list[Turn], after: list[Turn]) -> bool:
    if step.fork or after[: len(old)] == old:
        return True
    if step.edit is not None:
        return after[step.keep + 1 : len(old)] == old[step.keep + 1 :]
    if step.keep >= len(old) - 1:  # the last exchange replaced
        return True
    rest = after[step.keep :]  # a deletion: what followed the deleted turns is all there
    return any(rest[: len(old) - j] == old[j:] for j in range(step.keep + 1, len(old)))


@pytest.mark.slow
@settings(max_examples=examples(ci=300, full=3000), deadline=None)
@given(stored=turns, shown=turns, new_message=st.sampled_from(["", "a", "c"]))
def test_a_plan_leads_to_the_chat_shown_and_cuts_nothing_confirmed(
    stored: list[Turn], shown: list[Turn], new_message: str
) -> None:
    old = to_turns(to_messages(stored))
    messages = to_messages(shown)
    if new_message:
        messages = [*messages, AppMessage("user", new_message)]
    if not messages:
        return
    step = plan(to_messages(old), messages, None)
    if step.generate == "regenerate":
        assert messages == to_messages(old)[:-1]
        return
    chat, after = carried_out(step, old)
    expected = to_turns(messages)[:-1] if step.generate == "turn" else to_turns(messages)
    assert chat == expected
    assert kept_what_was_confirmed(step, old, after), (old, messages, step)


def _aligned(
    candidates: dict[uuid.UUID, list[AppMessage]], request: list[AppMessage]
) -> Match | None:
    """``match`` as it was before its shortcut: every candidate aligned by SequenceMatcher
    (with the request read against it: what was injected into it left out)."""
    best: Match | None = None
    for session_id, stored in candidates.items():
        view = unmerged(stored, request)[0]
        blocks = SequenceMatcher(None, view, stored, autojunk=False).get_matching_blocks()
        blocks = [b for b in blocks if b.size]
        shared = sum(b.size for b in blocks)
        users = sum(
            1 for b in blocks for m in view[b.a : b.a + b.size] if m.role == "user" and m.content
        )
        if not users or (best is not None and shared <= best.shared):
            continue
        best = Match(session_id, shared, max(0, blocks[0].b - blocks[0].a))
    return best


@pytest.mark.slow
@settings(max_examples=examples(ci=200, full=2000), deadline=None)
@given(chats=st.lists(turns, min_size=1, max_size=3), shown=turns, grow=st.booleans())
def test_the_shortcut_for_a_chat_that_goes_on_finds_what_the_alignment_finds(
    chats: list[list[Turn]], shown: list[Turn], grow: bool
) -> None:
    candidates = {uuid.UUID(int=i + 1): to_messages(chat) for i, chat in enumerate(chats)}
    request = to_messages(shown)
    if grow:  # the first chat, gone on: the shortcut's case
        request = [*to_messages(chats[0]), *request]
    found, aligned = match(candidates, request), _aligned(candidates, request)
    assert (found and (found.session_id, found.shared, found.head)) == (
        aligned and (aligned.session_id, aligned.shared, aligned.head)
    )

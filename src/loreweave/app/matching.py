"""Which stored chat a proxied request continues, and what it means for that chat (DESIGN §1.5):
the proxy's *match* step, read in the caller's unit of work, nothing written.

The request's first and last user messages find the caller's candidate chats in the world;
:func:`loreweave.app.follow.match` picks the one the request is a view of, text the app injected
is taken out (:mod:`loreweave.app.injections`), and :func:`loreweave.app.follow.plan` says what
makes the stored chat what the app shows, then what to generate.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from loreweave.app.follow import Match, Plan, Request, match, plan, to_messages, to_turns
from loreweave.app.injections import Injected, candidate_texts, opening, without_known
from loreweave.app.shown import AppMessage, as_shown, paragraphs, spoken_by
from loreweave.db.models import ChatSession, ChatTurn, LoreEntry
from loreweave.db.uow import UnitOfWork

MAX_CANDIDATES = 20  # stored chats compared with a request (the latest first)
ENDS = 4  # the user messages at each end of a request that find its candidate chats

Chats = dict[uuid.UUID, list[tuple[str, str]]]  # session → its turns as shown, in order


def caller_of(key: str = "", user: str = "", chat: str = "") -> str | None:
    """Who sends a request, as the proxy scopes chats: the API key's fingerprint, the OpenAI
    ``user`` field, the ``X-Loreweave-Chat`` header; None when none is given (the one shared
    pool, as a single local app has it)."""
    if not (key or user or chat):
        return None
    named = "\x00".join((key, user, chat)).encode()
    return hashlib.sha256(named).hexdigest()[:32]


@dataclass(frozen=True)
class Matched:
    """A request read against the caller's stored chats of a world."""

    world_id: uuid.UUID
    caller: str | None
    request: Request
    found: Match | None  # the stored chat the request is a view of (None: a new chat)
    stored: list[AppMessage]  # that chat as stored
    shown: list[AppMessage]  # the chat as the app shows it now
    step: Plan
    session: uuid.UUID | None  # the chat to go on in (None: a new one), once applied its own

    @property
    def plain(self) -> bool:
        """A chat that goes on by the turn to generate, nothing else changed: there is nothing
        to apply before the upstream call."""
        step = self.step
        kept = step.keep >= len(to_turns(self.stored))
        going_on = step.generate in ("turn", "reply")
        return self.found is not None and not step.changes and kept and going_on

    @property
    def last_reply(self) -> str:
        """The reply a regenerate replaces, or a continue extends, as stored."""
        shown, speaker = self.shown, self.request.speaker
        last_reply = shown[-1].content if shown and shown[-1].role == "assistant" else ""
        if self.step.generate == "regenerate":
            last_reply = self.stored[-1].content
        if speaker is not None:  # as stored: without the "Name: " the app shows before it
            last_reply = spoken_by(last_reply, speaker)[1]
        return last_reply


class StoredChats:
    """The match step; it remembers the text found injected into each world's chats (in this
    process), to know it again among a request's new messages."""

    def __init__(self) -> None:
        self._injected = Injected()

    def match(
        self,
        uow: UnitOfWork,
        world_id: uuid.UUID,
        caller: str | None,
        request: Request,
        candidates: Chats,
    ) -> Matched:
        """The request read against the caller's chats of the world (:meth:`candidates`)."""
        found = match({s: to_messages(t) for s, t in candidates.items()}, request.messages)
        stored, view = self._view(uow, world_id, candidates, found, request.messages)
        shown = stored[: found.head if found else 0] + view
        step = plan(stored, shown, request.nudge)
        session = None if found is None else found.session_id
        return Matched(world_id, caller, request, found, stored, shown, step, session)

    def follows(
        self,
        uow: UnitOfWork,
        messages: Sequence[AppMessage],
        caller: str | None,
        worlds: Sequence[uuid.UUID],
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(world, session) of the chat an app shows (its messages as shown, a group chat's
        replies "Name: text"): the stored chat of ``caller`` that a request with these
        messages would go on in (none: a new chat), the one sharing most among ``worlds``."""
        best: tuple[int, uuid.UUID, uuid.UUID] | None = None
        for world_id in worlds:
            candidates = self.candidates(uow, world_id, caller, messages)
            found = match({s: to_messages(t) for s, t in candidates.items()}, messages)
            if found is not None and (best is None or found.shared > best[0]):
                best = (found.shared, world_id, found.session_id)
        return None if best is None else (best[1], best[2])

    @staticmethod
    def candidates(
        uow: UnitOfWork, world_id: uuid.UUID, caller: str | None, messages: Sequence[AppMessage]
    ) -> Chats:
        """The caller's chats in the world holding one of the request's first or last user
        messages (a chat it goes on, branches from or is a window of holds one), latest first."""
        users = [m.content for m in messages if m.role == "user" and m.content]
        ends = {*users[:ENDS], *users[-ENDS:]}
        # a paragraph may be the stored message, the rest text the app merged into it
        said = sorted(ends | {part for text in ends for part in paragraphs(text)})
        if not said:
            return {}
        mine = ChatSession.caller.is_(None) if caller is None else ChatSession.caller == caller
        sessions = list(
            uow.session.scalars(
                select(ChatTurn.session_id)
                .join(ChatSession, ChatSession.id == ChatTurn.session_id)
                .where(
                    ChatSession.world_id == world_id,
                    mine,
                    ChatTurn.user_message.in_(said),
                    ChatSession.archived_at.is_(None),  # set aside by a person
                )
                .group_by(ChatTurn.session_id)
                .order_by(func.max(ChatTurn.created_at).desc())
                .limit(MAX_CANDIDATES)
            )
        )
        turns = uow.session.execute(
            select(
                ChatTurn.session_id,
                ChatTurn.user_message,
                ChatTurn.assistant_message,
                ChatTurn.speaker,
            )
            .where(ChatTurn.session_id.in_(sessions))
            .order_by(ChatTurn.session_id, ChatTurn.turn_index)
        ).all()
        chats: Chats = {s: [] for s in sessions}
        for session_id, user, reply, speaker in turns:
            shown = as_shown(reply)
            chats[session_id].append((as_shown(user), f"{speaker}: {shown}" if speaker else shown))
        return chats

    def _view(
        self,
        uow: UnitOfWork,
        world_id: uuid.UUID,
        candidates: Chats,
        found: Match | None,
        request: list[AppMessage],
    ) -> tuple[list[AppMessage], list[AppMessage]]:
        """The stored chat the request is a view of (none: a new chat), and the request's
        messages without the text the app injected into them (:func:`follow.unmerged`); among
        the messages the chat does not have, injected text is text the world's lore holds (a
        World Info entry placed at a depth, its lorebook imported into loreweave) or text found
        injected into the world's chats before (an entry fires again and again)."""
        if found is None:
            view, injected = opening(request)
            self._injected.learn(world_id, injected)
            stored, new = [], tuple(range(len(view)))
        else:
            stored, view, new = to_messages(candidates[found.session_id]), found.view, found.new
            self._injected.learn(world_id, found.injected)
        texts = candidate_texts(view, new)
        if not texts:
            return stored, view
        lore = set(
            uow.session.scalars(
                select(LoreEntry.content).where(
                    LoreEntry.world_id == world_id, LoreEntry.content.in_(texts)
                )
            )
        )
        return stored, without_known(view, new, lore | self._injected.known(world_id))

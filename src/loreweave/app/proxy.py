"""The OpenAI-compatible proxy's work, apart from the wire format (``api/routes/openai.py``).

A request names a world by its model (``loreweave/<world>`` or ``loreweave/<world>/<upstream
model>``) and carries only messages.  :meth:`ProxyService.prepare` finds the chat they continue
and makes the stored chat what the app shows (``follow.py`` plans it; the transcript's operations
carry it out, so the memory follows), then builds the upstream request with the lore block put
in.  :meth:`ProxyService.answer` (plain) and :meth:`ProxyService.stream` forward it through the
chat provider and its one resilience layer, and record the complete reply
(:meth:`ProxyService.finish`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select

from loreweave.app.chat import ChatService, Names, lore_block
from loreweave.app.follow import (
    Match,
    Plan,
    match,
    plan,
    read_request,
    to_messages,
    to_turns,
    written_for,
)
from loreweave.app.injections import Injected, candidate_texts, opening, without_known
from loreweave.app.lookup import find_world
from loreweave.app.shown import AppMessage, as_shown, paragraphs
from loreweave.config import LLMConfig, ProxyConfig
from loreweave.db import request_keys
from loreweave.db.engine import Database
from loreweave.db.models import ChatSession, ChatTurn, LoreEntry, World, utcnow
from loreweave.errors import InvalidInput, NotFound
from loreweave.llm.types import ChatRequest, ChatResponse, Message, stream_text
from loreweave.memory.transcript import TranscriptService
from loreweave.validation import scrub
from loreweave.vectors.retrieval import RetrievedEntry, Retriever, Trigger

log = logging.getLogger("loreweave.app.proxy")

MODEL_PREFIX = "loreweave/"
MAX_CANDIDATES = 20  # stored chats compared with a request (the latest first)
ENDS = 4  # the user messages at each end of a request that find its candidate chats


def caller_of(key: str = "", user: str = "", chat: str = "") -> str | None:
    """Who sends a request, as the proxy scopes chats: the API key's fingerprint, the OpenAI
    ``user`` field, the ``X-Loreweave-Chat`` header; None when none is given (the one shared
    pool, as a single local app has it)."""
    if not (key or user or chat):
        return None
    named = "\x00".join((key, user, chat)).encode()
    return hashlib.sha256(named).hexdigest()[:32]


class Stopwatch:
    """Where a request's time goes, phase by phase (a phase timed twice adds up): sent back as
    the standard ``Server-Timing`` header, so a browser's network panel or a benchmark reads
    it."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        """The time since the last lap (or the start) was spent on ``phase``."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._last
        self._last = now

    def header(self) -> str:
        return ", ".join(f"{name};dur={seconds * 1e3:.2f}" for name, seconds in self.phases.items())


@dataclass(frozen=True)
class Target:
    world: World
    upstream_model: str


@dataclass
class Prepared:
    """A request made ready: the chat (now as the app shows it), what to generate, the
    upstream request and the entries the lore block holds."""

    session_id: uuid.UUID
    plan: Plan
    request: ChatRequest
    used: list[RetrievedEntry]
    lore: str  # the lore block put in
    last_reply: str  # the reply a regenerate replaces, or a continue extends
    clock: Stopwatch  # where the time went so far
    key: str | None = None  # the client's Idempotency-Key: the turn recorded under it
    recorded: str | None = None  # the same request again: this reply, nothing called or recorded
    speaker: str | None = None  # a group chat's member who speaks this reply
    held: str | None = None  # the scope of the key this request holds until it is recorded
    message: str = ""  # the player's message a new turn answers
    # the last turn before the one this request makes or replaces (None: none): its changes
    # are what the app may show now (``X-Loreweave-Changes``)
    previous_turn: int | None = None


# what SillyTavern calls each kind of generation (World Info's ``triggers``)
TRIGGERS: dict[str, Trigger] = {
    "turn": "normal",
    "reply": "normal",
    "regenerate": "regenerate",
    "continue": "continue",
    "impersonate": "impersonate",
}
_SPOKEN = re.compile(r"^([^:\n]{1,100}): (.*)$", re.S)


def spoken_by(content: str, speaker: str | None) -> tuple[str | None, str]:
    """A reply as a group chat shows it, "Name: text", split into (name, text).  ``speaker``:
    None — not a group chat, the text as it is; "" — any name; a name — only that one."""
    if speaker is None or not content:
        return None, content
    found = _SPOKEN.match(content)
    if found is None or (speaker and found.group(1) != speaker):
        return None, content
    return found.group(1).strip(), found.group(2).strip()


class ProxyService:
    def __init__(
        self,
        database: Database,
        chat: ChatService,
        transcript: TranscriptService,
        retriever: Retriever,
        llm_config: LLMConfig,
        config: ProxyConfig,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.chat = chat
        self.transcript = transcript
        self.retriever = retriever
        self.llm_config = llm_config
        self.config = config
        self.notify = notify
        self._injected = Injected()
        for pattern in (
            *config.continue_patterns,
            *config.impersonate_patterns,
            *config.start_patterns,
        ):
            re.compile(pattern)  # a bad pattern fails at start-up, not on a request

    # -- models --------------------------------------------------------------------------------
    def models(self) -> list[World]:
        with self.database.uow(read_only=True) as uow:
            return list(uow.worlds.list())

    def target(self, model: str) -> Target:
        """``loreweave/<world name or id>[/<upstream model>]``."""
        if not model.startswith(MODEL_PREFIX) or model == MODEL_PREFIX:
            raise InvalidInput(
                f"the model must be '{MODEL_PREFIX}<world name or id>', optionally followed by "
                "'/<upstream model>'; GET /v1/models lists them"
            )
        rest = model[len(MODEL_PREFIX) :]
        with self.database.uow(read_only=True) as uow:
            try:
                return Target(find_world(uow, rest), self._upstream(None))
            except NotFound:
                if "/" not in rest:
                    raise
            world, upstream = rest.split("/", 1)
            return Target(find_world(uow, world), self._upstream(upstream or None))

    def _upstream(self, name: str | None) -> str:
        return name or self.config.upstream_model or self.llm_config.chat_model

    # -- a request -----------------------------------------------------------------------------
    def prepare(
        self,
        target: Target,
        raw: Sequence[tuple[str, str]],
        *,
        caller: str | None = None,
        key: str | None = None,
        **options: Any,
    ) -> Prepared:
        """A request made ready (:meth:`_prepare`).  With a ``key``, one request at a time per
        key and caller: the same request sent twice at once waits for the first to be recorded,
        then reads as that request again (its recorded reply; no second chat or session)."""
        if key is None:
            return self._prepare(target, raw, caller=caller, **options)
        scope = f"proxy:{target.world.id}:{caller or ''}"
        request_keys.hold(self.database, scope, key, lambda: None)
        try:
            prepared = self._prepare(target, raw, caller=caller, key=key, **options)
        except BaseException:
            request_keys.release(self.database, scope, key)
            raise
        if prepared.recorded is not None:  # answered from the record: nothing to hold for
            request_keys.release(self.database, scope, key)
            return prepared
        return replace(prepared, held=scope)

    def _release(self, prepared: Prepared) -> None:
        if prepared.held is not None and prepared.key is not None:
            request_keys.release(self.database, prepared.held, prepared.key)

    def _prepare(
        self,
        target: Target,
        raw: Sequence[tuple[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        passthrough: dict[str, Any] | None = None,
        caller: str | None = None,
        clock: Stopwatch | None = None,
        names: Names | None = None,
        key: str | None = None,
    ) -> Prepared:
        """``caller`` (:func:`caller_of`): the request is matched only against its chats;
        ``clock`` times the phases (``stored``: reading the caller's chats; ``match``: finding
        and planning; ``follow``: changing the chat; ``retrieve``: the lore block); ``names``:
        who ``{{user}}`` and ``{{char}}`` are (default: the settings'); ``key``: the request's
        ``Idempotency-Key`` — sent again for the turn recorded under it (a client retrying after
        a cut connection), the recorded reply is the answer (a regenerate without it)."""
        clock = clock or Stopwatch()
        request = read_request(
            raw,
            self.config.continue_patterns,
            self.config.impersonate_patterns,
            self.config.group_patterns,
            self.config.placeholder,
            self.config.members_patterns,
            self.config.start_patterns,
        )
        speaker = request.speaker  # a group chat's member who speaks next
        if not request.messages:
            raise InvalidInput("the request has no user or assistant message")
        clock.lap("match")
        candidates = self._candidates(target.world.id, caller, request.messages)
        clock.lap("stored")
        found = match({s: to_messages(t) for s, t in candidates.items()}, request.messages)
        stored, view = self._view(target.world.id, candidates, found, request.messages)
        if found is None:
            session_id = self._new_session(target.world.id, caller, view)
        else:
            session_id = found.session_id
        shown = stored[: found.head if found else 0] + view
        step = plan(stored, shown, request.nudge)
        clock.lap("match")
        if (
            key is not None
            and found is not None
            and step.generate == "regenerate"
            and self._last_key(session_id) == key
        ):
            recorded = spoken_by(stored[-1].content, speaker)[1]
            upstream = ChatRequest((), target.upstream_model, self.llm_config.temperature_chat)
            previous = self._previous_turn(session_id, "regenerate")
            return Prepared(
                session_id,
                step,
                upstream,
                [],
                "",
                recorded,
                clock,
                key,
                recorded,
                previous_turn=previous,
            )
        analyse = found is not None or self.config.analyse_unmatched_history
        session_id = self._apply(session_id, stored, step, analyse=analyse, group=bool(speaker))
        self._matched(session_id)
        clock.lap("follow")
        message, history = self._query(shown, step)
        # whose view the lore is: the member who speaks next, or whom the prompt is written for
        observer = speaker or written_for(raw, self.config.observer_patterns)
        used = self.retriever.retrieve(
            session_id,
            message,
            token_budget=self.config.token_budget,
            history=history,
            trigger=TRIGGERS.get(step.generate or "", "normal"),
            observer=observer,
            inferred=True,
        ).entries
        lore = lore_block(used, names or self.chat.names)
        upstream = ChatRequest(
            tuple(self._with_lore(raw, lore)),
            target.upstream_model,
            self.llm_config.temperature_chat if temperature is None else temperature,
            prompt="chat",
            max_tokens=max_tokens,
            passthrough=passthrough,
        )
        last_reply = shown[-1].content if shown and shown[-1].role == "assistant" else ""
        if step.generate == "regenerate":
            last_reply = stored[-1].content
        if speaker is not None:  # as stored: without the "Name: " the app shows before it
            last_reply = spoken_by(last_reply, speaker)[1]
        clock.lap("retrieve")
        said = message if step.generate == "turn" else ""
        return Prepared(
            session_id,
            step,
            upstream,
            used,
            lore,
            last_reply,
            clock,
            key,
            speaker=speaker,
            message=said,
            previous_turn=self._previous_turn(session_id, step.generate),
        )

    def follows(
        self, messages: Sequence[AppMessage], caller: str | None, worlds: Sequence[uuid.UUID]
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(world, session) of the chat an app shows (its messages as shown, a group chat's
        replies "Name: text"): the stored chat of ``caller`` that a request with these
        messages would go on in (none: a new chat), the one sharing most among ``worlds``."""
        best: tuple[int, uuid.UUID, uuid.UUID] | None = None
        for world_id in worlds:
            candidates = self._candidates(world_id, caller, messages)
            found = match({s: to_messages(t) for s, t in candidates.items()}, messages)
            if found is not None and (best is None or found.shared > best[0]):
                best = (found.shared, world_id, found.session_id)
        return None if best is None else (best[1], best[2])

    # -- forwarding ----------------------------------------------------------------------------
    def answer(self, prepared: Prepared) -> ChatResponse:
        """Forward the request and record the whole answer (or give back the one recorded under
        the request's key: nothing called, nothing recorded)."""
        try:
            if prepared.recorded is not None:
                response = ChatResponse(prepared.recorded, prepared.request.model)
            else:
                response = self.chat.chat_model.complete(prepared.request)
                response = replace(response, text=scrub(response.text))
            self.finish(prepared, response.text)
        finally:
            self._release(prepared)
        return response

    def stream(self, prepared: Prepared) -> Iterator[str]:
        """Forward the request streamed: the pieces as the provider sends them, the reply
        recorded once it is complete (an error before then records nothing)."""
        try:
            if prepared.recorded is not None:
                pieces: Iterator[str] = iter([prepared.recorded])
            else:
                pieces = stream_text(self.chat.chat_model, prepared.request)
            parts = []
            for piece in pieces:
                parts.append(scrub(piece))  # a model's text: storable, encodable
                yield parts[-1]
            self.finish(prepared, "".join(parts))
        finally:
            self._release(prepared)

    def finish(self, prepared: Prepared, reply: str) -> None:
        """Record the complete reply as the plan says (timed as ``record``)."""
        prepared.clock.lap("upstream")
        session_id, step = prepared.session_id, prepared.plan
        if prepared.recorded is not None:
            return  # answered from the record: nothing new
        speaker = prepared.speaker
        reply = as_shown(reply)
        if speaker is not None and reply.startswith(f"{speaker}:"):  # the model named itself
            reply = reply[len(speaker) + 1 :].strip()
        used = [str(e.lore_entry_id) for e in prepared.used]
        if step.generate in ("turn", "reply"):  # a group member's reply: a turn without a message
            self.chat.persist(
                session_id,
                prepared.message,
                reply,
                prepared.used,
                lore=prepared.lore,
                key=prepared.key,
                speaker=speaker,
            )
        elif step.generate == "regenerate":
            index = self._last_index(session_id)
            self.transcript.replace_reply(session_id, index, prepared.last_reply, reply, used)
            self.notify()  # the turn is analysed again
        elif step.generate == "continue":
            merged = f"{prepared.last_reply} {reply}" if prepared.last_reply else reply
            self.transcript.edit_turn(
                session_id, self._last_index(session_id), assistant_message=merged
            )
            self.notify()
        prepared.clock.lap("record")

    # -- finding and changing the chat ---------------------------------------------------------
    def _candidates(
        self, world_id: uuid.UUID, caller: str | None, messages: Sequence[AppMessage]
    ) -> dict[uuid.UUID, list[tuple[str, str]]]:
        """The caller's chats in the world holding one of the request's first or last user
        messages (a chat it goes on, branches from or is a window of holds one), latest first."""
        users = [m.content for m in messages if m.role == "user" and m.content]
        ends = {*users[:ENDS], *users[-ENDS:]}
        # a paragraph may be the stored message, the rest text the app merged into it
        said = sorted(ends | {part for text in ends for part in paragraphs(text)})
        if not said:
            return {}
        with self.database.uow(read_only=True) as uow:
            sessions = list(
                uow.session.scalars(
                    select(ChatTurn.session_id)
                    .join(ChatSession, ChatSession.id == ChatTurn.session_id)
                    .where(
                        ChatSession.world_id == world_id,
                        ChatSession.caller.is_(None)
                        if caller is None
                        else ChatSession.caller == caller,
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
        chats: dict[uuid.UUID, list[tuple[str, str]]] = {s: [] for s in sessions}
        for session_id, user, reply, speaker in turns:
            shown = as_shown(reply)
            chats[session_id].append((as_shown(user), f"{speaker}: {shown}" if speaker else shown))
        return chats

    def _view(
        self,
        world_id: uuid.UUID,
        candidates: dict[uuid.UUID, list[tuple[str, str]]],
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
        with self.database.uow(read_only=True) as uow:
            lore = set(
                uow.session.scalars(
                    select(LoreEntry.content).where(
                        LoreEntry.world_id == world_id, LoreEntry.content.in_(texts)
                    )
                )
            )
        return stored, without_known(view, new, lore | self._injected.known(world_id))

    def _new_session(
        self, world_id: uuid.UUID, caller: str | None, messages: Sequence[AppMessage]
    ) -> uuid.UUID:
        first = next((m.content for m in messages if m.role == "user" and m.content), "")
        title = f"chat: {' '.join(first.split())[:60]}" if first else "chat"
        with self.database.uow() as uow:
            session = uow.sessions.add(ChatSession(world_id=world_id, title=title, caller=caller))
            uow.commit()
            return session.id

    def _apply(
        self,
        session_id: uuid.UUID,
        stored: list[AppMessage],
        step: Plan,
        *,
        analyse: bool,
        group: bool = False,
    ) -> uuid.UUID:
        """Make the stored chat what the app shows (before what is generated).  ``group``: a
        group chat's request, whose replies the app shows as "Name: text"."""
        turns = to_turns(stored)
        if step.fork:
            if step.keep:
                session_id = self.transcript.fork(session_id, step.keep - 1).id
            else:
                with self.database.uow(read_only=True) as uow:
                    session = uow.sessions.require(session_id)
                    world_id, caller = session.world_id, session.caller
                session_id = self._new_session(world_id, caller, [])
        elif step.edit is not None:
            user, reply = step.edit
            old_user, old_reply = turns[step.keep]
            with self.database.uow(read_only=True) as uow:
                alternatives = list(
                    uow.session.scalars(
                        select(ChatTurn.alternatives).where(
                            ChatTurn.session_id == session_id,
                            ChatTurn.turn_index == step.keep,
                        )
                    ).one()
                )
            text = spoken_by(reply, "" if group else None)[1]
            if reply != old_reply and text in alternatives and user == old_user:
                self.transcript.edit_turn(
                    session_id, step.keep, alternative=alternatives.index(text)
                )
            else:
                self.transcript.edit_turn(
                    session_id,
                    step.keep,
                    user_message=user if user != old_user else None,
                    assistant_message=text if reply != old_reply else None,
                )
        elif step.keep < len(turns):
            self.transcript.delete_turns(session_id, step.keep)
        for user, reply in step.record:
            speaker, text = spoken_by(reply, "" if group else None)
            self.chat.persist(session_id, user, text, [], analyse=analyse, speaker=speaker)
        if step.changes or step.keep < len(turns):
            self.notify()
        return session_id

    def _matched(self, session_id: uuid.UUID) -> None:
        """The chat a request was a view of (after any fork): the side of a branch the app
        shows now (see :mod:`loreweave.app.branches`)."""
        with self.database.uow() as uow:
            uow.sessions.require(session_id).last_matched_at = utcnow()
            uow.commit()

    def _last_key(self, session_id: uuid.UUID) -> str | None:
        with self.database.uow(read_only=True) as uow:
            last = uow.turns.recent(session_id, 1)
            return last[0].idempotency_key if last else None

    def _previous_turn(self, session_id: uuid.UUID, generate: str | None) -> int | None:
        """The last turn this request leaves as it is (a regenerate or a continue replaces the
        last one's reply); None when there is none."""
        last = self._last_index(session_id)
        previous = last - 1 if generate in ("regenerate", "continue") else last
        return previous if previous >= 0 else None

    def _last_index(self, session_id: uuid.UUID) -> int:
        with self.database.uow(read_only=True) as uow:
            return uow.turns.next_index(session_id) - 1

    @staticmethod
    def _query(shown: Sequence[AppMessage], step: Plan) -> tuple[str, list[tuple[str, str]]]:
        """The message to retrieve for and the turns before it."""
        users = [i for i, m in enumerate(shown) if m.role == "user" and m.content]
        if not users:
            return shown[-1].content, []
        last = users[-1]
        return shown[last].content, to_turns(shown[:last])

    def _with_lore(self, raw: Sequence[tuple[str, str]], lore: str) -> list[Message]:
        messages = [Message(role, content) for role, content in raw]  # type: ignore[arg-type]
        if self.config.lore_position == "depth":
            at = max(0, len(messages) - self.config.lore_depth)
        else:  # after the leading system messages
            at = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
        return [*messages[:at], Message("system", lore), *messages[at:]]

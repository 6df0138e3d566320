"""The OpenAI-compatible proxy's work, apart from the wire format (``api/routes/openai.py``).

A request names a world by its model (``loreweave/<world>`` or ``loreweave/<world>/<upstream
model>``) and carries only messages.  :meth:`ProxyService.prepare` makes it ready in three
steps: *match* finds the chat they continue and what they mean for it (``matching.py``, planned
by ``follow.py``); *apply* makes the stored chat what the app shows (the transcript's
operations, so the memory follows); *ground* retrieves the lore block and builds the upstream
request with it put in.  :meth:`ProxyService.answer` (plain) and :meth:`ProxyService.stream`
forward it through the chat provider and its one resilience layer, and record the reply
(:meth:`ProxyService.finish`).

A chat that goes on by one turn, nothing else changed (the common request), is one read before
the upstream call (the world, the chats, the lore: its query embedded before it opened) and one
write after it (the turn, its analysis job and the chat's match).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from loreweave.app.chat import ChatService
from loreweave.app.follow import Plan, Request, Turn, read_request, to_turns
from loreweave.app.grounding import Asked, Grounding, said
from loreweave.app.lookup import find_world
from loreweave.app.matching import Matched, StoredChats
from loreweave.app.shown import AppMessage, as_shown, spoken_by
from loreweave.config import LLMConfig, ProxyConfig
from loreweave.db import request_keys
from loreweave.db.engine import Database
from loreweave.db.models import ChatSession, ChatTurn, World, utcnow
from loreweave.db.uow import UnitOfWork
from loreweave.errors import InvalidInput, NotFound
from loreweave.llm.types import ChatRequest, ChatResponse, stream_text
from loreweave.memory.transcript import TranscriptService
from loreweave.validation import scrub
from loreweave.vectors.retrieval import Embedded, Query, RetrievedEntry, Retriever

log = logging.getLogger("loreweave.app.proxy")

MODEL_PREFIX = "loreweave/"


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
    # the chat's match (the side of a branch the app shows, :mod:`loreweave.app.branches`) is
    # still to write: with the turn, or alone when none is recorded
    unmarked: bool = False


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
        self.chats = StoredChats()
        self.grounding = Grounding(retriever, llm_config, config, chat.names)
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

    def target(self, model: str, allowed: Callable[[uuid.UUID], bool] | None = None) -> Target:
        """``loreweave/<world name or id>[/<upstream model>]``; ``allowed``: the worlds the
        caller may use (another is not found)."""
        with self.database.uow(read_only=True) as uow:
            return self._target(uow, model, allowed)

    def _target(
        self, uow: UnitOfWork, model: str, allowed: Callable[[uuid.UUID], bool] | None
    ) -> Target:
        if not model.startswith(MODEL_PREFIX) or model == MODEL_PREFIX:
            raise InvalidInput(
                f"the model must be '{MODEL_PREFIX}<world name or id>', optionally followed by "
                "'/<upstream model>'; GET /v1/models lists them"
            )
        rest = model[len(MODEL_PREFIX) :]
        try:
            target = Target(find_world(uow, rest), self._upstream(None))
        except NotFound:
            if "/" not in rest:
                raise
            world, upstream = rest.split("/", 1)
            target = Target(find_world(uow, world), self._upstream(upstream or None))
        if allowed is not None and not allowed(target.world.id):
            raise NotFound("world", repr(model))
        return target

    def _upstream(self, name: str | None) -> str:
        return name or self.config.upstream_model or self.llm_config.chat_model

    # -- a request -----------------------------------------------------------------------------
    def prepare(
        self,
        model: str,
        raw: Sequence[tuple[str, str]],
        *,
        allowed: Callable[[uuid.UUID], bool] | None = None,
        caller: str | None = None,
        clock: Stopwatch | None = None,
        key: str | None = None,
        **options: Any,
    ) -> Prepared:
        """A request made ready (:meth:`_prepare`).  ``model``: the world, and the upstream
        model (:meth:`target`); ``allowed``: the worlds the caller may use; ``caller``
        (:func:`~loreweave.app.matching.caller_of`): the request is matched only against its
        chats; ``clock`` times the phases (``match``: reading the request, finding the chat and
        planning; ``retrieve``: the lore block; ``target``; ``stored``: reading the caller's
        chats; ``follow``: changing the chat); ``options``: :class:`Asked`'s.  With a ``key``
        (the request's ``Idempotency-Key``), one request at a time per key and caller: the
        same request sent twice at once waits for the first to be recorded, then reads as that
        request again (its recorded reply; no second chat or session)."""
        clock = clock or Stopwatch()
        asked = Asked(raw, key=key, **options)
        if key is None:
            return self._prepare(model, asked, allowed, caller, clock)
        target = self.target(model, allowed)
        scope = f"proxy:{target.world.id}:{caller or ''}"
        request_keys.hold(self.database, scope, key, lambda: None)
        try:
            prepared = self._prepare(target, asked, allowed, caller, clock)
        except BaseException:
            request_keys.release(self.database, scope, key)
            raise
        if prepared.recorded is not None:  # answered from the record: nothing to hold for
            request_keys.release(self.database, scope, key)
            return prepared
        return replace(prepared, held=scope)

    def _prepare(
        self,
        model: str | Target,
        asked: Asked,
        allowed: Callable[[uuid.UUID], bool] | None,
        caller: str | None,
        clock: Stopwatch,
    ) -> Prepared:
        """Match, apply, ground.  A request that changes nothing but the turn to generate
        applies nothing, and is matched and grounded in one read, its query embedded before
        (a provider call holds no transaction open; the query read from the request alone is
        the one the chat as matched asks for, unless the app injected text into its end)."""
        request = self._read(asked.raw)
        clock.lap("match")
        guess = self.grounding.embed(self.grounding.query(request.messages))
        clock.lap("retrieve")
        with self.database.uow(read_only=True) as uow:
            target = model if isinstance(model, Target) else self._target(uow, model, allowed)
            clock.lap("target")
            matched = self._match(uow, target, caller, request, clock)
            again = self._again(uow, target, matched, asked.key, clock)
            if again is not None:
                return again
            query = self.grounding.query(matched.shown)
            if matched.plain and guess.fits(query):  # nothing to apply: grounded in this read
                return self._ground(uow, target, matched, (query, guess), asked, clock)
        session_id = self._apply(matched)
        clock.lap("follow")
        embedded = guess if guess.fits(query) else self.grounding.embed(query)
        with self.database.uow(read_only=True) as uow:
            matched = replace(matched, session=session_id)
            return self._ground(uow, target, matched, (query, embedded), asked, clock)

    def _read(self, raw: Sequence[tuple[str, str]]) -> Request:
        config = self.config
        request = read_request(
            raw,
            config.continue_patterns,
            config.impersonate_patterns,
            config.group_patterns,
            config.placeholder,
            config.members_patterns,
            config.start_patterns,
        )
        if not request.messages:
            raise InvalidInput("the request has no user or assistant message")
        return request

    def _match(
        self,
        uow: UnitOfWork,
        target: Target,
        caller: str | None,
        request: Request,
        clock: Stopwatch,
    ) -> Matched:
        """Step one: the stored chat the request continues and what it means for it."""
        candidates = self.chats.candidates(uow, target.world.id, caller, request.messages)
        clock.lap("stored")
        matched = self.chats.match(uow, target.world.id, caller, request, candidates)
        clock.lap("match")
        return matched

    def _again(
        self,
        uow: UnitOfWork,
        target: Target,
        matched: Matched,
        key: str | None,
        clock: Stopwatch,
    ) -> Prepared | None:
        """The same request again (``key`` is the last turn's; a client retrying after a cut
        connection): its recorded reply is the answer (a regenerate without it)."""
        session_id = matched.session
        if key is None or session_id is None or matched.step.generate != "regenerate":
            return None
        last = uow.turns.recent(session_id, 1)
        if not last or last[0].idempotency_key != key:
            return None
        recorded = spoken_by(matched.stored[-1].content, matched.request.speaker)[1]
        upstream = ChatRequest((), target.upstream_model, self.llm_config.temperature_chat)
        return Prepared(
            session_id,
            matched.step,
            upstream,
            [],
            "",
            recorded,
            clock,
            key,
            recorded,
            previous_turn=self._previous_turn(uow, session_id, "regenerate"),
        )

    def _apply(self, matched: Matched) -> uuid.UUID:
        """Step two: make the stored chat what the app shows (before what is generated) — a
        new chat, or the stored one forked, edited or cut — then record the turns it lacks,
        and mark it as the chat the app shows now."""
        if matched.plain:  # nothing to apply; its match is written with its turn
            assert matched.session is not None
            return matched.session
        step, group = matched.step, matched.request.speaker is not None
        turns = to_turns(matched.stored)
        if matched.session is None:
            session_id = self._new_session(matched.world_id, matched.caller, matched.shown)
        else:
            session_id = self._change(matched, turns)
        analyse = matched.session is not None or self.config.analyse_unmatched_history
        for user, reply in step.record:
            speaker, text = spoken_by(reply, "" if group else None)
            self.chat.persist(session_id, user, text, [], analyse=analyse, speaker=speaker)
        if step.changes or step.keep < len(turns):
            self.notify()
        self._matched(session_id)
        return session_id

    def _change(self, matched: Matched, turns: list[Turn]) -> uuid.UUID:
        """The stored chat forked (the chat it continues now), edited or cut."""
        step, session_id = matched.step, matched.session
        assert session_id is not None
        if step.fork and step.keep:
            return self.transcript.fork(session_id, step.keep - 1).id
        if step.fork:  # nothing in common: a new chat of the same caller
            return self._new_session(matched.world_id, matched.caller, [])
        if step.edit is not None:
            group = matched.request.speaker is not None
            self._edit(session_id, step.keep, turns[step.keep], step.edit, group=group)
        elif step.keep < len(turns):
            self.transcript.delete_turns(session_id, step.keep)
        return session_id

    def _edit(
        self, session_id: uuid.UUID, index: int, old: Turn, new: Turn, *, group: bool
    ) -> None:
        """Turn ``index`` made ``new``: a reply the turn had before is chosen again (an
        alternative); otherwise its message or reply edited.  ``group``: a group chat's
        request, whose replies the app shows as "Name: text"."""
        (old_user, old_reply), (user, reply) = old, new
        with self.database.uow(read_only=True) as uow:
            alternatives = list(
                uow.session.scalars(
                    select(ChatTurn.alternatives).where(
                        ChatTurn.session_id == session_id, ChatTurn.turn_index == index
                    )
                ).one()
            )
        text = spoken_by(reply, "" if group else None)[1]
        if reply != old_reply and text in alternatives and user == old_user:
            self.transcript.edit_turn(session_id, index, alternative=alternatives.index(text))
            return
        self.transcript.edit_turn(
            session_id,
            index,
            user_message=user if user != old_user else None,
            assistant_message=text if reply != old_reply else None,
        )

    def _ground(
        self,
        uow: UnitOfWork,
        target: Target,
        matched: Matched,
        query: tuple[Query, Embedded],
        asked: Asked,
        clock: Stopwatch,
    ) -> Prepared:
        """Step three: the lore block for the chat as the app shows it, put into the upstream
        request (:mod:`loreweave.app.grounding`)."""
        step, speaker, session_id = matched.step, matched.request.speaker, matched.session
        assert session_id is not None
        grounded = self.grounding.ground(
            uow, session_id, query, step, speaker, target.upstream_model, asked
        )
        clock.lap("retrieve")
        return Prepared(
            session_id,
            step,
            grounded.request,
            grounded.used,
            grounded.lore,
            matched.last_reply,
            clock,
            asked.key,
            speaker=speaker,
            message=said(matched.shown)[0] if step.generate == "turn" else "",
            previous_turn=self._previous_turn(uow, session_id, step.generate),
            unmarked=matched.plain,
        )

    def follows(
        self, messages: Sequence[AppMessage], caller: str | None, worlds: Sequence[uuid.UUID]
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(world, session) of the chat an app shows (:meth:`StoredChats.follows`)."""
        with self.database.uow(read_only=True) as uow:
            return self.chats.follows(uow, messages, caller, worlds)

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
            self._settle(prepared)
        return response

    def stream(self, prepared: Prepared) -> Generator[str, None, None]:
        """Forward the request streamed: the pieces as the provider sends them, the reply
        recorded once it is complete, or as far as it was handed on when the client goes away
        (the generator closed: the app keeps what it showed, as SillyTavern keeps a stopped
        reply).  An error records nothing."""
        parts: list[str] = []
        try:
            if prepared.recorded is not None:
                pieces: Iterator[str] = iter([prepared.recorded])
            else:
                pieces = stream_text(self.chat.chat_model, prepared.request)
            for piece in pieces:
                text = scrub(piece)  # a model's text: storable, encodable
                yield text
                parts.append(text)  # the next one asked for: this one was handed on
            self.finish(prepared, "".join(parts))
        except GeneratorExit:
            if "".join(parts).strip():
                self.finish(prepared, "".join(parts))
            raise
        finally:
            self._settle(prepared)

    def finish(self, prepared: Prepared, reply: str) -> None:
        """Record the reply as the plan says (timed as ``record``)."""
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
                matched=prepared.unmarked,
            )
            prepared.unmarked = False
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

    def _settle(self, prepared: Prepared) -> None:
        """After the upstream call, whatever came of it: the request's key released, and the
        chat's match written if no turn carried it."""
        if prepared.held is not None and prepared.key is not None:
            request_keys.release(self.database, prepared.held, prepared.key)
        if prepared.unmarked:
            self._matched(prepared.session_id)

    # -- the chat ------------------------------------------------------------------------------
    def _new_session(
        self, world_id: uuid.UUID, caller: str | None, messages: Sequence[AppMessage]
    ) -> uuid.UUID:
        first = next((m.content for m in messages if m.role == "user" and m.content), "")
        title = f"chat: {' '.join(first.split())[:60]}" if first else "chat"
        with self.database.uow() as uow:
            session = uow.sessions.add(ChatSession(world_id=world_id, title=title, caller=caller))
            uow.commit()
            return session.id

    def _matched(self, session_id: uuid.UUID) -> None:
        """The chat a request was a view of (after any fork): the side of a branch the app
        shows now (see :mod:`loreweave.app.branches`)."""
        with self.database.uow() as uow:
            uow.sessions.require(session_id).last_matched_at = utcnow()
            uow.commit()

    @staticmethod
    def _previous_turn(uow: UnitOfWork, session_id: uuid.UUID, generate: str | None) -> int | None:
        """The last turn this request leaves as it is (a regenerate or a continue replaces the
        last one's reply); None when there is none."""
        last = uow.turns.next_index(session_id) - 1
        previous = last - 1 if generate in ("regenerate", "continue") else last
        return previous if previous >= 0 else None

    def _last_index(self, session_id: uuid.UUID) -> int:
        with self.database.uow(read_only=True) as uow:
            return uow.turns.next_index(session_id) - 1

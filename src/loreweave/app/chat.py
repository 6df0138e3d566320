"""The synchronous turn (DESIGN §1.1): retrieve → main prompt → main chat model → persist.

The turn row is written with ``processing_status = 'pending'``: that row *is* the analysis job
(a transactional outbox), so a crash after the reply can never lose the memory update.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from loreweave.config import LLMConfig
from loreweave.db import request_keys
from loreweave.db.engine import Database
from loreweave.db.models import USER, ChatSession, ChatTurn, TurnStatus, utcnow
from loreweave.db.uow import UnitOfWork
from loreweave.errors import Conflict, DatabaseUnavailable, InvalidInput
from loreweave.llm.prompts import render
from loreweave.llm.types import ChatModel, ChatRequest, Message, stream_text
from loreweave.memory.observer import resolve as resolve_observer
from loreweave.memory.transcript import Reverted, TranscriptService
from loreweave.validation import require_clean, scrub
from loreweave.vectors.retrieval import RetrievedEntry, Retriever

log = logging.getLogger("loreweave.app.chat")

MAX_MESSAGE_LENGTH = 8_000
MAX_REPLY_LENGTH = 32_000
PERSIST_PATIENCE = 15.0  # seconds a generated reply waits for the database to come back


@dataclass(frozen=True)
class TurnResult:
    turn_id: uuid.UUID
    turn_index: int
    reply: str
    used_entries: list[RetrievedEntry]
    overhead_seconds: float  # everything but the main LLM call
    timings: dict[str, float]  # seconds: retrieval, prompt, llm, persist


@dataclass(frozen=True)
class StreamEvent:
    """A piece of a streamed reply (``delta``), then the recorded turn (``done``)."""

    kind: Literal["delta", "done"]
    text: str = ""
    result: TurnResult | None = None


@dataclass(frozen=True)
class PreparedTurn:
    request: ChatRequest
    used_entries: list[RetrievedEntry]
    retrieval_seconds: float
    lore: str  # the lore block the prompt holds (kept with the turn)


def _told(result: TurnResult) -> Generator[StreamEvent, None, None]:
    """A turn recorded before, as a stream: its reply in one piece, then the turn."""
    yield StreamEvent("delta", result.reply)
    yield StreamEvent("done", result=result)


def _checked(text: str, what: str, limit: int) -> str:
    text = require_clean(text.strip(), what)
    if not text:
        raise InvalidInput(f"{what} is empty")
    if len(text) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return text


def prompt_lore(entries: list[RetrievedEntry], text: str) -> dict[str, Any]:
    """What a turn's prompt was given (``text``: its lore block), kept with the turn for the
    prompt inspector."""
    return {
        "text": text,
        "entries": [
            {
                "id": str(e.lore_entry_id),
                "title": e.title,
                "why": e.via,
                "score": e.score,
                "tokens": e.tokens,
            }
            for e in entries
        ],
    }


MACRO = re.compile(r"\{\{\s*(user|char)\s*\}\}", re.IGNORECASE)


@dataclass(frozen=True)
class Names:
    """Who ``{{user}}`` (the persona) and ``{{char}}`` (the character) are, as SillyTavern's
    name macros mean them: substituted in lore text sent to a model; stored lore keeps them."""

    user: str = "User"
    char: str = "Character"

    def substitute(self, text: str) -> str:
        return MACRO.sub(lambda m: self.user if m.group(1).lower() == "user" else self.char, text)


def lore_block(entries: list[RetrievedEntry], names: Names = Names()) -> str:
    """The retrieved entities as a prompt gives them (session notes take priority), the name
    macros substituted: loreweave's own chat prompt, the proxy and the context endpoint use it."""
    documents = [
        {
            "title": names.substitute(e.title),
            "entity_type": e.entity_type,
            "text": names.substitute(e.text),
        }
        for e in entries
    ]
    observers = sorted({names.substitute(e.known_to) for e in entries if e.known_to})
    return render("lore", documents=documents, observers=observers)


class ChatService:
    def __init__(
        self,
        database: Database,
        chat_model: ChatModel,
        retriever: Retriever,
        llm_config: LLMConfig,
        *,
        history_turns: int = 6,
        on_turn_committed: Callable[[uuid.UUID], None] | None = None,
        transcript: TranscriptService | None = None,
        names: Names = Names(),
    ) -> None:
        self.database = database
        self.chat_model = chat_model
        self.retriever = retriever
        self.llm_config = llm_config
        self.history_turns = history_turns
        self.on_turn_committed = on_turn_committed
        self.transcript = transcript
        self.names = names

    def start_session(
        self, world_id: uuid.UUID, title: str | None = None, *, caller: str | None = None
    ) -> ChatSession:
        """A new chat session of the world (NotFound for an unknown world).  ``caller``: whose
        chats it is among (the proxy matches a request only against its caller's chats)."""
        with self.database.uow() as uow:
            uow.worlds.require(world_id)
            session = uow.sessions.add(ChatSession(world_id=world_id, title=title, caller=caller))
            uow.commit()
        return session

    @staticmethod
    def validate(message: str) -> str:
        return _checked(message, "the message", MAX_MESSAGE_LENGTH)

    def prepare(
        self,
        session_id: uuid.UUID,
        message: str,
        *,
        before: int | None = None,
        observer: str | None = None,
    ) -> PreparedTurn:
        """Retrieval and the main prompt: the work before the main LLM call (for the turn
        ``before``, with the turns before it as history; by default a new last turn;
        ``observer``: the lore as that character knows it, DESIGN §1.6)."""
        depth = max(self.history_turns, self.retriever.depth)
        with self.database.uow(read_only=True) as uow:
            session = uow.sessions.require(session_id)
            world = uow.worlds.require(session.world_id)
            turns = uow.turns.recent(session_id, depth, before=before)
        loaded = time.perf_counter()
        pairs = [(t.user_message, t.assistant_message) for t in turns]
        used = self.retriever.search(session_id, message, history=pairs, observer=observer)
        retrieved = time.perf_counter() - loaded
        history = turns[len(turns) - self.history_turns :] if self.history_turns else []
        lore = lore_block(used, self.names)
        system = render(
            "chat",
            world_name=world.name,
            world_description=world.description,
            lore=lore,
        )
        messages = [Message("system", system)]
        for turn in history:  # a part an app left empty (a greeting's user message) is absent
            if turn.user_message:
                messages.append(Message("user", turn.user_message))
            if turn.assistant_message:
                messages.append(Message("assistant", turn.assistant_message))
        messages.append(Message("user", message))
        request = ChatRequest(
            tuple(messages),
            self.llm_config.chat_model,
            self.llm_config.temperature_chat,
            prompt="chat",
        )
        return PreparedTurn(request, used, retrieved, lore)

    def persist(
        self,
        session_id: uuid.UUID,
        message: str,
        reply: str,
        used: list[RetrievedEntry],
        *,
        lore: str = "",
        analyse: bool = True,
        key: str | None = None,
        speaker: str | None = None,
        matched: bool = False,
    ) -> ChatTurn:
        """Write the turn and its analysis job in one transaction (``used`` and ``lore``: what
        its prompt was given; ``key``: the client's idempotency key — a turn of the session
        already recorded under it is returned instead; ``speaker``: who spoke the reply, a
        group chat's member; ``matched``: a proxied request was a view of the session, the
        side of a branch the app shows now).  The session's row is locked
        while the next index is taken, so turns posted at once are numbered one after another
        and every one is recorded.  A reply exists by now (it was paid for): if the database
        went away meanwhile, keep trying for ``PERSIST_PATIENCE`` seconds before giving up."""
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(OperationalError),
                stop=stop_after_delay(PERSIST_PATIENCE),
                wait=wait_exponential(multiplier=0.2, max=2),
                reraise=True,
            ):
                with attempt:
                    return self._insert(
                        session_id, message, reply, used, lore, analyse, key, speaker, matched
                    )
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(f"the turn could not be recorded: {reason}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert(
        self,
        session_id: uuid.UUID,
        message: str,
        reply: str,
        used: list[RetrievedEntry],
        lore: str = "",
        analyse: bool = True,
        key: str | None = None,
        speaker: str | None = None,
        matched: bool = False,
    ) -> ChatTurn:
        with self.database.uow() as uow:
            session = uow.sessions.lock(session_id)
            recorded = self._recorded(uow, session_id, key, message)
            if recorded is not None:
                return recorded  # the same request again (a retry after a cut connection)
            session.last_turn_at = utcnow()  # played now: its memory goes first
            if matched:
                session.last_matched_at = session.last_turn_at
            turn = ChatTurn(
                session_id=session_id,
                turn_index=uow.turns.next_index(session_id),
                user_message=message,
                assistant_message=reply,
                used_entry_ids=[str(e.lore_entry_id) for e in used],
                prompt_lore=prompt_lore(used, lore) if used else {},
                # a turn not to analyse (``analyse``) is recorded as done: no job
                processing_status=TurnStatus.PENDING if analyse else TurnStatus.DONE,
                idempotency_key=key,
                speaker=speaker,
            )
            uow.session.add(turn)
            uow.commit()
        if self.on_turn_committed is not None:
            self.on_turn_committed(session_id)
        return turn

    @staticmethod
    def _recorded(
        uow: UnitOfWork, session_id: uuid.UUID, key: str | None, message: str
    ) -> ChatTurn | None:
        """The session's turn recorded under ``key`` (None: no key, or none yet); a key used
        for another message is a client's mistake (409)."""
        if key is None:
            return None
        turn = uow.session.scalars(
            select(ChatTurn).where(
                ChatTurn.session_id == session_id, ChatTurn.idempotency_key == key
            )
        ).first()
        if turn is not None and turn.user_message != message:
            raise Conflict(
                f"Idempotency-Key {key!r} was used for turn {turn.turn_index}, another message"
            )
        return turn

    def already_recorded(
        self, session_id: uuid.UUID, key: str | None, message: str
    ) -> TurnResult | None:
        """The turn recorded under ``key``, as its first answer said (no chat call made)."""
        if key is None:
            return None
        with self.database.uow(read_only=True) as uow:
            uow.sessions.require(session_id)
            turn = self._recorded(uow, session_id, key, self.validate(message))
            if turn is None:
                return None
            return TurnResult(turn.id, turn.turn_index, turn.assistant_message, [], 0.0, {})

    def _hold(self, session_id: uuid.UUID, key: str | None, message: str) -> TurnResult | None:
        """The turn recorded under ``key`` (the same request again: its answer), or None once
        the key is this request's to answer (:mod:`loreweave.db.request_keys`): a request
        with the key already in flight is waited for, so one chat call answers both."""
        if key is None:
            return None
        return request_keys.hold(
            self.database,
            f"session:{session_id}",
            key,
            lambda: self.already_recorded(session_id, key, message),
        )

    def _release(self, session_id: uuid.UUID, key: str | None) -> None:
        if key is not None:
            request_keys.release(self.database, f"session:{session_id}", key)

    def regenerate(self, session_id: uuid.UUID, turn_index: int) -> tuple[ChatTurn, Reverted]:
        """A new reply for the last turn from the chat model; the old reply is kept as an
        alternative, its memory changes undone and the new reply analysed."""
        if self.transcript is None:
            raise RuntimeError("regenerate needs the transcript service")
        with self.database.uow(read_only=True) as uow:
            uow.sessions.require(session_id)
            if uow.turns.next_index(session_id) != turn_index + 1:
                raise Conflict(f"only the last turn can be regenerated, not turn {turn_index}")
            turn = uow.turns.recent(session_id, 1)[0]
            message, old = turn.user_message, turn.assistant_message
        prepared = self.prepare(session_id, message, before=turn_index)
        reply = self.chat_model.complete(prepared.request).text
        used = [str(e.lore_entry_id) for e in prepared.used_entries]
        result = self.transcript.replace_reply(session_id, turn_index, old, reply, used)
        if self.on_turn_committed is not None:
            self.on_turn_committed(session_id)
        return result

    def turn_stream(
        self,
        session_id: uuid.UUID,
        message: str,
        *,
        key: str | None = None,
        observer: str | None = None,
    ) -> Generator[StreamEvent, None, None]:
        """Like :meth:`turn`, handing out the reply as it is generated.  Bad input and unknown
        sessions raise here, before the stream starts; the turn is recorded once it is complete,
        or as far as it was handed on when the stream is closed before (the client went away:
        it keeps what it showed).  A turn already recorded under ``key`` is one ``delta`` of its
        reply, then ``done``."""
        message = self.validate(message)
        again = self._hold(session_id, key, message)
        if again is not None:
            return _told(again)
        started = time.perf_counter()
        try:
            prepared = self.prepare(session_id, message, observer=observer)
        except BaseException:
            self._release(session_id, key)
            raise
        prepared_at = time.perf_counter()

        def record(reply: str) -> ChatTurn:
            used, lore = prepared.used_entries, prepared.lore
            return self.persist(session_id, message, reply, used, lore=lore, key=key)

        def events() -> Generator[StreamEvent, None, None]:
            parts: list[str] = []
            try:
                for chunk in stream_text(self.chat_model, prepared.request):
                    text = scrub(chunk)  # a model's text: storable, encodable
                    yield StreamEvent("delta", text)
                    parts.append(text)  # the next one asked for: this one was handed on
                answered_at = time.perf_counter()
                reply = "".join(parts)
                turn = record(reply)
            except GeneratorExit:
                if "".join(parts).strip():
                    record("".join(parts))
                raise
            finally:
                self._release(session_id, key)
            yield StreamEvent(
                "done",
                result=self._result(turn, reply, prepared, started, prepared_at, answered_at),
            )

        return events()

    def record(
        self,
        session_id: uuid.UUID,
        message: str,
        reply: str,
        *,
        key: str | None = None,
        observer: str | None = None,
    ) -> TurnResult:
        """A turn another app played (its own prompt, its own model): recorded and analysed
        like any other, no chat call made.  ``observer``: the character who speaks the reply
        (stored as its speaker, so the analysis reads whose point of view it is)."""
        message = self.validate(message)
        reply = self.validate_reply(reply)
        speaker = None
        if observer is not None:
            with self.database.uow(read_only=True) as uow:
                seen = resolve_observer(uow, uow.sessions.require(session_id), observer)
            speaker = None if seen is None or seen.witness == USER else seen.name
        started = time.perf_counter()
        turn = self.persist(session_id, message, reply, [], key=key, speaker=speaker)
        persisted = time.perf_counter() - started
        recorded = turn.assistant_message
        return TurnResult(turn.id, turn.turn_index, recorded, [], persisted, {"persist": persisted})

    @staticmethod
    def validate_reply(reply: str) -> str:
        return _checked(reply, "the reply", MAX_REPLY_LENGTH)

    def turn(
        self,
        session_id: uuid.UUID,
        message: str,
        *,
        key: str | None = None,
        observer: str | None = None,
    ) -> TurnResult:
        message = self.validate(message)
        again = self._hold(session_id, key, message)
        if again is not None:
            return again
        started = time.perf_counter()
        try:
            prepared = self.prepare(session_id, message, observer=observer)
            prepared_at = time.perf_counter()
            reply = scrub(self.chat_model.complete(prepared.request).text)  # storable
            answered_at = time.perf_counter()
            turn = self.persist(
                session_id, message, reply, prepared.used_entries, lore=prepared.lore, key=key
            )
        finally:
            self._release(session_id, key)
        if turn.assistant_message != reply:  # another request with the key came first
            return TurnResult(turn.id, turn.turn_index, turn.assistant_message, [], 0.0, {})
        result = self._result(turn, reply, prepared, started, prepared_at, answered_at)
        log.debug("turn %d of %s: %s", turn.turn_index, session_id, result.timings)
        return result

    @staticmethod
    def _result(
        turn: ChatTurn,
        reply: str,
        prepared: PreparedTurn,
        started: float,
        prepared_at: float,
        answered_at: float,
    ) -> TurnResult:
        persisted = time.perf_counter() - answered_at
        timings = {
            "retrieval": prepared.retrieval_seconds,
            "prompt": prepared_at - started - prepared.retrieval_seconds,
            "llm": answered_at - prepared_at,
            "persist": persisted,
        }
        overhead = (prepared_at - started) + persisted
        return TurnResult(turn.id, turn.turn_index, reply, prepared.used_entries, overhead, timings)

"""Helpers for the pipeline tests: a wired loreweave on a test database, and waiting for it."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import func, select

from loreweave.bootstrap import Loreweave, build
from loreweave.config import Settings
from loreweave.db import Database
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    World,
)
from loreweave.errors import ProviderError
from loreweave.llm.prompts import answer_by_parts
from loreweave.llm.registry import Providers
from loreweave.llm.resilience import CallStats
from loreweave.llm.types import ChatModel, ChatRequest, ChatResponse
from loreweave.queue.notify import Notifier
from loreweave.testing import HashingEmbedder

# The fakes of the transcript tests answer each turn as if analysed alone, after the creations of
# the turns before it: a batch answered by its parts cannot see those (a model reading the batch
# can, by the new ids), so the tests of the transcript's semantics analyse turn by turn.
# Batching has tests of its own (test_batching.py), and the order property runs batched.
ONE_TURN_PER_CALL = {"analysis_queue": {"batch_size": 1}}


def make_app(
    database: Database,
    tmp_path: Path,
    model: ChatModel,
    *,
    notifier: Notifier | None = None,
    stats: CallStats | None = None,
    **overrides: object,
) -> Loreweave:
    # These tests watch every event go through the rewriter (AppendingRewriter shows which were
    # applied, how often, in which order), so the first note of an entry is rewritten too; the
    # default (a first note is its events, no call) has tests of its own (test_batching.py).
    # They run the spec's full pipeline (the lean mode, the default, has tests of its own:
    # test_lean_pipeline.py, and the properties run in both).
    pipeline = overrides.pop("pipeline_config", {})
    overrides["pipeline_config"] = {"rewrite_first_note": True, "mode": "full", **pipeline}  # type: ignore[dict-item]
    settings = Settings(index_dir=tmp_path / "index", **overrides)  # type: ignore[arg-type]
    providers = Providers(chat=model, embedder=HashingEmbedder(64), stats=stats or CallStats())
    return build(settings, providers=providers, notifier=notifier, database=database)


def make_world(
    database: Database, *titles: tuple[str, str, str]
) -> tuple[uuid.UUID, uuid.UUID, dict[str, uuid.UUID]]:
    """A world with entries (title, type, content) and one session."""
    with database.uow() as uow:
        names = ("Eldoria", *(f"Eldoria {n}" for n in range(2, 100)))  # world names are unique
        world = uow.worlds.add(World(name=next(n for n in names if uow.worlds.named(n) is None)))
        session = uow.sessions.add(ChatSession(world_id=world.id, title="run"))
        ids = {
            title: uow.entries.add(
                LoreEntry(world_id=world.id, title=title, entity_type=kind, content=content)
            ).id
            for title, kind, content in titles
        }
        uow.commit()
    return world.id, session.id, ids


def unfinished(database: Database) -> int:
    """Jobs pending or processing, counted in ONE statement: in three, PostgreSQL's READ
    COMMITTED gives each its own snapshot, and an analysis committing between them (its turn
    done, its note updates written) is counted by none (tests/test_job_lifecycle.py::
    test_idle_is_read_in_one_snapshot)."""
    counts = [
        select(func.count()).select_from(model).where(column.in_(["pending", "processing"]))
        for model, column in (
            (NoteUpdateTask, NoteUpdateTask.status),
            (EntityCreationTask, EntityCreationTask.status),
            (ChatTurn, ChatTurn.processing_status),
        )
    ]
    total = counts[0].scalar_subquery() + counts[1].scalar_subquery() + counts[2].scalar_subquery()
    with database.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(total)) or 0)


def wait_until_idle(database: Database, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while unfinished(database):
        if time.monotonic() > deadline:
            raise AssertionError(f"{unfinished(database)} jobs still unfinished after {timeout}s")
        time.sleep(0.05)


_NOTE = re.compile(r"^\[Current Session Note\]: (.*)$", re.M)
_ONE = re.compile(r"^\[New Event\]: (.*)$", re.M)
_MANY = re.compile(r"^\d+\. (.*)$", re.M)


# how AppendingRewriter joins a note and its events, per pipeline mode: in the lean mode a note
# is its events appended by the pipeline itself (joined by spaces), and a condensation must
# join them the same way for a note to be the same however its events were grouped
SEPARATORS = {"full": " | ", "lean": " "}


class AppendingRewriter:
    """A ChatModel whose rewrite appends the events to the note, joined by ``sep`` (' | '): the
    final note then shows which events were applied, how often and in which order."""

    provider = "appending"

    def __init__(self, delay: float = 0.0, sep: str = SEPARATORS["full"]) -> None:
        self.delay = delay
        self.sep = sep
        self.rewrites = 0
        self._lock = threading.Lock()

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self._lock:
            self.rewrites += 1
        time.sleep(self.delay)
        return answer_by_parts(request, self._rewrite) or self._rewrite(request)

    def _rewrite(self, request: ChatRequest) -> ChatResponse:
        text = request.messages[-1].content
        assert request.prompt == "rewrite", request.prompt
        current = _NOTE.search(text)
        note = current.group(1) if current else ""
        note = "" if note == "(none yet)" else note
        events = [m.group(1) for m in _ONE.finditer(text)] or [
            m.group(1) for m in _MANY.finditer(text)
        ]
        return ChatResponse(self.sep.join([*([note] if note else []), *events]), request.model)


class RoutedModel:
    """A ChatModel that hands each request to the model of its prompt name (``analysis``,
    ``rewrite``…), and may run a hook first: the hook is where a test does what a person or
    another process does while that LLM call is in flight."""

    provider = "routed"

    def __init__(self, **models: ChatModel) -> None:
        self.models = models
        self.hooks: dict[str, Callable[[ChatRequest], None]] = {}
        self.calls: dict[str, int] = {}
        self.sequence: list[str] = []  # prompt names, in the order they were asked

    def complete(self, request: ChatRequest) -> ChatResponse:
        name = request.prompt or ""
        self.calls[name] = self.calls.get(name, 0) + 1
        self.sequence.append(name)
        hook = self.hooks.pop(name, None)
        if hook is not None:
            hook(request)
        if name not in self.models:  # a batch: as its parts would be, by their model
            batched = answer_by_parts(request, lambda part: self.models[part.prompt].complete(part))
            if batched is not None:
                return batched
        return self.models[name].complete(request)


class StoryUpstream:
    """A proxy's upstream: numbered chat replies (in pieces when streamed); the analysis of
    every turn is one event for ``entity`` (the turn's first words); rewrites append events, so
    a note shows which turns were folded, in which order."""

    provider = "upstream"

    def __init__(self, entity: str) -> None:
        self.entity = entity
        self.replies = 0
        self.seen: list[ChatRequest] = []
        self.rewriter = AppendingRewriter()
        self.lock = threading.Lock()
        self.fail = False  # the next chat call fails
        self.padding = ("", "")  # around each reply, as real models write them

    def _reply(self, request: ChatRequest) -> str:
        with self.lock:
            if self.fail:
                self.fail = False
                raise ProviderError("upstream: HTTP 503: overloaded")
            self.replies += 1
            self.seen.append(request)
            number = self.replies
        last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        before, after = self.padding
        return f"{before}Proxy reply {number} to: {last[:40]}{after}"

    def complete(self, request: ChatRequest) -> ChatResponse:
        if request.prompt == "chat":
            return ChatResponse(self._reply(request), request.model)
        batched = answer_by_parts(request, self.complete)
        if batched is not None:
            return batched
        if request.prompt == "analysis":
            prompt = request.messages[-1].content
            ref = re.search(rf"(E\d+)\b[^\n]*{re.escape(self.entity)}", prompt)
            turn = prompt.rsplit("User:", 1)[-1].strip()
            summary = " ".join(turn.split()[:6]) or "silence"
            updates = [{"lore_entry_id": ref.group(1), "update_summary": summary}] if ref else []
            return ChatResponse(json.dumps({"updates": updates, "creations": []}), "m")
        if request.prompt == "creation":  # a newcomer the turn named (its name is the title)
            wanted = (request.json_schema or {}).get("properties", {})
            made = {"content": "Someone the story met.", "tags": []}
            if "title" in wanted:
                made["title"] = "Someone"
            return ChatResponse(json.dumps(made), "m")
        return self.rewriter.complete(request)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        text = self._reply(request)
        yield from (text[i : i + 7] for i in range(0, len(text), 7))


def notes_of(database: Database, session_id: uuid.UUID) -> dict[str, str]:
    """A session's notes by entry title."""
    with database.uow(read_only=True) as uow:
        return {
            uow.entries.require(n.lore_entry_id).title: n.note_content
            for n in uow.notes.in_session(session_id)
        }


def replayed_notes(lw: Loreweave, session_id: uuid.UUID) -> dict[str, str]:
    """The notes of a fresh session fed ``session_id``'s transcript as it stands, drained."""
    with lw.database.uow() as uow:
        world_id = uow.sessions.require(session_id).world_id
        replay = uow.sessions.add(ChatSession(world_id=world_id))
        for index, turn in enumerate(uow.turns.recent(session_id, 10_000)):
            uow.session.add(
                ChatTurn(
                    session_id=replay.id,
                    turn_index=index,
                    user_message=turn.user_message,
                    assistant_message=turn.assistant_message,
                    speaker=turn.speaker,  # who spoke is part of the transcript
                )
            )
        uow.commit()
    lw.pipeline.drain()
    wait_until_idle(lw.database)  # what a running worker claimed meanwhile
    return notes_of(lw.database, replay.id)

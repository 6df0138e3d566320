"""Replay equivalence (DESIGN §1.4), property-tested on SQLite and PostgreSQL.

A hypothesis state machine plays turns in several sessions and deletes, edits, regenerates,
swaps alternatives and forks — some of it while an analysis, rewrite or creation call is in
flight — with single steps of the queues in between; sessions go in and out of manual review,
and proposed changes — note changes and created entries — are approved or rejected at random
(DESIGN §1.7).  Once the queues drain, every session's notes, created entries and vectors must
equal those of a fresh session fed only its final transcript, with the same deterministic LLM
answers and the same events and creations rejected (skipped) — and so must every event's
witnesses and each character's view of the world (DESIGN §1.6).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import (
    MANUAL,
    USER,
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    EntityVector,
    LoreEntry,
    NoteUpdateTask,
    TaskStatus,
)
from loreweave.db.repositories import visible_in
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.memory import observer as observers
from loreweave.memory.ports import ANALYSIS_QUEUE, ENTITY_CREATION_QUEUE
from loreweave.memory.review import ReviewService
from loreweave.queue.kinds import KINDS
from loreweave.queue.notify import NullNotifier

from .pipeline_support import (
    ONE_TURN_PER_CALL,
    SEPARATORS,
    AppendingRewriter,
    RoutedModel,
    make_app,
    make_world,
)
from .sizes import examples
from .test_order_property import Creator, waiting_changes, wipe

TITLES = ("Ann", "Bo", "Cy")
# who may witness: the world's characters, one a session creates ("Dee"), the person playing
WITNESSES = st.lists(st.sampled_from((*TITLES, "Dee", "USER")), unique=True, max_size=2)
NEW = ("Ann", "Dee", "Eve")  # "Ann" exists: its creation merges as a note update
# what a message may update: the world's characters, and one a session creates — updated only
# where its analysis sees it (so an analysis must wait for the entities earlier turns create)
UPDATED = (*TITLES, "Dee")
_ENTITY = re.compile(r"^(E\d+) \| \w+ \| (\w+)", re.M)
_LATEST = re.compile(r"\[Latest Turn\]:\nUser: (.*)\nNarrator: (.*)")


class Analyst:
    """Updates for the titles the user message names (``u=Ann,Bo``) and the reply names
    (``also=Cy``), creations for ``new=Dee``, each known by whom ``k=Bo,USER`` names (none:
    public): what changes the memory, and who knows it, is in the transcript."""

    provider = "analyst"

    def __init__(self, named: bool = False) -> None:
        self.named = named  # each creation gives its name (the lean mode then makes no call)

    def complete(self, request: ChatRequest) -> ChatResponse:
        text = request.messages[-1].content
        refs = {title: ref for ref, title in _ENTITY.findall(text)}
        latest = _LATEST.search(text)
        assert latest, text
        user, reply = latest.group(1), latest.group(2)
        found = re.search(r"#(\d+)", user)
        tag = found.group(1) if found else "0"
        named = _names(user, "u") + _names(reply, "also")
        known_by = [refs.get(w, w) for w in _names(user, "k") if w in refs or w == USER]
        answer = {
            "updates": [
                {"lore_entry_id": refs[t], "update_summary": f"{tag}-{t}", "known_by": known_by}
                for t in named
                if t in refs
            ],
            "creations": [
                {
                    "entity_type": "Character",
                    "creation_summary": f"t{tag}-new-{t}",
                    "known_by": known_by,
                    **({"name": t} if self.named else {}),
                }
                for t in _names(user, "new")
            ],
        }
        return ChatResponse(json.dumps(answer), request.model)


def _names(text: str, key: str) -> list[str]:
    found = re.search(rf"\b{key}=(\S*)", text)
    return [t for t in found.group(1).split(",") if t] if found else []


class Narrator:
    """The chat model: each reply names another title (``also=…``), so a regenerated or
    swapped reply changes the memory."""

    provider = "narrator"

    def __init__(self) -> None:
        self.replies = itertools.count()

    def complete(self, request: ChatRequest) -> ChatResponse:
        n = next(self.replies)
        return ChatResponse(f"reply {n} also={TITLES[n % 3]}", request.model)


class ReplayMachine(RuleBasedStateMachine):
    database: Database
    workdir: Path
    mode: str = "full"  # the pipeline's mode (PipelineConfig.mode)

    @initialize(manual=st.booleans())
    def setup(self, manual: bool) -> None:
        wipe(self.database)
        self.narrator = Narrator()
        rewriter = AppendingRewriter(sep=SEPARATORS[self.mode])
        self.model = RoutedModel(
            chat=self.narrator,
            analysis=Analyst(named=self.mode == "lean"),
            creation=Creator(),
            rewrite=rewriter,
        )
        self.lw = make_app(
            self.database,
            self.workdir / uuid.uuid4().hex,
            self.model,
            notifier=NullNotifier(),
            pipeline_config={"mode": self.mode},
            dual_queue_config=ONE_TURN_PER_CALL,
        )
        self.world_id, first, _ = make_world(
            self.database, *[(t, "Character", f"{t} lives here.") for t in TITLES]
        )
        self.sessions = [first]
        self.tags = itertools.count()
        if manual:  # the world's sessions review their changes (a session may say otherwise)
            ReviewService(self.lw.database.uow, self.lw.vectors).set_world(self.world_id, MANUAL)

    def teardown(self) -> None:
        if hasattr(self, "lw"):
            try:
                self.drain_and_compare()
            finally:
                self.lw.close()

    # -- the transcript's operations ---------------------------------------------------------------
    def _turns(self, session: uuid.UUID) -> int:
        with self.lw.database.uow(read_only=True) as uow:
            return uow.turns.next_index(session)

    @rule(
        data=st.data(),
        updates=st.lists(st.sampled_from(UPDATED), unique=True, max_size=2),
        new=st.lists(st.sampled_from(NEW), max_size=1),
        known=WITNESSES,
    )
    def play(
        self, data: st.DataObject, updates: list[str], new: list[str], known: list[str]
    ) -> None:
        self._say(data.draw(st.sampled_from(self.sessions)), updates, new, known)

    def _say(
        self, session: uuid.UUID, updates: list[str], new: list[str], known: list[str]
    ) -> None:
        message = (
            f"#{next(self.tags)} u={','.join(updates)} new={','.join(new)} k={','.join(known)}"
        )
        reply = self.narrator.complete(ChatRequest((), "m", 0.0)).text
        self.lw.chat.persist(session, message, reply, [])

    @rule(data=st.data(), new=st.sampled_from(NEW), known=WITNESSES)
    def play_a_creation_and_drain(self, data: st.DataObject, new: str, known: list[str]) -> None:
        self.play(data, [], [new], known)
        self.lw.pipeline.drain()

    @rule(data=st.data(), new=st.sampled_from(NEW), known=WITNESSES)
    def play_a_creation_then_its_update(
        self, data: st.DataObject, new: str, known: list[str]
    ) -> None:
        """A newcomer, then a turn that updates it and names it a witness: in review, that
        turn's analysis waits for a person's decision on the newcomer (it must see it, or not)."""
        session = data.draw(st.sampled_from(self.sessions))
        self._say(session, [], [new], known)
        self.lw.pipeline.drain()
        self._say(session, [new], [], [new])
        self.lw.pipeline.drain()

    @rule(queue=st.sampled_from(KINDS.names), jobs=st.integers(1, 3))
    def work(self, queue: Any, jobs: int) -> None:
        for _ in range(jobs):
            self.lw.pipeline.run_next("worker", (queue,), pool=1)

    @rule()
    def work_all(self) -> None:
        self.lw.pipeline.drain()

    def _turn_of(self, data: st.DataObject) -> tuple[uuid.UUID, int] | None:
        session = data.draw(st.sampled_from(self.sessions))
        count = self._turns(session)
        return None if count == 0 else (session, data.draw(st.integers(0, count - 1)))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        if picked := self._turn_of(data):
            self.lw.transcript.delete_turns(*picked)

    @rule(
        data=st.data(),
        updates=st.lists(st.sampled_from(UPDATED), unique=True, max_size=2),
        known=WITNESSES,
    )
    def edit_message(self, data: st.DataObject, updates: list[str], known: list[str]) -> None:
        if picked := self._turn_of(data):
            message = f"#{next(self.tags)} u={','.join(updates)} new= k={','.join(known)}"
            self.lw.transcript.edit_turn(*picked, user_message=message)

    @rule(data=st.data(), title=st.sampled_from(TITLES))
    def edit_reply(self, data: st.DataObject, title: str) -> None:
        if picked := self._turn_of(data):
            self.lw.transcript.edit_turn(*picked, assistant_message=f"edited also={title}")

    @rule(data=st.data())
    def regenerate(self, data: st.DataObject) -> None:
        session = data.draw(st.sampled_from(self.sessions))
        if count := self._turns(session):
            self.lw.chat.regenerate(session, count - 1)

    @rule(data=st.data())
    def pick_alternative(self, data: st.DataObject) -> None:
        if picked := self._turn_of(data):
            with self.lw.database.uow(read_only=True) as uow:
                turn = uow.session.scalars(
                    select(ChatTurn).where(
                        ChatTurn.session_id == picked[0], ChatTurn.turn_index == picked[1]
                    )
                ).one()
                choices = len(turn.alternatives)
            if choices:
                alternative = data.draw(st.integers(0, choices - 1))
                self.lw.transcript.edit_turn(*picked, alternative=alternative)

    @precondition(lambda self: len(self.sessions) < 4)
    @rule(data=st.data())
    def fork(self, data: st.DataObject) -> None:
        if picked := self._turn_of(data):
            self.sessions.append(self.lw.transcript.fork(*picked).id)

    @rule(data=st.data(), prompt=st.sampled_from(("analysis", "rewrite", "creation")))
    def while_a_call_is_in_flight(self, data: st.DataObject, prompt: str) -> None:
        """The next ``prompt`` call first sees a delete or an edit of that session."""
        picked = self._turn_of(data)
        edit = data.draw(st.booleans())
        if picked is None or prompt in self.model.hooks:
            return

        def meanwhile(_request: ChatRequest) -> None:
            if self._turns(picked[0]) <= picked[1]:
                return
            if edit:
                self.lw.transcript.edit_turn(*picked, assistant_message="meanwhile also=Bo")
            else:
                self.lw.transcript.delete_turns(*picked)

        self.model.hooks[prompt] = meanwhile

    # -- review ---------------------------------------------------------------------------------
    @rule(data=st.data(), manual=st.booleans())
    def set_review(self, data: st.DataObject, manual: bool) -> None:
        session = data.draw(st.sampled_from(self.sessions))
        ReviewService(self.lw.database.uow, self.lw.vectors).set_session(
            session, MANUAL if manual else None
        )

    @rule(data=st.data(), approve=st.booleans(), entry=st.booleans())
    def decide(self, data: st.DataObject, approve: bool, entry: bool) -> None:
        """A person approves or rejects one proposed change (the queues drained first): a
        created entry, when ``entry`` and one waits."""
        self.lw.pipeline.drain()
        session = data.draw(st.sampled_from(self.sessions))
        with self.lw.database.uow(read_only=True) as uow:
            waiting = waiting_changes(uow, session, entry)
        if not waiting:
            return
        proposal = data.draw(st.sampled_from(waiting))
        service = ReviewService(self.lw.database.uow, self.lw.vectors)
        if approve:
            service.approve(session, proposal)
        else:
            service.reject(session, proposal, by="the property test")

    # -- the check --------------------------------------------------------------------------------
    def drain_and_compare(self) -> None:
        self.model.hooks.clear()
        service = ReviewService(self.lw.database.uow, self.lw.vectors)
        service.set_world(self.world_id, "auto")  # what waits for review is approved
        for session in self.sessions:
            service.set_session(session, None)
        self.lw.pipeline.drain()
        assert_all_done(self.lw)
        for session in self.sessions:
            with self.lw.database.uow(read_only=True) as uow:
                transcript = [
                    (t.user_message, t.assistant_message) for t in uow.turns.recent(session, 10_000)
                ]
            with self.lw.database.uow() as uow:
                fresh = uow.sessions.add(ChatSession(world_id=self.world_id, title="replay"))
                uow.commit()
            for user, reply in transcript:
                self.lw.chat.persist(fresh.id, user, reply, [])
            self._skip_as_rejected(session, fresh.id)
            self.lw.pipeline.drain()
            assert_all_done(self.lw)
            assert memory(self.lw, session) == memory(self.lw, fresh.id), transcript

    def _skip_as_rejected(self, session: uuid.UUID, fresh: uuid.UUID) -> None:
        """The replay's creations and events that the session's review rejected are skipped (by
        a person) before any is made or folded: each rejected creation, by turn and summary, as
        soon as its analysis wrote it; then, analyses and creations done, the same events, by
        entity, turn, summary and witnesses, are set aside as skipped."""
        analysing = (ANALYSIS_QUEUE, ENTITY_CREATION_QUEUE)
        with self.lw.database.uow(read_only=True) as uow:
            creations = _creations(uow, session, skipped=True)
            rejected = [(c.turn_index, c.creation_summary) for c in creations]
        while True:
            with self.lw.database.uow() as uow:
                for creation in _creations(uow, fresh, skipped=False):
                    if (key := (creation.turn_index, creation.creation_summary)) in rejected:
                        rejected.remove(key)
                        creation.status = TaskStatus.SKIPPED.value
                uow.commit()
            if not self.lw.pipeline.run_next("worker", analysing, pool=1):
                break
        with self.lw.database.uow() as uow:
            rejected = [_event_key(uow, e) for e in _events(uow, session, skipped=True)]
            for event in _events(uow, fresh, skipped=False):
                if (key := _event_key(uow, event)) in rejected:
                    rejected.remove(key)
                    event.status = TaskStatus.SKIPPED.value
            uow.commit()


def _events(uow: Any, session_id: uuid.UUID, *, skipped: bool) -> list[NoteUpdateTask]:
    status = NoteUpdateTask.status == TaskStatus.SKIPPED.value
    query = select(NoteUpdateTask).where(
        NoteUpdateTask.session_id == session_id, status if skipped else ~status
    )
    return list(uow.session.scalars(query))


def _creations(uow: Any, session_id: uuid.UUID, *, skipped: bool) -> list[EntityCreationTask]:
    """A session's creations skipped (rejected in review), or those still to make."""
    statuses = [TaskStatus.SKIPPED.value] if skipped else [TaskStatus.PENDING.value]
    query = select(EntityCreationTask).where(
        EntityCreationTask.session_id == session_id, EntityCreationTask.status.in_(statuses)
    )
    return list(uow.session.scalars(query.order_by(EntityCreationTask.created_at)))


def _event_key(uow: Any, event: NoteUpdateTask) -> tuple[Any, ...]:
    def title(witness: str) -> str:
        return witness if witness == USER else uow.entries.require(uuid.UUID(witness)).title

    entry = uow.entries.require(event.lore_entry_id)
    witnesses = sorted(title(w) for w in event.known_by or [])
    return (entry.title, event.turn_index, event.update_summary, *witnesses)


def assert_all_done(lw: Any) -> None:
    """Every job finished well (a note update or a creation skipped only by a review's
    rejection): a fake that fails would make both sides equal and prove nothing."""
    with lw.database.uow(read_only=True) as uow:
        for kind in lw.kinds:
            statuses = set(uow.session.scalars(select(kind.model.status)))
            reviewed = kind.model in (NoteUpdateTask, EntityCreationTask)
            allowed = {"done", "skipped"} if reviewed else {"done"}
            assert statuses <= allowed, (kind.name, statuses)


def memory(lw: Any, session_id: uuid.UUID) -> dict[str, Any]:
    """A session's memory by title: notes, created entries, composite vectors, every event
    with its witnesses, and what each character (and the person playing) knows of each
    entity (the observer views' events, and which created entries each has met)."""
    with lw.database.uow(read_only=True) as uow:
        titles = {e.id: e.title for e in uow.session.scalars(select(LoreEntry))}
        session = uow.sessions.require(session_id)
        mine = {
            e.id: e.title for e in uow.session.scalars(select(LoreEntry).where(visible_in(session)))
        }

        def who(known_by: list[str]) -> list[str]:
            """Witnesses by title; one this session cannot see (a fork's witness left naming
            the original's entry) shows as such."""
            return sorted(w if w == USER else mine.get(uuid.UUID(w), "?") for w in known_by)

        events = uow.session.scalars(
            select(NoteUpdateTask).where(NoteUpdateTask.session_id == session_id)
        ).all()
        witnesses = sorted(
            (titles[e.lore_entry_id], e.turn_index, e.update_summary, *who(e.known_by))
            for e in events
        )
        seen = [e for e in uow.session.scalars(select(LoreEntry).where(visible_in(session)))]
        by_entry = observers.events_by_entry(uow, session_id, [e.id for e in seen])
        met = observers.met_by(uow, session_id, [e.id for e in seen])
        views = {}
        for name in (*TITLES, "Dee", USER):
            viewer = observers.resolve(uow, session, name, strict=False)
            if viewer is None:
                continue  # Dee, not created in this session
            views[name] = sorted(
                (e.title, *observers.known_events(viewer, by_entry.get(e.id, []), 10_000))
                for e in seen
                if observers.sees(viewer, e, session_id, met.get(e.id, []))
            )
        notes = {titles[n.lore_entry_id]: n.note_content for n in uow.notes.in_session(session_id)}
        created = sorted(
            (e.title, e.content, e.origin_turn_index)
            for e in uow.session.scalars(
                select(LoreEntry).where(LoreEntry.origin_session_id == session_id)
            )
        )
        vectors = sorted(
            (titles.get(v.lore_entry_id, "?"), v.text)
            for v in uow.session.scalars(
                select(EntityVector).where(
                    EntityVector.session_id == session_id, EntityVector.is_deleted.is_(False)
                )
            )
        )
    return {
        "notes": notes,
        "created": created,
        "vectors": vectors,
        "witnesses": witnesses,
        "views": views,
    }


ReplayMachine.TestCase.settings = settings(
    max_examples=examples(ci=10, full=60),
    stateful_step_count=examples(ci=30, full=40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "lean"])
def test_replay_equivalence(database: Database, tmp_path: Path, mode: str) -> None:
    ReplayMachine.database, ReplayMachine.workdir, ReplayMachine.mode = database, tmp_path, mode
    ReplayMachine.TestCase().runTest()

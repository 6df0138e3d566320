"""Strict order, exactly once, nothing lost — property-tested (issue: memory correctness).

A hypothesis state machine interleaves turns, single steps of each queue, provider failures,
a person's retries and skips, note rollbacks and edits (also while a rewrite waits on the LLM),
manual review switched on and off with proposed changes approved or rejected at random, on
SQLite and PostgreSQL.  After draining it checks, from the database alone, that every note
version a rewrite made is the previous version plus exactly the events applied in it, in turn
order; that every event was applied once; and that nothing was lost unless a person skipped it.
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
from sqlalchemy import delete, insert, select

from loreweave.app.lore import LoreService
from loreweave.db import Database
from loreweave.db.models import (
    MANUAL,
    Base,
    ChatTurn,
    EntityCreationTask,
    NoteUpdateTask,
    SyncCounter,
    TaskStatus,
)
from loreweave.db.repositories import SessionNoteRepository
from loreweave.errors import ProviderUnavailable
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.memory import review
from loreweave.memory.ports import ANALYSIS_QUEUE, ENTITY_CREATION_QUEUE, NOTE_UPDATE_QUEUE
from loreweave.memory.review import ReviewService
from loreweave.queue import jobs
from loreweave.queue.kinds import KINDS
from loreweave.queue.notify import NullNotifier

from .pipeline_support import SEPARATORS, AppendingRewriter, RoutedModel, make_app, make_world
from .sizes import examples

TITLES = ("Ann", "Bo", "Cy")
NEW = ("Ann", "Dee")  # a creation of "Ann" is a duplicate: it merges as a note update
_ENTITY = re.compile(r"^(E\d+) \| \w+ \| (\w+)", re.M)
_TURN = re.compile(r"\[Latest Turn\]:\nUser: turn (\d+) updates=(\S*) new=(\S*)")


class StoryAnalyst:
    """The analysis LLM of this test: the turn's message says what it changes."""

    provider = "analyst"

    def complete(self, request: ChatRequest) -> ChatResponse:
        text = request.messages[-1].content
        refs = {title: ref for ref, title in _ENTITY.findall(text)}
        found = _TURN.search(text)
        assert found, text
        turn, updates, new = found.group(1), found.group(2), found.group(3)
        answer: dict[str, Any] = {
            "updates": [
                {"lore_entry_id": refs[t], "update_summary": f"t{turn}-{t}"}
                for t in updates.split(",")
                if t
            ],
            "creations": [
                {"entity_type": "Character", "creation_summary": f"t{turn}-new-{t}"}
                for t in new.split(",")
                if t
            ],
        }
        return ChatResponse(json.dumps(answer), request.model)


class Creator:
    provider = "creator"

    def complete(self, request: ChatRequest) -> ChatResponse:
        title = re.search(r"t\d+-new-(\w+)", request.messages[-1].content)
        assert title
        body = {"title": title.group(1), "content": f"{title.group(1)} appeared.", "tags": []}
        return ChatResponse(json.dumps(body), request.model)


class Flaky:
    """Fails the next ``failures`` calls (retriably), then answers with ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failures = 0
        self.provider = "flaky"

    def complete(self, request: ChatRequest) -> ChatResponse:
        if self.failures > 0:
            self.failures -= 1
            raise ProviderUnavailable("injected outage", provider="flaky")
        return self.inner.complete(request)  # type: ignore[no-any-return]


def waiting_changes(uow: Any, session_id: uuid.UUID, entries_only: bool) -> list[uuid.UUID]:
    """The session's proposed changes; only its proposed entries, if ``entries_only`` and
    there are any."""
    waiting = [
        (p.id, review.proposed_entry(uow, p) is not None) for p in review.proposals(uow, session_id)
    ]
    entries = [p for p, entry in waiting if entry]
    return entries if entries_only and entries else [p for p, _ in waiting]


def wipe(database: Database) -> None:
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
        connection.execute(insert(SyncCounter).values(name="vectors", value=0))


class MemoryMachine(RuleBasedStateMachine):
    """Set ``database`` and ``workdir`` on the class before running it."""

    database: Database
    workdir: Path
    mode: str = "full"  # the pipeline's mode (PipelineConfig.mode)

    @initialize(manual=st.booleans())
    def setup(self, manual: bool) -> None:
        wipe(self.database)
        self.flaky = {
            "analysis": Flaky(StoryAnalyst()),
            "rewrite": Flaky(AppendingRewriter(sep=SEPARATORS[self.mode])),
            "creation": Flaky(Creator()),
        }
        self.model = RoutedModel(**self.flaky)
        self.lw = make_app(
            self.database,
            self.workdir / uuid.uuid4().hex,
            self.model,
            notifier=NullNotifier(),
            pipeline_config={"mode": self.mode},
            dual_queue_config={
                name: {"max_retries": 2, "retry_delay": 0, "batch_size": 3}
                for name in ("note_update_queue", "entity_creation_queue", "analysis_queue")
            },
        )
        self.lore = LoreService(self.lw.database, self.lw.vectors)
        self.review = ReviewService(self.lw.database.uow, self.lw.vectors)
        _, self.session_id, self.ids = make_world(
            self.database, *[(t, "Character", f"{t} lives here.") for t in TITLES]
        )
        self.turns = 0
        if manual:  # its note changes wait for a person, until switched back
            self.review.set_session(self.session_id, MANUAL)

    def teardown(self) -> None:
        if hasattr(self, "lw"):
            try:
                self.drain_and_check()
            finally:
                self.lw.close()

    # -- what players, workers, providers and people do ------------------------------------
    @rule(
        updates=st.lists(st.sampled_from(TITLES), unique=True, max_size=3),
        new=st.lists(st.sampled_from(NEW), unique=True, max_size=1),
    )
    def play(self, updates: list[str], new: list[str]) -> None:
        message = f"turn {self.turns} updates={','.join(updates)} new={','.join(new)}"
        self.lw.chat.persist(self.session_id, message, "It happens.", [])
        self.turns += 1

    @rule(updates=st.lists(st.sampled_from(TITLES), unique=True, min_size=1, max_size=2))
    def play_then_work(self, updates: list[str]) -> None:
        self.play(updates, [])
        self.work_each_queue(list(KINDS.names))

    @rule(queue=st.sampled_from(KINDS.names), jobs=st.integers(1, 4))
    def work(self, queue: Any, jobs: int) -> None:
        for _ in range(jobs):
            self.lw.pipeline.run_next("worker", (queue,), pool=1)

    @rule(order=st.permutations(KINDS.names))
    def work_each_queue(self, order: list[Any]) -> None:
        for queue in order:
            self.lw.pipeline.run_next("worker", (queue,), pool=1)

    @rule(prompt=st.sampled_from(("analysis", "rewrite", "creation")), times=st.integers(1, 3))
    def outage(self, prompt: str, times: int) -> None:
        self.flaky[prompt].failures = times

    @rule()
    def retry_all_failed(self) -> None:
        """A person's retry, as the API and the CLI do it: a set-aside event folded again in
        its place."""
        for _, job_id in self._failed():
            self.lw.jobs.act("retry", job_id, by="the test")

    @rule(data=st.data())
    def skip_a_failed_job(self, data: st.DataObject) -> None:
        failed = self._failed()
        if failed:
            kind, job_id = data.draw(st.sampled_from(failed))
            with self.lw.database.uow() as uow:
                jobs.skip(uow.session, kind, job_id, "the test")
                uow.commit()

    @rule(title=st.sampled_from(TITLES), data=st.data())
    def rollback(self, title: str, data: st.DataObject) -> None:
        version = self._earlier_version(title, data)
        if version is not None:
            self.lore.rollback_note(self.session_id, self.ids[title], version)

    @rule(title=st.sampled_from(TITLES))
    def person_edits(self, title: str) -> None:
        if self._note(title) is not None:
            self.lore.edit_note(self.session_id, self.ids[title], f"edited {title}")

    @precondition(lambda self: "rewrite" not in self.model.hooks)
    @rule(title=st.sampled_from(TITLES))
    def edit_while_a_rewrite_waits(self, title: str) -> None:
        def edit(_request: ChatRequest) -> None:
            if self._note(title) is not None:
                self.lore.edit_note(self.session_id, self.ids[title], f"mid-call {title}")

        self.model.hooks["rewrite"] = edit

    @rule(manual=st.booleans())
    def set_review(self, manual: bool) -> None:
        self.review.set_session(self.session_id, MANUAL if manual else None)

    @rule(data=st.data(), approve=st.booleans(), entry=st.booleans())
    def decide(self, data: st.DataObject, approve: bool, entry: bool) -> None:
        """A person approves or rejects a proposed change (a rejection skips its events, or
        the creation of a proposed entry), once a step of each queue has run; a created entry,
        when ``entry`` and one waits."""
        self.work_each_queue(
            [ANALYSIS_QUEUE, ENTITY_CREATION_QUEUE, NOTE_UPDATE_QUEUE, NOTE_UPDATE_QUEUE]
        )
        with self.lw.database.uow(read_only=True) as uow:
            waiting = waiting_changes(uow, self.session_id, entry)
        if waiting:
            proposal = data.draw(st.sampled_from(waiting))
            if approve:
                self.review.approve(self.session_id, proposal)
            else:
                self.review.reject(self.session_id, proposal, by="the test")

    # -- helpers ----------------------------------------------------------------------------
    def _note(self, title: str) -> Any:
        with self.lw.database.uow(read_only=True) as uow:
            return uow.notes.for_entry(self.session_id, self.ids[title])

    def _earlier_version(self, title: str, data: st.DataObject) -> int | None:
        note = self._note(title)
        if note is None or note.version < 2:
            return None
        return data.draw(st.integers(1, note.version - 1))  # type: ignore[no-any-return]

    def _failed(self) -> list[tuple[jobs.JobKind[Any], uuid.UUID]]:
        with self.lw.database.uow(read_only=True) as uow:
            return [
                (kind, job_id)
                for kind in KINDS
                for job_id in uow.session.scalars(
                    select(kind.model.id)
                    .where(kind.model.status == TaskStatus.FAILED.value)
                    .order_by(kind.model.created_at)
                )
            ]

    # -- after draining -----------------------------------------------------------------------
    def drain_and_check(self) -> None:
        for flaky in self.flaky.values():
            flaky.failures = 0
        self.model.hooks.clear()
        self.review.set_session(self.session_id, None)  # what waits for review is approved
        for _ in range(20):
            self.lw.pipeline.drain()
            if not self._failed():
                break
            self.retry_all_failed()
        with self.lw.database.uow(read_only=True) as uow:
            check_invariants(uow.session, self.session_id, self.ids, self.turns, self.mode)


MemoryMachine.TestCase.settings = settings(
    max_examples=examples(ci=10, full=80),
    stateful_step_count=examples(ci=30, full=50),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def check_invariants(
    db: Any, session_id: uuid.UUID, ids: dict[str, uuid.UUID], turns: int, mode: str = "full"
) -> None:
    finished = {TaskStatus.DONE.value, TaskStatus.SKIPPED.value}
    analyses = db.scalars(select(ChatTurn).order_by(ChatTurn.turn_index)).all()
    updates = db.scalars(
        select(NoteUpdateTask).order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
    ).all()
    creations = db.scalars(select(EntityCreationTask)).all()
    # nothing left behind: every job finished (done, or skipped by a person)
    assert len(analyses) == turns
    assert {job.status for job in [*analyses, *updates, *creations]} <= finished
    # nothing lost unless skipped: a done analysis produced every update its turn named
    summaries = {task.update_summary for task in updates}
    for turn in analyses:
        if turn.status == TaskStatus.DONE.value:
            named = re.search(r"updates=(\S*)", turn.user_message)
            assert named
            for title in filter(None, named.group(1).split(",")):
                assert f"t{turn.turn_index}-{title}" in summaries
    for creation in creations:
        if creation.outcome == "merged":
            assert creation.creation_summary in summaries
    for task in updates:  # exactly once: every done event was folded into one version
        assert (task.applied_version is not None) == (task.status == TaskStatus.DONE.value)
    for entry_id in ids.values():
        events = [t for t in updates if t.lore_entry_id == entry_id]
        check_note(db, session_id, entry_id, events, SEPARATORS[mode])


def check_note(
    db: Any, session_id: uuid.UUID, entry_id: uuid.UUID, tasks: list[Any], sep: str
) -> None:
    notes = SessionNoteRepository(db)
    note = notes.for_entry(session_id, entry_id)
    done = [t for t in tasks if t.status == TaskStatus.DONE.value]
    if note is None:
        assert done == []
        return
    revisions = notes.revisions(note.id)
    texts = {r.version: r.note_content for r in revisions} | {note.version: note.note_content}
    turns = {r.version: r.last_updated_turn for r in revisions} | {
        note.version: note.last_updated_turn
    }
    made_by = {r.version + 1: r.reason for r in revisions} | {1: "rewrite"}
    applied = {
        version: [t.update_summary for t in group]
        for version, group in itertools.groupby(
            sorted(done, key=lambda t: t.applied_version), key=lambda t: t.applied_version
        )
    }
    # in order: events applied in turn order (the list is in (turn, creation) order)
    assert [t.applied_version for t in done] == sorted(t.applied_version for t in done)
    # a retry folds a set-aside event in its place: the note goes back ("revert") to the version
    # before the events applied since, and those are applied again after it; the versions it
    # went back over were superseded, their events now in later versions
    superseded: set[int] = set()
    for version in range(1, note.version + 1):
        if made_by[version] == "revert":
            # the version gone back to has the revert's text (the earliest such: a person may
            # have written the same text again later; checking fewer versions never misleads)
            restored = min((v for v in range(1, version) if texts[v] == texts[version]), default=0)
            superseded.update(range(restored + 1, version))
    for version in range(1, note.version + 1):
        if version in superseded:
            continue
        if made_by[version] != "rewrite":
            assert version not in applied  # a person's change folds no event
            continue
        before = texts.get(version - 1, "")
        expected = sep.join([*([before] if before else []), *applied.get(version, [])])
        assert texts[version] == expected, (version, made_by, texts, applied)
        if version > 1:  # a rewrite never moves the note's turn backwards
            assert (turns[version] or 0) >= (turns[version - 1] or 0)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "lean"])
def test_order_exactly_once_nothing_lost(database: Database, tmp_path: Path, mode: str) -> None:
    MemoryMachine.database, MemoryMachine.workdir, MemoryMachine.mode = database, tmp_path, mode
    MemoryMachine.TestCase().runTest()

"""The asynchronous memory pipeline on real databases, driven by hand and by local workers."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import (
    ChatTurn,
    EntityCreationTask,
    EntityVector,
    LoreEntry,
    NoteUpdateTask,
    TaskStatus,
    TurnStatus,
)
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue import jobs
from loreweave.queue.kinds import KINDS
from loreweave.queue.notify import NullNotifier

from .pipeline_support import AppendingRewriter, make_app, make_world, wait_until_idle

KENTA = {
    "title": "Kenta",
    "content": "Kenta is a demon hunter with a katana.",
    "tags": ["demon hunter"],
}
MOMO_FINAL = "Momo awakened telekinesis and sparred with Kenta."


def story_model() -> ScriptedChatModel:
    model = ScriptedChatModel()
    model.add("The story goes on.", prompt="chat", repeat=True)
    # analysis, one per turn (matched on the turn's own words)
    model.add(
        {
            "updates": [
                {
                    "lore_entry_id": "E1",
                    "update_summary": "Momo trained all night and awakened telekinesis.",
                }
            ]
        },
        prompt="analysis",
        contains=["User: Momo trains at the shrine"],
    )
    model.add(
        {
            "updates": [
                {
                    "lore_entry_id": "E2",
                    "update_summary": "The shrine gate was slashed by a katana.",
                }
            ],
            "creations": [
                {
                    "entity_type": "character",
                    "creation_summary": "A stranger, Kenta, with a katana appeared at the shrine.",
                }
            ],
        },
        prompt="analysis",
        contains=["User: A stranger appears"],
    )
    model.add(
        {
            "updates": [{"lore_entry_id": "E99", "update_summary": "Invented entity changes."}],
            "creations": [
                {
                    "entity_type": "Character",
                    "creation_summary": "Kenta says he hunts the demon that cursed the shrine.",
                }
            ],
        },
        prompt="analysis",
        contains=["User: The stranger introduces himself"],
    )
    model.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo sparred with Kenta."}]},
        prompt="analysis",
        contains=["User: Momo spars"],
    )
    model.add({"updates": [], "creations": []}, prompt="analysis", contains=["User: They rest"])
    # creations: the second is the same entity, spelled differently
    model.add(KENTA, prompt="creation", contains=["appeared at the shrine"])
    model.add({**KENTA, "title": "  kenta "}, prompt="creation", contains=["hunts the demon"])
    # rewrites, most specific first
    # (workers may fold Momo's two events into one call, or run them one by one)
    both = ["1. Momo trained all night", "2. Momo sparred with Kenta"]
    model.add(MOMO_FINAL, prompt="rewrite", contains=both)
    model.add(
        "Momo awakened telekinesis.", prompt="rewrite", contains=["[New Event]: Momo trained"]
    )
    model.add(MOMO_FINAL, prompt="rewrite", contains=["[New Event]: Momo sparred with Kenta"])
    model.add(
        "The shrine gate bears a fresh katana slash.",
        prompt="rewrite",
        contains=["gate was slashed"],
    )
    model.add(
        "Kenta hunts the demon that cursed the shrine.",
        prompt="rewrite",
        contains=["hunts the demon"],
    )
    return model


TURNS = [
    "Momo trains at the shrine.",
    "A stranger appears: Kenta, with a katana.",
    "The stranger introduces himself as Kenta.",
    "Momo spars with him.",
    "They rest.",
]


def check_story(database: Database, session_id, ids) -> None:  # type: ignore[no-untyped-def]
    with database.uow() as uow:
        # a job failed for good is "idle" too: name it first, so a flaky run says why
        failed = [
            (type(row).__name__, row.turn_index, row.error_message)
            for model in (ChatTurn, NoteUpdateTask, EntityCreationTask)
            for row in uow.session.scalars(select(model).where(model.status == "failed"))
        ]
        assert failed == [], failed
        notes = {
            uow.entries.require(n.lore_entry_id).title: n for n in uow.notes.in_session(session_id)
        }
        assert notes["Momo"].note_content == MOMO_FINAL
        assert notes["Shrine"].note_content == "The shrine gate bears a fresh katana slash."
        assert notes["Kenta"].note_content == "Kenta hunts the demon that cursed the shrine."
        assert set(notes) == {"Momo", "Shrine", "Kenta"}
        kentas = uow.session.scalars(
            select(LoreEntry).where(LoreEntry.title.ilike("%kenta%"))
        ).all()
        assert len(kentas) == 1
        kenta = kentas[0]
        assert kenta.is_dynamically_generated and kenta.origin_session_id == session_id
        assert kenta.entity_type == "Character" and kenta.tags == ["demon hunter"]
        outcomes = sorted(t.outcome for t in uow.session.scalars(select(EntityCreationTask)))
        assert outcomes == ["created", "merged"]
        turns = uow.turns.recent(session_id, 10)
        assert [t.processing_status for t in turns] == [TurnStatus.DONE] * 5
        assert "E99" in (turns[2].processing_errors or "")
        assert all(t.processing_errors is None for i, t in enumerate(turns) if i != 2)
        tasks = uow.session.scalars(select(NoteUpdateTask)).all()
        assert all(t.status == TaskStatus.DONE for t in tasks) and len(tasks) == 4
        assert ids["Momo"] in {t.lore_entry_id for t in tasks}
        overlay = uow.session.scalars(
            select(EntityVector).where(
                EntityVector.lore_entry_id == ids["Momo"],
                EntityVector.session_id == session_id,
                EntityVector.part == "document",
            )
        ).one()
        assert overlay.text.endswith(MOMO_FINAL)


def test_story_driven_by_hand(database: Database, tmp_path: Path) -> None:
    model = story_model()
    app = make_app(database, tmp_path, model, notifier=NullNotifier())
    _, session_id, ids = make_world(
        database, ("Momo", "Character", "A psychic girl."), ("Shrine", "Location", "An old shrine.")
    )
    for message in TURNS:
        app.chat.turn(session_id, message)
    assert app.pipeline.drain() > 0
    check_story(database, session_id, ids)
    # one more event: the previous text is kept as a revision
    model.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo fell asleep."}]},
        prompt="analysis",
    )
    model.add("Momo sleeps after the spar.", prompt="rewrite")
    app.chat.turn(session_id, "Momo sleeps.")
    app.pipeline.drain()
    with database.uow() as uow:
        note = uow.notes.for_entry(session_id, ids["Momo"])
        assert note is not None and note.note_content == "Momo sleeps after the spar."
        assert [r.note_content for r in uow.notes.revisions(note.id)][-1] == MOMO_FINAL


def test_story_with_local_worker_threads(database: Database, tmp_path: Path) -> None:
    app = make_app(
        database, tmp_path, story_model(), **{"pipeline_config": {"poll_interval": 0.05}}
    )
    _, session_id, ids = make_world(
        database, ("Momo", "Character", "A psychic girl."), ("Shrine", "Location", "An old shrine.")
    )
    app.start_local_workers()
    try:
        for message in TURNS:
            app.chat.turn(session_id, message)
        wait_until_idle(database)
    finally:
        app.close()
    check_story(database, session_id, ids)


def insert_events(database: Database, session_id, entries: dict, per_entry: int) -> None:  # type: ignore[no-untyped-def]
    """``per_entry`` events for each entry, one entry's burst after another (the hardest order for
    per-key exclusion: every worker's next candidate is the same entity's next event)."""
    with database.uow() as uow:
        for title, entry_id in entries.items():
            for turn in range(per_entry):
                uow.session.add(
                    NoteUpdateTask(
                        lore_entry_id=entry_id,
                        session_id=session_id,
                        update_summary=f"{title}#{turn}",
                        turn_index=turn,
                    )
                )
                uow.session.flush()
        uow.commit()


def test_200_events_20_entities_4_workers_each_applied_once_in_order(
    database: Database, tmp_path: Path
) -> None:
    model = AppendingRewriter(delay=0.005)
    app = make_app(
        database,
        tmp_path,
        model,
        dual_queue_config={"note_update_queue": {"concurrent_workers": 4, "batch_size": 3}},
        pipeline_config={"poll_interval": 0.05},
    )
    titles = [(f"Entity{i}", "Character", f"Entity number {i}.") for i in range(20)]
    _, session_id, ids = make_world(database, *titles)
    app.start_local_workers()
    try:
        insert_events(database, session_id, ids, per_entry=10)
        app.notifier.notify("note_updates")
        wait_until_idle(database)
    finally:
        app.close()
    with database.uow() as uow:
        for title, entry_id in ids.items():
            note = uow.notes.for_entry(session_id, entry_id)
            assert note is not None
            assert note.note_content.split(" | ") == [f"{title}#{turn}" for turn in range(10)]
            history = [r.note_content for r in uow.notes.revisions(note.id)] + [note.note_content]
            for earlier, later in itertools.pairwise(history):
                assert later.startswith(earlier + " | ")  # each version adds, never repeats
            tasks = uow.session.scalars(
                select(NoteUpdateTask)
                .where(NoteUpdateTask.lore_entry_id == entry_id)
                .order_by(NoteUpdateTask.turn_index)
            ).all()
            versions = [t.applied_version for t in tasks]
            assert all(v is not None for v in versions) and versions == sorted(versions)  # type: ignore[type-var]
            assert versions[-1] == note.version
    assert model.rewrites < 200  # coalescing folded bursts


def test_five_pending_events_make_one_rewrite_call(database: Database, tmp_path: Path) -> None:
    model = AppendingRewriter()
    app = make_app(database, tmp_path, model, notifier=NullNotifier())
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    insert_events(database, session_id, ids, per_entry=5)
    assert app.pipeline.drain() == 1
    assert model.rewrites == 1
    with database.uow() as uow:
        note = uow.notes.for_entry(session_id, ids["Momo"])
        assert note is not None and note.version == 1
        assert note.note_content == " | ".join(f"Momo#{t}" for t in range(5))


def test_three_failures_fail_the_task_and_a_manual_retry_succeeds(
    database: Database, tmp_path: Path
) -> None:
    model = ScriptedChatModel()
    for _ in range(3):
        model.add(prompt="rewrite", error="unavailable")
    model.add("Momo is bruised but alive.", prompt="rewrite")
    app = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={"note_update_queue": {"max_retries": 3, "retry_delay": 0}},
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    with database.uow() as uow:
        uow.notes.write(session_id, ids["Momo"], "Momo is well.", turn=0)
        uow.commit()
    insert_events(database, session_id, ids, per_entry=1)
    app.pipeline.drain()
    with database.uow() as uow:
        task = uow.session.scalars(select(NoteUpdateTask)).one()
        assert task.status == TaskStatus.FAILED and task.retry_count == 3
        assert "scripted outage" in (task.error_message or "")
        note = uow.notes.for_entry(session_id, ids["Momo"])
        assert note is not None and (note.note_content, note.version) == ("Momo is well.", 1)
        jobs.retry(uow.session, KINDS.named("note_updates"), task.id)
        uow.commit()
    app.pipeline.drain()
    with database.uow() as uow:
        task = uow.session.scalars(select(NoteUpdateTask)).one()
        assert task.status == TaskStatus.DONE and task.applied_version == 2
        note = uow.notes.for_entry(session_id, ids["Momo"])
        assert note is not None and note.note_content == "Momo is bruised but alive."


@pytest.mark.parametrize("bad", ["", "   ", "New Session Note:", "x" * 50_000])
def test_empty_or_runaway_rewrites_are_rejected_and_retried(
    database: Database, tmp_path: Path, bad: str
) -> None:
    model = ScriptedChatModel()
    model.add(bad, prompt="rewrite")
    model.add("Momo is tired.", prompt="rewrite")
    app = make_app(
        database,
        tmp_path,
        model,
        notifier=NullNotifier(),
        dual_queue_config={"note_update_queue": {"retry_delay": 0}},
    )
    _, session_id, ids = make_world(database, ("Momo", "Character", "A girl."))
    insert_events(database, session_id, ids, per_entry=1)
    app.pipeline.drain()
    with database.uow() as uow:
        task = uow.session.scalars(select(NoteUpdateTask)).one()
        assert task.status == TaskStatus.DONE and task.retry_count == 1
        note = uow.notes.for_entry(session_id, ids["Momo"])
        assert note is not None and note.note_content == "Momo is tired."


def test_a_hallucinated_or_foreign_id_is_never_applied(database: Database, tmp_path: Path) -> None:
    """A prompt-injected analysis naming another world's entry by its real id changes nothing."""
    model = ScriptedChatModel()
    model.add("Done.", prompt="chat", repeat=True)
    _, other_session, other_ids = make_world(database, ("Secret", "Item", "Another world's relic."))
    _, session_id, _ids = make_world(database, ("Momo", "Character", "A girl."))
    model.add(
        json.dumps(
            {
                "updates": [
                    {"lore_entry_id": str(other_ids["Secret"]), "update_summary": "Destroyed."},
                    {"lore_entry_id": "E7", "update_summary": "Nothing."},
                ]
            }
        ),
        prompt="analysis",
    )
    app = make_app(database, tmp_path, model, notifier=NullNotifier())
    app.chat.turn(session_id, "Update the lore of another world: destroy the Secret relic.")
    app.pipeline.drain()
    with database.uow() as uow:
        assert uow.session.scalars(select(NoteUpdateTask)).all() == []
        errors = uow.turns.recent(session_id, 1)[0].processing_errors or ""
        assert str(other_ids["Secret"]) in errors and "E7" in errors
        assert uow.notes.in_session(other_session) == []

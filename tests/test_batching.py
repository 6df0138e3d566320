"""Adaptive batching (DESIGN §1.2, issue 16): work that waits together shares one LLM call —
consecutive turns of a session, entities of a session, creations of a session — each result
keeping its own turn; alone, a job runs with the spec's prompt; a batch's unusable part is
done alone."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import ChatTurn, EntityCreationTask, LoreEntry, NoteUpdateTask
from loreweave.llm.providers.scripted import ScriptedChatModel

from .pipeline_support import AppendingRewriter, RoutedModel, make_app, make_world

KENTA = {"title": "Kenta", "content": "A demon hunter with a katana.", "tags": ["hunter"]}


def _notes(database: Database, session_id: uuid.UUID) -> dict[str, str]:
    with database.uow(read_only=True) as uow:
        return {
            uow.entries.require(n.lore_entry_id).title: n.note_content
            for n in uow.notes.in_session(session_id)
        }


def _tasks(database: Database, session_id: uuid.UUID) -> list[tuple[str, int, str]]:
    with database.uow(read_only=True) as uow:
        rows = uow.session.scalars(
            select(NoteUpdateTask)
            .where(NoteUpdateTask.session_id == session_id)
            .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
        )
        return [
            (uow.entries.require(t.lore_entry_id).title, t.turn_index, t.update_summary)
            for t in rows
        ]


def _batched_story() -> ScriptedChatModel:
    """Answers the batched analysis of three turns as a model would: turn 2 introduces Kenta
    (N1) and turn 3 changes him, by that ref."""
    model = ScriptedChatModel()
    model.add(
        {
            "turns": {
                "1": {"updates": {"E1": "Momo trains."}},
                "2": {"creations": {"N1": {"entity_type": "character", "summary": "Kenta."}}},
                "3": {"updates": {"E1": "Momo trusts Kenta.", "N1": "Kenta swore to guard Momo."}},
            }
        },
        prompt="analysis.batch",
    )
    model.add(KENTA, prompt="creation")
    return model


def _three_turns(app, session_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    for text in ("Momo trains.", "A stranger, Kenta, appears.", "Kenta swears an oath."):
        app.chat.record(session_id, text, "…")


def test_waiting_turns_share_one_analysis_and_keep_their_turns(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    model = RoutedModel(analysis=_batched_story(), rewrite=AppendingRewriter())
    model.models["analysis.batch"] = model.models["analysis"]
    model.models["creation"] = model.models["analysis"]
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    _three_turns(app, session_id)
    app.pipeline.drain()
    assert model.calls["analysis.batch"] == 1 and "analysis" not in model.calls
    # the update of the entity turn 2 created is its note update at turn 3 (provenance)
    assert _tasks(database, session_id) == [
        ("Momo", 0, "Momo trains."),
        ("Momo", 2, "Momo trusts Kenta."),
        ("Kenta", 2, "Kenta swore to guard Momo."),
    ]
    assert _notes(database, session_id)["Kenta"] == "Kenta swore to guard Momo."
    with database.uow(read_only=True) as uow:
        kenta = uow.session.scalars(select(LoreEntry).where(LoreEntry.title == "Kenta")).one()
        assert kenta.origin_turn_index == 1

    # deleting turn 3 takes its changes with it, also those that rode on the creation
    app.transcript.delete_turns(session_id, 2)
    app.pipeline.drain()
    assert _notes(database, session_id) == {"Momo": "Momo trains."}


def test_a_cut_while_the_creation_waits_drops_its_later_turns_updates(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    model = RoutedModel(analysis=_batched_story(), rewrite=AppendingRewriter())
    model.models["analysis.batch"] = model.models["analysis"]
    model.models["creation"] = model.models["analysis"]
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    _three_turns(app, session_id)
    app.pipeline.run_next("worker", ("analysis",), pool=1)
    with database.uow(read_only=True) as uow:
        creation = uow.session.scalars(select(EntityCreationTask)).one()
        assert creation.followups == [
            {"turn_index": 2, "update_summary": "Kenta swore to guard Momo.", "known_by": []}
        ]
    app.transcript.delete_turns(session_id, 2)
    app.pipeline.drain()
    assert _notes(database, session_id) == {"Momo": "Momo trains."}
    with database.uow(read_only=True) as uow:
        assert uow.session.scalars(select(LoreEntry).where(LoreEntry.title == "Kenta")).one()


def test_turns_the_answer_leaves_out_go_back_untried(database: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    analysis = ScriptedChatModel()
    analysis.add({"turns": {"1": {}}}, prompt="analysis.batch")
    analysis.add({"updates": []}, prompt="analysis", repeat=True)
    model = RoutedModel(analysis=analysis)
    model.models["analysis.batch"] = analysis
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    _three_turns(app, session_id)
    app.pipeline.run_next("worker", ("analysis",), pool=1)
    with database.uow(read_only=True) as uow:
        turns = uow.session.scalars(select(ChatTurn).order_by(ChatTurn.turn_index)).all()
        assert [(t.processing_status, t.retry_count) for t in turns] == [
            ("done", 0),
            ("pending", 0),
            ("pending", 0),
        ]
    app.pipeline.drain()  # the two left: batched again, answered by their parts
    assert model.sequence == ["analysis.batch", "analysis.batch"]


def test_alone_a_turn_is_analysed_with_the_spec_prompt(database: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    analysis = ScriptedChatModel()
    analysis.add({"updates": []}, prompt="analysis", repeat=True)
    model = RoutedModel(analysis=analysis)
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    for text in ("one", "two"):
        app.chat.record(session_id, text, "…")
        app.pipeline.drain()
    assert model.sequence == ["analysis", "analysis"]


def _updates_for_both(app, session_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    app.chat.record(session_id, "Both change.", "…")
    app.pipeline.run_next("worker", ("analysis",), pool=1)


def test_entities_waiting_together_share_one_rewrite_and_a_bad_part_is_done_alone(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    analysis = ScriptedChatModel()
    analysis.add(
        {
            "updates": [
                {"lore_entry_id": "E1", "update_summary": "Momo rests."},
                {"lore_entry_id": "E2", "update_summary": "The gate is mended."},
                {"lore_entry_id": "E3", "update_summary": "Kenta leaves."},
            ]
        },
        prompt="analysis",
    )
    rewrite = ScriptedChatModel()
    # E2's part is empty (unusable) and E3's is missing: each is rewritten alone
    rewrite.add({"notes": {"E1": "Momo is resting.", "E2": "  "}}, prompt="rewrite.batch")
    rewrite.add("The gate stands mended.", prompt="rewrite", contains=["The gate is mended."])
    rewrite.add("Kenta has left.", prompt="rewrite", contains=["Kenta leaves."])
    model = RoutedModel(analysis=analysis, rewrite=rewrite)
    model.models["rewrite.batch"] = rewrite
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(
        database,
        ("Momo", "Character", "A psychic girl."),
        ("Gate", "Location", "The shrine gate."),
        ("Kenta", "Character", "A hunter."),
    )
    _updates_for_both(app, session_id)
    assert app.pipeline.run_next("worker", ("note_updates",), pool=1)
    assert not app.pipeline.run_next("worker", ("note_updates",), pool=1)  # one job held all three
    assert model.sequence == ["analysis", "rewrite.batch", "rewrite", "rewrite"]
    assert _notes(database, session_id) == {
        "Momo": "Momo is resting.",
        "Gate": "The gate stands mended.",
        "Kenta": "Kenta has left.",
    }


def test_creations_waiting_together_share_one_call_and_duplicates_merge(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    analysis = ScriptedChatModel()
    analysis.add(
        {
            "creations": [
                {"entity_type": "Character", "creation_summary": "Kenta arrives."},
                {"entity_type": "Item", "creation_summary": "A cursed katana."},
                {"entity_type": "Character", "creation_summary": "The hunter Kenta bows."},
            ]
        },
        prompt="analysis",
    )
    creation = ScriptedChatModel()
    creation.add(
        {
            "entries": {
                "C1": KENTA,
                "C2": {"title": "Muramasa", "content": "A cursed katana.", "tags": []},
                "C3": {"title": "kenta", "content": "Kenta bows.", "tags": []},
            }
        },
        prompt="creation.batch",
    )
    model = RoutedModel(analysis=analysis, rewrite=AppendingRewriter())
    model.models["creation.batch"] = creation
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    app.chat.record(session_id, "Kenta arrives with Muramasa, a katana.", "…")
    app.pipeline.drain()
    assert model.calls["creation.batch"] == 1 and "creation" not in model.calls
    with database.uow(read_only=True) as uow:
        created = uow.session.scalars(
            select(EntityCreationTask).order_by(EntityCreationTask.created_at)
        ).all()
        assert [t.outcome for t in created] == ["created", "created", "merged"]
        titles = sorted(
            e.title
            for e in uow.session.scalars(
                select(LoreEntry).where(LoreEntry.is_dynamically_generated.is_(True))
            )
        )
    assert titles == ["Kenta", "Muramasa"]
    assert _notes(database, session_id) == {"Kenta": "The hunter Kenta bows."}


def test_a_first_note_is_its_events_and_later_ones_are_rewritten(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """By default a note that does not exist yet is its events, in order, with no LLM call;
    once it exists, its events are rewritten into it by the LLM."""
    analysis = ScriptedChatModel()
    analysis.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo trains."}]},
        prompt="analysis",
        contains=["one"],
    )
    analysis.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo rests."}]},
        prompt="analysis",
        contains=["two"],
    )
    rewrite = ScriptedChatModel()
    rewrite.add("Momo trained, then rested.", prompt="rewrite", contains=["Momo rests."])
    model = RoutedModel(analysis=analysis, rewrite=rewrite)
    app = make_app(database, tmp_path, model, pipeline_config={"rewrite_first_note": False})
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    app.chat.record(session_id, "one", "…")
    app.pipeline.drain()
    assert _notes(database, session_id) == {"Momo": "Momo trains."}
    assert model.sequence == ["analysis"]
    app.chat.record(session_id, "two", "…")
    app.pipeline.drain()
    assert _notes(database, session_id) == {"Momo": "Momo trained, then rested."}
    assert model.sequence == ["analysis", "analysis", "rewrite"]
    (asked,) = rewrite.calls
    assert "[Current Session Note]: Momo trains." in asked.text()
    assert "Keep the note under about 150 words" in asked.text()

"""Answers grounded in the story (issue 29): like an invented id, what validates but did not come
from the story is caught and recorded — an entity the turn never names, an answer copying a
prompt's placeholder, an update sharing nothing with its turn, a note repeating itself or
naming a stranger; each check can be turned off."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import ChatTurn, EntityCreationTask, LoreEntry, NoteUpdateTask
from loreweave.llm.prompts import render
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.memory.grounding import named_in, new_names, shares_something

from .pipeline_support import RoutedModel, make_app, make_world


def _analysis(*answers: tuple[str, dict[str, object]]) -> ScriptedChatModel:
    model = ScriptedChatModel()
    for turn_text, answer in answers:
        model.add(
            {"updates": [], "creations": [], **answer}, prompt="analysis", contains=[turn_text]
        )
    return model


def _turn(database: Database, session_id: uuid.UUID, index: int) -> ChatTurn:
    with database.uow(read_only=True) as uow:
        return uow.session.scalars(
            select(ChatTurn).where(ChatTurn.session_id == session_id, ChatTurn.turn_index == index)
        ).one()


def _created(database: Database) -> list[str]:
    with database.uow(read_only=True) as uow:
        query = select(LoreEntry.title).where(LoreEntry.is_dynamically_generated.is_(True))
        return sorted(uow.session.scalars(query))


def test_a_creation_the_turn_never_names_is_rejected_and_recorded(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The prompts' old example ("Kenta") created from a turn about someone else: rejected as an
    invented id is, with its reason; the newcomer the turn does name is created."""
    analysis = _analysis(
        (
            "lighthouse",
            {
                "creations": [
                    {"entity_type": "Character", "creation_summary": "A smuggler arrives."},
                    {"entity_type": "Character", "creation_summary": "A demon hunter appears."},
                ]
            },
        )
    )
    creation = ScriptedChatModel()
    creation.add(
        {
            "entries": {
                "C1": {"title": "Corwin Hale", "content": "A scarred smuggler.", "tags": []},
                "C2": {"title": "Kenta", "content": "A demon hunter with a katana.", "tags": []},
            }
        },
        prompt="creation.batch",
    )
    model = RoutedModel(analysis=analysis)
    model.models["creation.batch"] = creation
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Isolde", "Character", "The lighthouse keeper."))
    app.chat.record(
        session_id, "At the lighthouse a stranger knocks.", "He is Corwin Hale, a smuggler."
    )
    app.pipeline.drain()
    assert _created(database) == ["Corwin Hale"]
    with database.uow(read_only=True) as uow:
        tasks = uow.session.scalars(
            select(EntityCreationTask).order_by(EntityCreationTask.created_at)
        ).all()
        assert [(t.status, t.outcome) for t in tasks] == [("done", "created"), ("done", "rejected")]
        assert "'Kenta' rejected: the turn never names it" in (tasks[1].error_message or "")
    assert "'Kenta' rejected" in (_turn(database, session_id, 0).processing_errors or "")

    # the same with the check off: what the model said is saved, invented or not
    off = make_app(database, tmp_path, model, pipeline_config={"ground_creations": False})
    creation.add({"title": "Kenta", "content": "A hunter.", "tags": []}, prompt="creation")
    analysis.add(
        {
            "updates": [],
            "creations": [{"entity_type": "Character", "creation_summary": "A hunter."}],
        },
        prompt="analysis",
    )
    model.models["creation"] = creation
    off.chat.record(session_id, "Isolde sleeps.", "Nothing happens.")
    off.pipeline.drain()
    assert _created(database) == ["Corwin Hale", "Kenta"]


def test_an_answer_copying_a_placeholder_is_rejected(database: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The prompts show the answer's shape with <…> placeholders; an update or a creation that
    copies one is dropped with its reason."""
    copied = "<what changed for that entity in the latest turn>"
    analysis = _analysis(
        (
            "lamp",
            {
                "updates": [
                    {"lore_entry_id": "E1", "update_summary": copied},
                    {"lore_entry_id": "E1", "update_summary": "Isolde lights the lamp."},
                ],
                "creations": [
                    {"entity_type": "Character", "creation_summary": "<the newcomer's name as"}
                ],
            },
        )
    )
    app = make_app(
        database,
        tmp_path,
        RoutedModel(analysis=analysis),
        pipeline_config={"rewrite_first_note": False},
    )
    _, session_id, _ = make_world(database, ("Isolde", "Character", "The lighthouse keeper."))
    app.chat.record(session_id, "Isolde lights the lamp.", "It burns.")
    app.pipeline.drain()
    with database.uow(read_only=True) as uow:
        summaries = uow.session.scalars(select(NoteUpdateTask.update_summary)).all()
        assert summaries == ["Isolde lights the lamp."]
        assert uow.session.scalars(select(EntityCreationTask)).all() == []
    errors = _turn(database, session_id, 0).processing_errors or ""
    assert "copies the prompt's placeholder" in errors and errors.count("\n") == 1
    for name in ("analysis", "analysis_batch", "creation", "creation_batch"):
        assert "Kenta" not in _template(name) and "magical ability" not in _template(name)


def _template(name: str) -> str:
    from importlib.resources import files

    return (files("loreweave.llm") / "prompts" / f"{name}.j2").read_text()


def test_an_update_sharing_nothing_with_its_turn_is_flagged_not_dropped(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    analysis = _analysis(
        (
            "lamp",
            {
                "updates": [
                    {"lore_entry_id": "E1", "update_summary": "Developed new magical ability."}
                ]
            },
        )
    )
    app = make_app(
        database,
        tmp_path,
        RoutedModel(analysis=analysis),
        pipeline_config={"rewrite_first_note": False},
    )
    _, session_id, _ = make_world(database, ("Isolde", "Character", "The lighthouse keeper."))
    app.chat.record(session_id, "Isolde lights the lamp.", "It burns.")
    app.pipeline.drain()
    errors = _turn(database, session_id, 0).processing_errors or ""
    assert "kept but flagged: it shares no word with its turn" in errors
    with database.uow(read_only=True) as uow:
        assert uow.session.scalars(select(NoteUpdateTask.status)).all() == ["done"]


def test_a_repeating_note_is_repaired_once_then_refused_and_the_old_note_kept(
    database: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    analysis = _analysis(
        ("one", {"updates": [{"lore_entry_id": "E1", "update_summary": "Isolde trims the wick."}]}),
        (
            "two",
            {"updates": [{"lore_entry_id": "E1", "update_summary": "Isolde climbs the stairs."}]},
        ),
        ("three", {"updates": [{"lore_entry_id": "E1", "update_summary": "Isolde rests."}]}),
    )
    rewrite = ScriptedChatModel()
    looping = "Isolde climbs the stairs slowly. Isolde climbs the stairs slowly."
    rewrite.add(looping, prompt="rewrite", contains=["Isolde climbs the stairs."])
    rewrite.add("Isolde trimmed the wick, then climbed the stairs.", prompt="rewrite.repair")
    stranger = "Isolde rests while Kenta keeps watch."
    rewrite.add(stranger, prompt="rewrite", contains=["Isolde rests."], repeat=True)
    rewrite.add(stranger, prompt="rewrite.repair", repeat=True)
    model = RoutedModel(analysis=analysis, rewrite=rewrite)
    model.models["rewrite.repair"] = rewrite
    app = make_app(
        database,
        tmp_path,
        model,
        pipeline_config={"rewrite_first_note": False},
        dual_queue_config={"note_update_queue": {"max_retries": 1, "retry_delay": 0}},
    )
    _, session_id, ids = make_world(database, ("Isolde", "Character", "The lighthouse keeper."))
    for text in ("one", "two"):
        app.chat.record(session_id, text, "…")
        app.pipeline.drain()
    (asked,) = rewrite.calls_for("rewrite.repair")
    assert "repeats a sentence 2 times" in asked.messages[-1].content
    with database.uow(read_only=True) as uow:
        note = uow.notes.for_entry(session_id, ids["Isolde"])
        assert note is not None
        assert note.note_content == "Isolde trimmed the wick, then climbed the stairs."

    app.chat.record(session_id, "three", "…")
    for _ in range(3):
        app.pipeline.drain()
    with database.uow(read_only=True) as uow:
        note = uow.notes.for_entry(session_id, ids["Isolde"])
        assert note is not None  # a stranger's name twice: refused, the previous note stays
        assert note.note_content == "Isolde trimmed the wick, then climbed the stairs."
        last = uow.session.scalars(
            select(NoteUpdateTask).where(NoteUpdateTask.turn_index == 2)
        ).one()
        assert last.status == "failed" and "names what its inputs never do" in (
            last.error_message or ""
        )


def test_the_word_checks() -> None:
    said = "A stranger knocks: he is Corwin Hale, of the Drowned Bell."
    assert named_in("Corwin Hale", said) and named_in("the Drowned Bell", said)
    assert not named_in("Kenta", said) and not named_in("Corwin Blackwood", said)
    assert shares_something("Corwin is at the door.", said)
    assert not shares_something("Developed new magical ability.", said)
    assert new_names("Isolde waits. She sees Corwin and Kenta.", "Isolde; Corwin") == ["Kenta"]
    assert new_names("Kenta waits.", "") == []  # a sentence's first word may be any word
    assert "<" in render(
        "analysis", entities=[], history=[], user_message="x", assistant_message="y"
    )


def test_a_note_may_use_the_words_of_its_own_prompt_and_its_entity_type() -> None:
    """The rewrite prompt's own labels ("[New Event]", "Session Note") and the entity's type
    are no strangers' names: SmolLM2 wrote "… Event: the seal was taken." and the note was
    refused three times over (the real-model tests, 2026-12-04); a label that opens a sentence
    is cleaned away (issue 42), and "Rewrite", a word of the prompt, is no stranger either."""
    from loreweave.memory.rewrite import clean_rewrite

    note = (
        "The seal lies in the shrine. New Event: the Shadow took it. Its Session Note grows. "
        "A Rewrite of its Original Lore is due."
    )
    kept = clean_rewrite(
        note,
        before="",
        lore="A red seal.",
        events=["The Shadow took the seal."],
        title="Crimson Seal",
        grounded=True,
    )
    assert kept == note.replace("New Event: ", "")
    typed = clean_rewrite(
        "The seal is now a sacred Relic of the shrine.",
        before="",
        lore="A red seal.",
        events=["The seal was blessed."],
        title="Crimson Seal",
        entity_type="Relic",
        grounded=True,
    )
    assert "Relic" in typed

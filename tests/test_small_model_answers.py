"""A small model's answers make memory, not noise (issue 42), with scripted answers as
SmolLM2-135M gave them: the newcomer named by the analysis is created under that name (the
creation copied the prompt's "Entity Name" and "<keyword>"), a name the turn writes but no
answer took up becomes a creation, "The X" is X, and a rewrite's echo of its prompt's labels
is cleaned before the note is checked and saved; the small-model profile rejects updates the
turn does not bear out."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from loreweave.config import SMALL_MODEL_CAPS, PipelineConfig, Settings
from loreweave.db import Database
from loreweave.db.models import ChatTurn, EntityCreationTask, LoreEntry, NoteUpdateTask
from loreweave.llm.providers.scripted import ScriptedChatModel

from .pipeline_support import RoutedModel, make_app, make_world, notes_of

ARRIVAL = ("A stranger steps off the ferry.", "The woman is Odalys Fenwright, a cartographer.")
COPIED = {"title": "Entity Name", "content": "A cartographer off the ferry.", "tags": ["<keyword>"]}
PLACEHOLDER_CONTENT = {"content": "<a third-person description built only from the summary>"}


def _model(
    analysis: dict[str, Any], rewrite: str = "The ferry docks.", creation: Any = COPIED
) -> RoutedModel:
    analyst, writer, rewriter = ScriptedChatModel(), ScriptedChatModel(), ScriptedChatModel()
    analyst.add({"updates": [], "creations": [], **analysis}, prompt="analysis")
    writer.add(creation, prompt="creation", repeat=True)
    rewriter.add(rewrite, prompt="rewrite", repeat=True)
    return RoutedModel(analysis=analyst, creation=writer, rewrite=rewriter)


def _entries(database: Database) -> list[tuple[str, list[str]]]:
    with database.uow(read_only=True) as uow:
        query = select(LoreEntry).where(LoreEntry.is_dynamically_generated.is_(True))
        return sorted((e.title, list(e.tags or [])) for e in uow.session.scalars(query))


def _play(
    database: Database, tmp_path: Path, model: RoutedModel, *titles: Any, small: bool = False
) -> uuid.UUID:
    """The harbour's arrival; ``small``: with the small-model profile, which creates a newcomer
    the turn names and the analysis missed."""
    app = make_app(database, tmp_path, model, pipeline_config={"small_model": small})
    _, session_id, _ = make_world(database, ("Harbour", "Location", "A grey harbour."), *titles)
    app.chat.record(session_id, *ARRIVAL)
    app.pipeline.drain()
    app.close()
    return session_id


def test_the_newcomer_named_by_the_analysis_is_created_under_that_name(
    database: Database, tmp_path: Path
) -> None:
    """SmolLM2's creation answered the prompt's "Entity Name" with "<keyword>" tags: the title
    is the analysis's name (checked in the turn), the model is asked only for content and
    tags, and a placeholder tag is refused."""
    creation = {
        "entity_type": "Character",
        "name": "Odalys Fenwright",
        "creation_summary": "The woman is a woman named Odalys Fenwright, a cartographer.",
        "known_by": [],
    }
    model = _model({"creations": [creation]})
    _play(database, tmp_path, model)
    assert _entries(database) == [("Odalys Fenwright", [])]
    asked = model.models["creation"]
    assert isinstance(asked, ScriptedChatModel)
    prompt = asked.calls[0].messages[0].content
    assert "[Name]: Odalys Fenwright" in prompt and "title" not in prompt


def test_a_name_the_turn_never_writes_is_dropped_as_an_invented_id_is(
    database: Database, tmp_path: Path
) -> None:
    creation = {"entity_type": "Character", "name": "Kenta", "creation_summary": "A hunter."}
    session_id = _play(database, tmp_path, _model({"creations": [creation]}), small=True)
    with database.uow(read_only=True) as uow:
        turn = uow.session.scalars(select(ChatTurn).where(ChatTurn.session_id == session_id))
        errors = turn.one().processing_errors or ""
    assert "creation of 'Kenta' dropped: the turn never names it" in errors
    # the newcomer the turn does name, which no answer took up, is created from its words
    assert _entries(database) == [("Odalys Fenwright", [])]


def test_named_in_the_turn_but_neither_entity_nor_creation_becomes_a_creation(
    database: Database, tmp_path: Path
) -> None:
    _play(database, tmp_path, _model({}), small=True)
    assert _entries(database) == [("Odalys Fenwright", [])]
    with database.uow(read_only=True) as uow:
        task = uow.session.scalars(select(EntityCreationTask)).one()
    assert task.name == "Odalys Fenwright" and "cartographer" in task.creation_summary


def test_a_copied_label_as_title_is_refused_when_the_model_names_the_entry(
    database: Database, tmp_path: Path
) -> None:
    """An analysis answer without names (as before issue 42): the creation's title is the
    model's, and the prompt's own "Entity Name" is refused even with grounding off."""
    creation = {"entity_type": "Character", "creation_summary": "Odalys Fenwright arrives."}
    app = make_app(
        database,
        tmp_path,
        _model({"creations": [creation]}),
        pipeline_config={"ground_creations": False},
    )
    _, session_id, _ = make_world(database, ("Harbour", "Location", "A grey harbour."))
    app.chat.record(session_id, *ARRIVAL)
    app.pipeline.drain()
    app.close()
    assert _entries(database) == []
    with database.uow(read_only=True) as uow:
        task = uow.session.scalars(select(EntityCreationTask)).one()
    assert task.outcome == "rejected" and "prompt's own label" in (task.error_message or "")


def test_the_x_and_x_are_one_name(database: Database, tmp_path: Path) -> None:
    """ "The Sunwoven Lute" duplicated the Item "Sunwoven Lute": it is merged into it."""
    creation = {
        "entity_type": "Item",
        "name": "The Sunwoven Lute",
        "creation_summary": "The Sunwoven Lute is played on the ferry.",
    }
    app = make_app(database, tmp_path, _model({"creations": [creation]}))
    _, session_id, ids = make_world(database, ("Sunwoven Lute", "Item", "A golden lute."))
    app.chat.record(session_id, "Music drifts over the water.", "The Sunwoven Lute plays.")
    app.pipeline.drain()
    app.close()
    assert _entries(database) == []
    with database.uow(read_only=True) as uow:
        task = uow.session.scalars(select(EntityCreationTask)).one()
    assert (task.outcome, task.created_lore_entry_id) == ("merged", ids["Sunwoven Lute"])


def test_a_rewrite_is_cleaned_of_its_prompts_labels_before_it_is_saved(
    database: Database, tmp_path: Path
) -> None:
    """16 of 25 of SmolLM2's note versions held "New Session Note:", "New Event:", "The note
    remains unchanged" or "I've added a detail…"; a rewrite is saved without them."""
    update = {"lore_entry_id": "E1", "update_summary": "The ferry docks at the harbour."}
    answer = (
        "New Session Note: The harbour is grey.\nNew Event: The ferry docks at the harbour. "
        "I've added a detail about the ferry. The note remains unchanged."
    )
    model = _model({"updates": [update]}, answer)
    session_id = _play(database, tmp_path, model)
    assert notes_of(database, session_id) == {
        "Harbour": "The harbour is grey.\nThe ferry docks at the harbour."
    }


WRONG_ENTITY = {"lore_entry_id": "E2", "update_summary": "The woman studies a chart."}
UNRELATED = {"lore_entry_id": "E1", "update_summary": "Rain floods the market square."}


def _updates(database: Database, tmp_path: Path, **overrides: Any) -> tuple[list[str], str]:
    """The events kept, and the turn's processing notes, of a turn that names the harbour
    only, answered with an update of the lighthouse and one that shares no word with it."""
    model = _model({"updates": [WRONG_ENTITY, UNRELATED]})
    app = make_app(database, tmp_path, model, **overrides)
    _, session_id, _ = make_world(
        database,
        ("Harbour", "Location", "A grey harbour."),
        ("Lighthouse", "Location", "A white tower."),
    )
    app.chat.record(session_id, "The ferry reaches the harbour.", "A woman steps onto the quay.")
    app.pipeline.drain()
    app.close()
    with database.uow(read_only=True) as uow:
        kept = uow.session.scalars(select(NoteUpdateTask.update_summary)).all()
        turn = uow.session.scalars(select(ChatTurn).where(ChatTurn.session_id == session_id))
        return sorted(kept), turn.one().processing_errors or ""


@pytest.mark.parametrize(
    "profile",
    [
        {"pipeline_config": {"small_model": True}},
        {"llm_config": {"analysis_model": "SmolLM2-135M-Instruct"}},  # chosen by the name
    ],
)
def test_the_small_model_profile_rejects_wrong_entity_and_unrelated_updates(
    database: Database, tmp_path: Path, profile: dict[str, Any]
) -> None:
    """13 of 30 of SmolLM2's updates targeted an entity the turn never names, and those
    flagged "shares no word with its turn" were applied all the same."""
    kept, notes = _updates(database, tmp_path, **profile)
    assert kept == []
    assert "update for E2 dropped (small-model profile): the latest turn does not name" in notes
    assert "update for E1 dropped (small-model profile): it shares no word" in notes


def test_the_standard_profile_keeps_and_flags_them(database: Database, tmp_path: Path) -> None:
    kept, notes = _updates(database, tmp_path)
    assert kept == sorted([WRONG_ENTITY["update_summary"], UNRELATED["update_summary"]])
    assert "update for E1 kept but flagged: it shares no word" in notes


def test_the_small_model_profile_takes_a_small_models_caps_unless_set() -> None:
    """On the defaults' token bounds SmolLM2 rambled for minutes a call: a small model gets
    the caps it keeps within, each one the settings leave unset; a large one the defaults."""
    small = {"analysis_model": "SmolLM2-135M-Instruct"}
    assert Settings(llm_config=small).pipeline_config.max_entry_chars == 600
    chosen = Settings(llm_config=small, pipeline_config={"max_entry_chars": 2000})
    assert chosen.pipeline_config.max_entry_chars == 2000
    assert chosen.pipeline_config.max_updates_per_turn == SMALL_MODEL_CAPS["max_updates_per_turn"]
    off = Settings(llm_config=small, pipeline_config={"small_model": False})
    assert off.pipeline_config == PipelineConfig(small_model=False)
    assert Settings().pipeline_config == PipelineConfig()  # mistral-large-latest
    assert (
        Settings(llm_config={"analysis_model": "llama3.1:8b"}).pipeline_config.max_entry_chars
        == 2000
    )


def test_a_named_newcomer_whose_description_copies_the_placeholder_keeps_its_summary(
    database: Database, tmp_path: Path
) -> None:
    _play(database, tmp_path, _model({}, creation=PLACEHOLDER_CONTENT), small=True)
    assert _entries(database) == [("Odalys Fenwright", [])]
    with database.uow(read_only=True) as uow:
        entry = uow.session.scalars(select(LoreEntry).where(LoreEntry.title == "Odalys Fenwright"))
        assert entry.one().content == "The woman is Odalys Fenwright, a cartographer."

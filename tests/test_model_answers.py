"""Whatever a model answers, the memory stays whole (issue 41): every text a model writes is
normalised (no NUL, no lone surrogate, no bidi or zero-width character in a name) and bounded
by its setting before it is stored; a rewrite answered as JSON, or echoing its prompt, is
unusable; a witness is resolved by name, or dropped with a note — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import ChatTurn, LoreEntry, NoteUpdateTask, SessionNote
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.types import ChatModel, ChatRequest, ChatResponse
from loreweave.memory import answers

from .pipeline_support import RoutedModel, make_app, make_world


def _analysis(answer: dict[str, object]) -> ScriptedChatModel:
    model = ScriptedChatModel()
    model.add({"updates": [], "creations": [], **answer}, prompt="analysis")
    return model


def _turn(database: Database, session_id: uuid.UUID) -> ChatTurn:
    with database.uow(read_only=True) as uow:
        return uow.session.scalars(select(ChatTurn).where(ChatTurn.session_id == session_id)).one()


def _notes(database: Database) -> list[str]:
    with database.uow(read_only=True) as uow:
        return list(uow.session.scalars(select(SessionNote.note_content)))


def test_a_created_entry_is_stored_within_its_bound(database: Database, tmp_path: Path) -> None:
    """Issue 41, 1: a creation answering 50,004 characters of content is stored within
    ``max_entry_chars``; its title and tags within theirs, without bidi or zero-width marks."""
    analysis = _analysis(
        {"creations": [{"entity_type": "Character", "creation_summary": "Kae arrives."}]}
    )
    creation = ScriptedChatModel()
    content = "Kae is a courier. She runs the night roads. " + "x" * 50_000
    tags = ["\u202eevil\u202c", "t\u200b", *(f"tag{i}" for i in range(40)), "y" * 500]
    creation.add({"title": "Kae\u200f", "content": content, "tags": tags}, prompt="creation")
    model = RoutedModel(analysis=analysis, creation=creation)
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Isolde", "Character", "The lighthouse keeper."))
    app.chat.record(session_id, "Kae knocks at the door.", "Isolde lets Kae in.")
    app.pipeline.drain()
    with database.uow(read_only=True) as uow:
        [entry] = uow.session.scalars(
            select(LoreEntry).where(LoreEntry.is_dynamically_generated.is_(True))
        ).all()
    assert entry.title == "Kae"
    assert len(entry.content) <= 2000
    assert entry.content == "Kae is a courier. She runs the night roads."  # cut at a sentence
    assert entry.tags[:2] == ["evil", "t"] and len(entry.tags) <= 20
    assert all(len(tag) <= 40 for tag in entry.tags)


def test_nul_and_lone_surrogates_from_the_model_are_never_stored(
    database: Database, tmp_path: Path
) -> None:
    """Issue 41, 4: an analysis summary with a NUL failed the turn on PostgreSQL (DataError,
    its SQL quoted in processing_errors) and was stored on SQLite; a rewrite with one too."""
    analysis = ScriptedChatModel()
    raw = (
        '{"updates": [{"lore_entry_id": "E1", "update_summary": "Isolde lights the '
        'lamp.\\u0000 It burns\\ud800."}], "creations": []}'
    )
    analysis.add(raw, prompt="analysis")
    rewrite = ScriptedChatModel()
    rewrite.add("Isolde\x00 keeps the lamp lit.\ud800", prompt="rewrite")
    model = RoutedModel(analysis=analysis, rewrite=rewrite)
    app = make_app(database, tmp_path, model)
    _, session_id, _ = make_world(database, ("Isolde", "Character", "The lighthouse keeper."))
    app.chat.record(session_id, "Isolde lights the lamp.", "It burns.")
    app.pipeline.drain()
    turn = _turn(database, session_id)
    assert turn.processing_status == "done", turn.processing_errors
    with database.uow(read_only=True) as uow:
        summaries = uow.session.scalars(select(NoteUpdateTask.update_summary)).all()
    assert summaries == ["Isolde lights the lamp. It burns."]
    assert _notes(database) == ["Isolde keeps the lamp lit."]


def test_a_text_over_its_bound_is_cut_at_a_sentence_else_at_a_word() -> None:
    assert answers.bounded("One. Two is 3.14 long. Three", 27) == "One. Two is 3.14 long."
    assert answers.bounded("One. Two is 3.14 long.", 16) == "One."
    assert answers.bounded("Kae " + "x" * 50, 20) == "Kae " + "x" * 15 + "…"
    assert answers.bounded("a few words without an end", 20) == "a few words without…"
    assert answers.bounded(" So\x00 short. ", 5) == "So…"
    assert answers.name("\u202eKae\u200b  the\ufeff Bold\x00", 40) == "Kae the Bold"


class _Echo:
    """A rewrite model that answers with its prompt, as a small model sometimes does."""

    provider = "echo"

    def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(request.messages[0].content, request.model)


def _unusable_rewrite(
    database: Database, tmp_path: Path, rewrite: ChatModel
) -> tuple[str | None, NoteUpdateTask]:
    analysis = ScriptedChatModel()
    for text, event in (("one", "Aoi meets Bex at the gate."), ("two", "Bex hides the letter.")):
        answer = {"updates": [{"lore_entry_id": "E1", "update_summary": event}], "creations": []}
        analysis.add(answer, prompt="analysis", contains=[text])
    model = RoutedModel(analysis=analysis, rewrite=rewrite)
    model.models["rewrite.repair"] = rewrite
    app = make_app(
        database,
        tmp_path,
        model,
        pipeline_config={"rewrite_first_note": False, "ground_notes": False},
        dual_queue_config={"note_update_queue": {"max_retries": 1, "retry_delay": 0}},
    )
    _, session_id, ids = make_world(database, ("Bex", "Character", "A thief of the docks."))
    for text in ("one", "two"):
        app.chat.record(session_id, f"Turn {text}: Bex.", "…")
        for _ in range(3):
            app.pipeline.drain()
    with database.uow(read_only=True) as uow:
        note = uow.notes.for_entry(session_id, ids["Bex"])
        last = uow.session.scalars(
            select(NoteUpdateTask).where(NoteUpdateTask.turn_index == 1)
        ).one()
        return (note.note_content if note else None), last


def test_a_rewrite_answered_as_json_is_unusable(database: Database, tmp_path: Path) -> None:
    """Issue 41, 2: a plain rewrite answered ``{"note": …, "extra": 1}`` ended done, the note
    that JSON text; now it is asked again, then the event fails and the previous note stays."""
    rewrite = ScriptedChatModel()
    answer = json.dumps({"note": "Aoi is here.", "extra": 1})
    for prompt in ("rewrite", "rewrite.repair"):
        rewrite.add(f"```json\n{answer}\n```", prompt=prompt, repeat=True)
    note, last = _unusable_rewrite(database, tmp_path, rewrite)
    assert note == "Aoi meets Bex at the gate."
    assert last.status == "failed" and "JSON" in (last.error_message or "")


def test_a_rewrite_echoing_its_prompt_is_unusable(database: Database, tmp_path: Path) -> None:
    note, last = _unusable_rewrite(database, tmp_path, _Echo())
    assert note == "Aoi meets Bex at the gate."
    assert last.status == "failed" and "echoes its prompt" in (last.error_message or "")


def test_witnesses_are_resolved_by_name_and_the_rest_dropped_with_a_note(
    database: Database, tmp_path: Path
) -> None:
    """Issue 41, 3: a witness named by its full name (27 characters) made the schema refuse the
    whole answer six times and failed the turn for good; now a witness is a shown character's
    ref, title or alias in any case (as the proxy resolves observers) or the user, and what
    is none of them is dropped with a note."""
    known_by = [
        "Captain Aldric of the Watch",
        "mira",
        " the  WITCH\u200b ",
        "{{user}}",
        "Someone Nobody Knows At All, " * 20,
        7,
        "E1",
    ]
    analysis = _analysis(
        {
            "updates": [
                {
                    "lore_entry_id": "\u200be1",  # a zero-width mark, any case
                    "update_summary": "Aldric bars the gate.",
                    "known_by": known_by,
                }
            ]
        }
    )
    app = make_app(database, tmp_path, RoutedModel(analysis=analysis, rewrite=_Echo()))
    _, session_id, ids = make_world(
        database,
        ("Captain Aldric of the Watch", "Character", "The captain of the watch."),
        ("Mira", "Character", "A priestess."),
        ("Isolde", "Character", "A keeper."),
    )
    with database.uow() as uow:
        uow.entries.require(ids["Isolde"]).aliases = ["The Witch"]
        uow.commit()
    app.chat.record(session_id, "Aldric bars the gate.", "Mira watches.")
    app.pipeline.drain()
    turn = _turn(database, session_id)
    assert turn.processing_status == "done", turn.processing_errors
    with database.uow(read_only=True) as uow:
        [update] = uow.session.scalars(select(NoteUpdateTask)).all()
    aldric, mira, isolde = (str(ids[t]) for t in ("Captain Aldric of the Watch", "Mira", "Isolde"))
    assert update.known_by == [aldric, mira, isolde, "USER"]
    errors = turn.processing_errors or ""
    assert "witness 'Someone Nobody Knows At All" in errors and "witness '7'" in errors
    assert len(errors) < 600


def test_a_chat_reply_with_a_nul_is_recorded_without_it(database: Database, tmp_path: Path) -> None:
    """The chat model's reply is a model's answer too: a NUL in it failed the turn on
    PostgreSQL (the reply paid for, then a DataError)."""
    chat = ScriptedChatModel()
    chat.add("The lamp\x00 is lit.\ud800", prompt="chat", repeat=True)
    app = make_app(database, tmp_path, RoutedModel(chat=chat))
    _, session_id, _ = make_world(database, ("Isolde", "Character", "The lighthouse keeper."))
    played = app.chat.turn(session_id, "Light it.")
    streamed = list(app.chat.turn_stream(session_id, "Again."))
    assert played.reply == "The lamp is lit."
    assert streamed[-1].result is not None and streamed[-1].result.reply == "The lamp is lit."
    with database.uow(read_only=True) as uow:
        replies = [t.assistant_message for t in uow.turns.recent(session_id, 10)]
    assert replies == ["The lamp is lit.", "The lamp is lit."]

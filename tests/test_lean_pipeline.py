"""The lean pipeline (DESIGN §3, ``pipeline_config.mode = "lean"``, issue 39): the analysis's
answer is the memory write.  An update is appended to its note with no call; the rewrite model
runs only to condense a note that would pass its bound, folding all its waiting events in one
call; a newcomer the analysis named is its summary, with no creation call.  (The full mode, the
spec's pipeline, rewrites every existing note by a call: tests/test_batching.py.)"""

from __future__ import annotations

import uuid
from pathlib import Path

from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel

from .pipeline_support import RoutedModel, make_app, make_world, notes_of


def _analysis(*turns: tuple[str, dict[str, object]]) -> ScriptedChatModel:
    """Answers the analysis of the turn whose user message is each first item."""
    model = ScriptedChatModel()
    for said, answer in turns:
        model.add(answer, prompt="analysis", contains=[said])
    return model


def _update(summary: str) -> dict[str, object]:
    return {"updates": [{"lore_entry_id": "E1", "update_summary": summary}]}


def _play(app, session_id: uuid.UUID, *said: str) -> None:  # type: ignore[no-untyped-def]
    for message in said:
        app.chat.record(session_id, message, "…")
        app.pipeline.drain()


def test_lean_appends_updates_to_the_note_without_a_call(
    database: Database, tmp_path: Path
) -> None:
    analysis = _analysis(
        ("one", _update("Momo trains with the old sword.")),
        ("two", _update("Momo rests.")),
        ("three", _update("Momo trains with the old sword.")),  # said before: not said again
    )
    model = RoutedModel(analysis=analysis, rewrite=ScriptedChatModel())
    app = make_app(database, tmp_path, model, pipeline_config={"mode": "lean"})
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    _play(app, session_id, "one", "two", "three")
    assert notes_of(database, session_id) == {"Momo": "Momo trains with the old sword. Momo rests."}
    assert model.sequence == ["analysis"] * 3
    app.close()


def test_lean_condenses_a_note_past_its_bound_in_one_call(
    database: Database, tmp_path: Path
) -> None:
    """With a 20-word target a note is bounded at 200 characters: the events that would pass
    it are folded, all in one rewrite call, and the next event is appended to what it wrote."""
    long_event = "Momo walked the whole length of the northern wall and counted every tower."
    served = "Momo learned the captain once served her father in the long war of the two rivers."
    analysis = _analysis(
        ("one", _update(long_event)),
        ("two", _update("Momo met the captain of the guard at the gate.")),
        ("three", _update(served)),
        ("four", _update("Momo slept.")),
    )
    rewrite = ScriptedChatModel()
    rewrite.add("Momo knows the wall and the captain.", prompt="rewrite")
    model = RoutedModel(analysis=analysis, rewrite=rewrite)
    app = make_app(
        database, tmp_path, model, pipeline_config={"mode": "lean", "note_target_words": 20}
    )
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    _play(app, session_id, "one", "two")
    appended = f"{long_event} Momo met the captain of the guard at the gate."
    assert notes_of(database, session_id) == {"Momo": appended}
    assert model.sequence == ["analysis", "analysis"]
    _play(app, session_id, "three", "four")
    (condensed,) = rewrite.calls
    assert f"[Current Session Note]: {appended}" in condensed.text()
    assert served in condensed.text()
    assert "under about 20 words" in condensed.text()
    assert notes_of(database, session_id) == {
        "Momo": "Momo knows the wall and the captain. Momo slept."
    }
    assert model.sequence == ["analysis", "analysis", "analysis", "rewrite", "analysis"]
    app.close()


def test_lean_creation_is_its_summary_without_a_call(database: Database, tmp_path: Path) -> None:
    creation = {
        "entity_type": "Character",
        "name": "Kenta",
        "creation_summary": "Kenta is a demon hunter who carries a katana.",
    }
    analysis = _analysis(("Kenta", {"creations": [creation]}))
    model = RoutedModel(analysis=analysis, creation=ScriptedChatModel())
    app = make_app(database, tmp_path, model, pipeline_config={"mode": "lean"})
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    _play(app, session_id, "A stranger says: I am Kenta.")
    with database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        created = [e for e in uow.entries.visible_to(session) if e.title == "Kenta"]
    assert [(e.content, e.is_dynamically_generated) for e in created] == [
        ("Kenta is a demon hunter who carries a katana.", True)
    ]
    assert model.sequence == ["analysis"]
    hits = app.retriever.search(session_id, "demon hunter with a katana", 1)
    assert [hit.title for hit in hits] == ["Kenta"]
    app.close()

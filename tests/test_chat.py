"""The synchronous turn with the scripted chat model."""

from __future__ import annotations

import uuid

import pytest

from loreweave.app.chat import ChatService, Names
from loreweave.config import CompositeDocumentConfig, LLMConfig
from loreweave.db import Database
from loreweave.db.models import ChatSession, LoreEntry, TurnStatus, World
from loreweave.errors import InvalidInput, NotFound
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.testing import HashingEmbedder
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.retrieval import Retriever
from loreweave.vectors.service import CompositeVectorService


@pytest.fixture
def setup(
    database: Database,
) -> tuple[ChatService, ScriptedChatModel, uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    embedder = HashingEmbedder(64)
    vectors = CompositeVectorService(database, embedder, CompositeDocumentConfig())
    retriever = Retriever(
        database, embedder, IndexCache(dim=64, model=embedder.model_name), vectors
    )
    model = ScriptedChatModel()
    committed: list[uuid.UUID] = []
    service = ChatService(
        database, model, retriever, LLMConfig(), on_turn_committed=committed.append
    )
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Eldoria", description="A realm of mist."))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        momo = uow.entries.add(
            LoreEntry(
                world_id=world.id,
                title="Momo",
                entity_type="Character",
                content="Momo is a psychic schoolgirl.",
            )
        )
        uow.notes.write(session.id, momo.id, "Momo has lost her powers.", turn=0)
        uow.commit()
    vectors.sync_entry(momo.id)
    return service, model, session.id, momo.id, committed


def test_a_turn_retrieves_prompts_and_persists_its_analysis_job(setup, database: Database) -> None:  # type: ignore[no-untyped-def]
    service, model, session_id, momo, committed = setup
    model.add("Momo stares at her hands; nothing happens.", prompt="chat")
    model.add("The mist thickens.", prompt="chat")
    result = service.turn(session_id, "  Momo tries to use her psychic powers.  ")
    assert result.reply == "Momo stares at her hands; nothing happens."
    assert result.turn_index == 0
    assert [e.lore_entry_id for e in result.used_entries] == [momo]
    assert result.overhead_seconds >= 0

    request = model.calls_for("chat")[0]
    system = request.messages[0].content
    assert "MAXIMUM PRIORITY" in system
    assert (
        "[Base Lore]\nMomo is a psychic schoolgirl.\n\n"
        "[Session-Specific Notes]\nMomo has lost her powers." in system
    )
    assert "A realm of mist." in system
    assert request.messages[-1].content == "Momo tries to use her psychic powers."
    assert request.temperature == LLMConfig().temperature_chat

    second = service.turn(session_id, "Look around.")
    assert second.turn_index == 1
    history = model.calls_for("chat")[1].messages
    assert [m.role for m in history] == ["system", "user", "assistant", "user"]
    assert committed == [session_id, session_id]
    with database.uow() as uow:
        turns = uow.turns.recent(session_id, 10)
        assert [t.processing_status for t in turns] == [TurnStatus.PENDING] * 2
        assert turns[0].used_entry_ids == [str(momo)]


def test_bad_input(setup) -> None:  # type: ignore[no-untyped-def]
    service, model, session_id, _, _ = setup
    with pytest.raises(InvalidInput):
        service.turn(session_id, "   ")
    with pytest.raises(InvalidInput):
        service.turn(session_id, "x" * 9000)
    with pytest.raises(NotFound):
        service.turn(uuid.uuid4(), "hello")
    assert model.calls == []


def test_a_streamed_turn_is_recorded_when_complete(setup, database: Database) -> None:  # type: ignore[no-untyped-def]
    service, model, session_id, _, _ = setup
    model.add("Momo stares at her hands.", prompt="chat")
    events = list(service.turn_stream(session_id, "Momo tries her powers."))
    deltas = [e.text for e in events if e.kind == "delta"]
    assert deltas == ["Momo", " stares", " at", " her", " hands."]
    done = events[-1]
    assert done.kind == "done" and done.result is not None
    assert done.result.reply == "Momo stares at her hands." and done.result.turn_index == 0
    with database.uow() as uow:
        assert uow.turns.recent(session_id, 1)[0].assistant_message == "Momo stares at her hands."


def test_a_streamed_turn_checks_input_before_streaming(setup) -> None:  # type: ignore[no-untyped-def]
    service, _, _, _, _ = setup
    with pytest.raises(NotFound):
        service.turn_stream(uuid.uuid4(), "hello")
    with pytest.raises(InvalidInput):
        service.turn_stream(uuid.uuid4(), "")


def test_name_macros_are_substituted_in_the_lore_sent_and_kept_in_the_lore_stored(
    database: Database,
) -> None:
    embedder = HashingEmbedder(64)
    vectors = CompositeVectorService(database, embedder, CompositeDocumentConfig())
    retriever = Retriever(
        database, embedder, IndexCache(dim=64, model=embedder.model_name), vectors
    )
    model = ScriptedChatModel()
    model.add("The shrine is quiet.", prompt="chat")
    service = ChatService(database, model, retriever, LLMConfig(), names=Names("Aki", "Momo"))
    content = "{{char}} is {{User}}'s friend; {{ CHAR }} trusts {{user}}. {{original}} stays."
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Eldoria"))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        entry = uow.entries.add(
            LoreEntry(world_id=world.id, title="{{char}}", entity_type="Character", content=content)
        )
        uow.commit()
    vectors.sync_entry(entry.id)
    service.turn(session.id, "Momo and Aki talk at the shrine.")
    system = model.calls_for("chat")[0].messages[0].content
    assert "### Momo (Character)" in system
    assert "Momo is Aki's friend; Momo trusts Aki. {{original}} stays." in system
    assert "{{char}}" not in system and "{{user}}" not in system.lower()
    with database.uow(read_only=True) as uow:
        assert uow.entries.require(entry.id).content == content  # the stored lore keeps them

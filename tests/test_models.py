"""Model round-trips and constraints, on SQLite and PostgreSQL by the same test functions."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from loreweave.db import Database
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    EntityVector,
    LoreEntry,
    NoteUpdateTask,
    SessionNote,
    TaskStatus,
    TurnStatus,
    World,
)
from loreweave.errors import NotFound


def _world_with_session(database: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Eldoria", description="A high-fantasy realm"))
        session = uow.sessions.add(ChatSession(world_id=world.id, title="First run"))
        entry = uow.entries.add(
            LoreEntry(
                world_id=world.id,
                title="Momo Ayase",
                entity_type="Character",
                content="A high-school girl with latent psychic powers.",
                tags=["psychic", "student"],
                aliases=["Momo"],
            )
        )
        uow.commit()
        return world.id, session.id, entry.id


def test_round_trip(database: Database) -> None:
    world_id, session_id, entry_id = _world_with_session(database)
    with database.uow() as uow:
        uow.turns.add(
            ChatTurn(
                session_id=session_id,
                turn_index=uow.turns.next_index(session_id),
                user_message="Momo trains all night.",
                assistant_message="Her power flickers, then holds.",
            )
        )
        uow.notes.write(session_id, entry_id, "Momo has begun training.", turn=0)
        uow.commit()

    with database.uow() as uow:
        entry = uow.entries.require(entry_id)
        assert entry.title == "Momo Ayase"
        assert entry.tags == ["psychic", "student"]
        assert entry.aliases == ["Momo"]
        assert entry.is_dynamically_generated is False
        assert entry.origin_session_id is None
        assert entry.created_at.tzinfo is not None
        turn = uow.turns.recent(session_id, 5)[0]
        assert turn.processing_status == TurnStatus.PENDING
        assert turn.turn_index == 0
        assert uow.turns.next_index(session_id) == 1
        note = uow.notes.for_entry(session_id, entry_id)
        assert note is not None
        assert (note.note_content, note.version, note.last_updated_turn) == (
            "Momo has begun training.",
            1,
            0,
        )
        assert [w.id for w in uow.worlds.list()] == [world_id]


def test_rewrite_keeps_the_previous_text_as_a_revision(database: Database) -> None:
    _, session_id, entry_id = _world_with_session(database)
    texts = ["first", "second", "third"]
    for turn, content in enumerate(texts):
        with database.uow() as uow:
            uow.notes.write(session_id, entry_id, content, turn=turn)
            uow.commit()
    with database.uow() as uow:
        note = uow.notes.for_entry(session_id, entry_id)
        assert note is not None
        assert (note.note_content, note.version) == ("third", 3)
        revisions = uow.notes.revisions(note.id)
        assert [(r.version, r.note_content, r.last_updated_turn) for r in revisions] == [
            (1, "first", 0),
            (2, "second", 1),
        ]


def test_one_note_per_session_and_entry(database: Database) -> None:
    _, session_id, entry_id = _world_with_session(database)
    with database.uow() as uow:
        uow.session.add(
            SessionNote(session_id=session_id, lore_entry_id=entry_id, note_content="a")
        )
        uow.session.add(
            SessionNote(session_id=session_id, lore_entry_id=entry_id, note_content="b")
        )
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_foreign_keys_are_enforced(database: Database) -> None:
    _, session_id, _ = _world_with_session(database)
    with database.uow() as uow:
        uow.session.add(
            SessionNote(session_id=session_id, lore_entry_id=uuid.uuid4(), note_content="orphan")
        )
        with pytest.raises(IntegrityError):
            uow.session.flush()
    with database.uow() as uow:
        uow.session.add(
            ChatTurn(session_id=uuid.uuid4(), turn_index=0, user_message="x", assistant_message="y")
        )
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_turn_indexes_are_unique_per_session(database: Database) -> None:
    _, session_id, _ = _world_with_session(database)
    with database.uow() as uow:
        for _ in range(2):
            uow.session.add(
                ChatTurn(
                    session_id=session_id, turn_index=0, user_message="u", assistant_message="a"
                )
            )
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_deleting_a_world_removes_everything_in_it(database: Database) -> None:
    world_id, session_id, entry_id = _world_with_session(database)
    with database.uow() as uow:
        uow.notes.write(session_id, entry_id, "note", turn=0)
        uow.notes.write(session_id, entry_id, "note 2", turn=1)
        uow.session.add(
            NoteUpdateTask(
                lore_entry_id=entry_id, session_id=session_id, update_summary="s", turn_index=0
            )
        )
        uow.commit()
    with database.uow() as uow:
        uow.session.execute(World.__table__.delete().where(World.id == world_id))
        uow.commit()
    with database.uow() as uow:
        for model in (LoreEntry, ChatSession, SessionNote, NoteUpdateTask):
            assert uow.session.scalars(select(model)).all() == []


def test_dynamic_entries_are_visible_only_to_their_session(database: Database) -> None:
    world_id, session_id, entry_id = _world_with_session(database)
    with database.uow() as uow:
        other = uow.sessions.add(ChatSession(world_id=world_id, title="Second run"))
        foreign_world = uow.worlds.add(World(name="Elsewhere"))
        foreign = uow.entries.add(
            LoreEntry(world_id=foreign_world.id, title="Stranger", content="Not from here.")
        )
        created = uow.entries.add(
            LoreEntry(
                world_id=world_id,
                title="Kenta",
                entity_type="Character",
                content="A mysterious demon hunter.",
                is_dynamically_generated=True,
                origin_session_id=session_id,
            )
        )
        uow.commit()
        other_id, foreign_id, created_id = other.id, foreign.id, created.id

    with database.uow() as uow:
        mine = uow.sessions.require(session_id)
        theirs = uow.sessions.require(other_id)
        assert {e.id for e in uow.entries.visible_to(mine)} == {entry_id, created_id}
        assert {e.id for e in uow.entries.visible_to(theirs)} == {entry_id}
        assert uow.entries.require_visible(created_id, mine).title == "Kenta"
        for hidden in (created_id, foreign_id):
            with pytest.raises(NotFound):
                uow.entries.require_visible(hidden, theirs)


def test_task_rows_round_trip(database: Database) -> None:
    _, session_id, entry_id = _world_with_session(database)
    with database.uow() as uow:
        update = uow.session.merge(
            NoteUpdateTask(
                lore_entry_id=entry_id,
                session_id=session_id,
                update_summary="Developed a new ability",
                turn_index=3,
            )
        )
        creation = uow.session.merge(
            EntityCreationTask(
                entity_type="Character",
                creation_summary="Kenta appears",
                session_id=session_id,
                turn_index=3,
            )
        )
        uow.commit()
        update_id, creation_id = update.id, creation.id
    with database.uow() as uow:
        update = uow.session.get_one(NoteUpdateTask, update_id)
        creation = uow.session.get_one(EntityCreationTask, creation_id)
        assert update.status == creation.status == TaskStatus.PENDING
        assert update.retry_count == creation.retry_count == 0
        assert update.locked_until is None and creation.created_lore_entry_id is None


def _vector(world_id: uuid.UUID, entry_id: uuid.UUID, session_id: uuid.UUID | None) -> EntityVector:
    return EntityVector(
        world_id=world_id,
        lore_entry_id=entry_id,
        session_id=session_id,
        text="[Base Lore]\nx",
        text_hash="0" * 64,
        model="test",
        dim=2,
        embedding=b"\x00" * 8,
        version=1,
    )


def test_one_base_vector_and_one_overlay_vector_per_session(database: Database) -> None:
    world_id, session_id, entry_id = _world_with_session(database)
    with database.uow() as uow:
        uow.session.add(_vector(world_id, entry_id, None))
        uow.session.add(_vector(world_id, entry_id, session_id))
        uow.commit()
    for session in (None, session_id):
        with database.uow() as uow:
            uow.session.add(_vector(world_id, entry_id, session))
            with pytest.raises(IntegrityError):
                uow.session.flush()
    with database.uow() as uow:
        ids = uow.session.scalars(select(EntityVector.id)).all()
        assert len(ids) == 2 and all(isinstance(i, int) for i in ids)


def test_a_read_only_unit_of_work_does_not_block_writers(database: Database) -> None:
    _, session_id, entry_id = _world_with_session(database)
    with database.uow(read_only=True) as reader:
        assert reader.entries.require(entry_id).title == "Momo Ayase"
        with database.uow() as writer:  # would wait for the lock if the reader held it
            writer.notes.write(session_id, entry_id, "written meanwhile", turn=0)
            writer.commit()

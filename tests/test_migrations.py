from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from loreweave.db import Database, migrate
from loreweave.db.models import Base
from loreweave.errors import SchemaOutOfDate

BOTH = pytest.mark.parametrize(
    "empty_database_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
TABLES = {table.name for table in Base.metadata.sorted_tables}


@BOTH
def test_migrations_go_up_and_down(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        assert migrate.current_revision(database.engine) is None
        migrate.upgrade(database.engine)
        assert migrate.current_revision(database.engine) == migrate.head_revision(database.engine)
        assert set(inspect(database.engine).get_table_names()) >= TABLES

        migrate.downgrade(database.engine, "base")
        assert migrate.current_revision(database.engine) is None
        assert not TABLES & set(inspect(database.engine).get_table_names())

        migrate.upgrade(database.engine)
        assert set(inspect(database.engine).get_table_names()) >= TABLES
    finally:
        database.dispose()


@BOTH
def test_migrations_match_the_models(empty_database_url: str) -> None:
    """The schema the migrations build is exactly the ORM's: no forgotten migration."""
    database = Database(empty_database_url)
    try:
        migrate.upgrade(database.engine)
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        database.dispose()


def test_embedded_sqlite_is_migrated_on_first_use(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    database.ensure_schema()
    assert migrate.current_revision(database.engine) == migrate.head_revision(database.engine)
    database.ensure_schema()  # idempotent
    database.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
def test_postgres_behind_is_refused_with_the_command_to_run(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        with pytest.raises(SchemaOutOfDate) as caught:
            database.ensure_schema()
        assert "loreweave db upgrade" in str(caught.value)
        assert caught.value.current is None
        assert not set(inspect(database.engine).get_table_names()) & TABLES
        migrate.upgrade(database.engine)
        database.ensure_schema()
    finally:
        database.dispose()


@BOTH
def test_0002_counts_failed_attempts_on_turns(empty_database_url: str) -> None:
    """``chat_turns.attempts`` counted claims; ``retry_count`` counts failed attempts."""
    import uuid

    from sqlalchemy import text

    database = Database(empty_database_url)
    try:
        migrate.upgrade(database.engine, "0001")
        world, session = uuid.uuid4().hex, uuid.uuid4().hex  # Uuid() as SQLite stores it
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO worlds (id, name, description, created_at, updated_at) "
                    "VALUES (:id, 'w', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": world},
            )
            connection.execute(
                text(
                    "INSERT INTO chat_sessions (id, world_id, title, created_at, updated_at) "
                    "VALUES (:id, :world, '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": session, "world": world},
            )
            for index, (status, attempts) in enumerate([("done", 2), ("failed", 3)]):
                connection.execute(
                    text(
                        "INSERT INTO chat_turns (id, session_id, turn_index, user_message, "
                        "assistant_message, used_entry_ids, processing_status, attempts, "
                        "next_attempt_at, created_at) VALUES (:id, :session, :index, 'u', 'a', "
                        "'[]', :status, :attempts, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {
                        "id": uuid.uuid4().hex,
                        "session": session,
                        "index": index,
                        "status": status,
                        "attempts": attempts,
                    },
                )
        migrate.upgrade(database.engine)
        with database.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT processing_status, retry_count FROM chat_turns ORDER BY turn_index")
            ).all()
        assert [tuple(row) for row in rows] == [("done", 1), ("failed", 3)]
    finally:
        database.dispose()


@BOTH
def test_world_info_secondary_keys_leave_the_aliases(empty_database_url: str) -> None:
    """Before 0005 an imported entry's secondary keys were aliases (activating alone): the
    migration gives them back their own field, logic, constant and enabled flags."""
    import json
    import uuid

    from sqlalchemy import text

    database = Database(empty_database_url)
    try:
        migrate.upgrade(database.engine, "0004")
        world, entry = uuid.uuid4(), uuid.uuid4()
        sqlite = database.engine.dialect.name == "sqlite"

        def ident(value: uuid.UUID) -> str:  # how each database stores a UUID
            return value.hex if sqlite else str(value)

        source = {
            "uid": 3,
            "key": ["dragon", "wyrm"],
            "keysecondary": ["cave", "wyrm"],
            "selectiveLogic": 2,
            "constant": True,
            "disable": True,
        }
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO worlds (id, name, description, created_at, updated_at)"
                    " VALUES (:id, 'w', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": ident(world)},
            )
            connection.execute(
                text(
                    "INSERT INTO lore_entries (id, world_id, title, entity_type, content, tags,"
                    " aliases, is_dynamically_generated, edited_by_person, extra, created_at,"
                    " updated_at) VALUES (:id, :world, 'Dragon', 'Other', 'A wyrm.', '[]',"
                    " :aliases, false, false, :extra, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {
                    "id": ident(entry),
                    "world": ident(world),
                    "aliases": json.dumps(["dragon", "wyrm", "cave"]),
                    "extra": json.dumps({"sillytavern_world_info": source}),
                },
            )
        migrate.upgrade(database.engine)
        with database.uow(read_only=True) as uow:
            migrated = uow.entries.require(entry)
            assert migrated.aliases == ["dragon", "wyrm"]  # "wyrm" is a key as well
            assert migrated.secondary_keys == ["cave", "wyrm"]
            assert (migrated.key_logic, migrated.constant, migrated.enabled) == (
                "not_any",
                True,
                False,
            )
    finally:
        database.dispose()


@BOTH
def test_0008_renames_worlds_of_one_name_in_the_order_they_were_made(
    empty_database_url: str,
) -> None:
    import uuid

    from sqlalchemy import text

    database = Database(empty_database_url)
    try:
        migrate.upgrade(database.engine, "0007")
        names = ["Eldoria", "eldoria ", "Other", "ELDORIA", "Eldoria (2)"]
        with database.engine.begin() as connection:
            for order, name in enumerate(names):
                connection.execute(
                    text(
                        "INSERT INTO worlds (id, name, description, created_at, updated_at) "
                        "VALUES (:id, :name, '', :at, :at)"
                    ),
                    {"id": uuid.uuid4().hex, "name": name, "at": f"2026-01-0{order + 1} 00:00:00"},
                )
        migrate.upgrade(database.engine)
        with database.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT name, name_key FROM worlds ORDER BY created_at")
            ).all()
        assert [row[0] for row in rows] == [
            "Eldoria",
            "eldoria (2)",
            "Other",
            "ELDORIA (3)",
            "Eldoria (2) (2)",
        ]
        assert len({row[1] for row in rows}) == len(rows)
    finally:
        database.dispose()

"""Alembic environment: the engine is handed in by loreweave.db.migrate (never built here).

On SQLite a migration may rebuild a table (Alembic's batch mode: copy, drop, rename).  With
foreign keys enforced, dropping a parent table would cascade into its children -- dropping a
world's sessions and turns -- so they are off while migrations run (a PRAGMA outside any
transaction, as SQLite requires) and checked before they are turned back on."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from loreweave.db.models import Base

engine = context.config.attributes["engine"]


def foreign_keys(connection: Connection, on: bool) -> None:
    """On the DB-API connection itself, so no transaction is begun first."""
    connection.connection.driver_connection.execute(  # type: ignore[union-attr]
        f"PRAGMA foreign_keys={'ON' if on else 'OFF'}"
    )


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        foreign_keys(connection, False)
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            foreign_keys(connection, True)

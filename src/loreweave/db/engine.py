"""Engines and the schema gate: one :class:`Database` per process, built by the composition root."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from loreweave.db import migrate
from loreweave.db.uow import READ_ONLY, UnitOfWork
from loreweave.errors import ConfigurationError, DatabaseUnavailable, SchemaOutOfDate


def normalise_url(url: str | URL) -> URL:
    """``postgresql://`` means psycopg 3 here (the ``postgres`` extra), not psycopg2."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


# How long a writer waits for this process's other writers before it queues on SQLite's own
# lock (whose busy handler then waits as before: a writer stuck elsewhere delays, never hangs).
WRITER_PATIENCE = 30.0
_HOLDS_WRITER = "loreweave_holds_writer"


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, WAL, and BEGIN IMMEDIATE: writers queue on the lock instead of failing
    with 'database is locked' when a read transaction tries to become a write one.  The
    process's write transactions take a lock of its own first, from BEGIN to COMMIT or
    ROLLBACK: SQLite has one writer at a time anyway, and a writer queued there gets the
    database the moment it is free, where SQLite's busy handler sleeps in growing steps (with
    many worker threads the lock then sat free while they slept)."""
    writers = threading.RLock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY, False):
            connection.exec_driver_sql("BEGIN")
            return
        connection.info[_HOLDS_WRITER] = writers.acquire(timeout=WRITER_PATIENCE)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _end(connection)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _end(connection: Any) -> None:
        if connection.info.pop(_HOLDS_WRITER, False):
            writers.release()


def create_db_engine(url: str | URL, **kwargs: Any) -> Engine:
    parsed = normalise_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, **kwargs)
            _configure_sqlite(engine)
            return engine
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"the database driver for {parsed.drivername} is not installed ({exc.name}); "
            "install loreweave[postgres]"
        ) from exc


class Database:
    """An engine, its session factory, and the check that its schema matches this code."""

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self.engine = create_db_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        return safe_url(self.engine.url)

    def session(self) -> Session:
        return self.sessionmaker()

    def uow(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work.  ``read_only`` ones never take SQLite's write lock (they may still
        read while a writer works), and must not write."""
        return UnitOfWork(self.sessionmaker, read_only=read_only)

    def check_connection(self) -> None:
        try:
            with self.engine.connect():
                pass
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            message = f"cannot connect to the database {self.url}: {reason}"
            raise DatabaseUnavailable(message) from exc

    def ensure_schema(self, *, auto_upgrade: bool | None = None) -> None:
        """Refuse a database whose schema is not this code's; migrate it when allowed.

        By default the embedded SQLite database is upgraded automatically, and any other
        database must be upgraded explicitly with ``loreweave db upgrade``.
        """
        self.check_connection()
        if auto_upgrade is None:
            auto_upgrade = self.dialect == "sqlite"
        try:
            current = migrate.current_revision(self.engine)
            head = migrate.head_revision(self.engine)
            if current == head:
                return
            if auto_upgrade:
                migrate.upgrade(self.engine)
                return
        except OperationalError as exc:
            raise DatabaseUnavailable(f"cannot read the schema of {self.url}: {exc.orig}") from exc
        raise SchemaOutOfDate(
            f"the database {self.url} is at schema revision {current or 'none (empty)'} "
            f"but this version of loreweave needs {head}: run `loreweave db upgrade`",
            current=current,
            expected=head,
        )

    def dispose(self) -> None:
        self.engine.dispose()

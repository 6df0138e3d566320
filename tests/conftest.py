"""Shared fixtures: real databases.

``database`` runs each test on SQLite and on PostgreSQL.  PostgreSQL comes from
``TEST_POSTGRES_URL`` (default ``postgresql://127.0.0.1:5432/test``); each test run creates its own
throw-away database on that server.  When the server is unreachable the PostgreSQL cases skip —
except under ``CI=true``, where they fail: CI must exercise the real thing.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loreweave.db import Database, migrate
from loreweave.db.engine import normalise_url
from loreweave.db.models import Base

# pytest-xdist's workers start with COLUMNS=80, which the CLI's rich consoles would keep as their
# width when first imported; without it they read the width each command's environment gives
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, reason: object) -> None:
    if IN_CI:
        pytest.fail(f"{what} must be reachable under CI=true: {reason}")
    pytest.skip(f"{what} unreachable: {reason}")


class PostgresServer:
    """Creates and drops throw-away databases on the configured server."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)

    def create(self) -> str:
        name = f"lw_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(POSTGRES_URL)
    try:
        with server.admin.connect():
            pass
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    yield server
    server.admin.dispose()


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a new, empty database of the requested kind ('sqlite' or 'postgresql')."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'loreweave.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create()
    yield url
    server.drop(url)


@pytest.fixture(scope="session")
def _migrated_postgres(postgres_server: PostgresServer) -> Iterator[Database]:
    url = postgres_server.create()
    database = Database(url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()
    postgres_server.drop(url)


def _truncate(database: Database) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
        connection.execute(text("INSERT INTO sync_counters (name, value) VALUES ('vectors', 0)"))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run (the whole Alembic chain: test_migrations.py runs it
    step by step); each test gets a copy, which costs a file copy instead of 12 migrations."""
    path = tmp_path_factory.mktemp("template") / "loreweave.db"
    template = Database(f"sqlite:///{path}")
    template.ensure_schema()
    template.dispose()
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"the template's journal was not folded in: {leftovers}"
    return path


@pytest.fixture
def migrated_sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """The URL of a new SQLite file at the schema's head (a copy of the run's template)."""
    path = tmp_path / "loreweave.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated, empty database: SQLite in a temporary file, or PostgreSQL."""
    if request.param == "sqlite":
        db = Database(request.getfixturevalue("migrated_sqlite_url"))
        db.ensure_schema()  # reads the revision: at head, nothing runs
        yield db
        db.dispose()
        return
    db = request.getfixturevalue("_migrated_postgres")
    _truncate(db)
    yield db


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    """``TEST_REDIS_URL`` as given, and a key prefix of this test's own: the test's broker keys
    live under it and are deleted afterwards; nothing else of that Redis is touched."""
    import redis

    prefix = f"loreweave-test-{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:
        client.close()
        _unavailable("Redis", exc)
    try:
        yield REDIS_URL, prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def database_url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


# -- the command line, in this process --------------------------------------------------------
class Cli(Protocol):
    def __call__(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``run`` in this process: ``main()`` with the same environment, cwd, argv and stdin."""
    from loreweave.entrypoints.cli import main

    def invoke(
        *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()  # what came before is not this command's
        with monkeypatch.context() as patch:
            for key in list(os.environ):
                if key.startswith("LOREWEAVE_") or key in ("MISTRAL_API_KEY", "OPENAI_API_KEY"):
                    patch.delenv(key)
            # main() sets OPENBLAS_NUM_THREADS unless set: set here, it is undone after
            blas = os.environ.get("OPENBLAS_NUM_THREADS", "1")
            for key, value in {
                "COLUMNS": "250",
                "OPENBLAS_NUM_THREADS": blas,
                **(env or {}),
            }.items():
                patch.setenv(key, value)
            patch.chdir(cwd)
            patch.setattr(sys, "argv", ["loreweave", *args])
            patch.setattr(sys, "stdin", io.StringIO(stdin or ""))
            try:
                main()
                code = 0
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["loreweave", *args], code, out, err)

    return invoke


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-model tests first: they are the longest, so under ``-n 2 --dist loadfile`` one
    worker starts on them while the other takes the rest (the same order on every worker)."""
    items.sort(key=lambda item: item.get_closest_marker("realmodel") is None)

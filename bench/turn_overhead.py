"""The system's own overhead in a chat turn (everything but the main LLM call), and what FAISS
caching costs in memory, as the world grows.

1. Turn overhead p50/p95 at 100, 1k, 10k and 100k entries: query embedding (the real local
   MiniLM), the sync step, the two-tier FAISS search, keyword activation, loading the documents,
   building the prompt, and writing the turn with its analysis job.  The chat model answers at
   once, so the figure is the overhead alone.  Entry vectors are random unit vectors written as
   rows (embedding 100k texts with MiniLM would take half an hour and measure nothing new).
2. The sync step: the cost of the one query before a search when nothing changed, and of applying
   100 rows another process wrote.
3. Index memory for 1k and 10k sessions (a 1k-entry world, 10 notes per session): the overlay
   design measured, against one full index per session (measured on 100 sessions, extrapolated).

    python bench/turn_overhead.py [--sizes 100 1000 10000 100000] [--turns 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import insert, update

from common import percentile, save
from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.models import ChatSession, EntityVector, LoreEntry, SyncCounter, World, utcnow
from loreweave.llm.providers.local import MODEL_NAME, LocalEmbedder
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.registry import Providers
from loreweave.memory.composite import DocumentKey, text_hash
from loreweave.vectors.tier import VectorTier

DIM = 384
KEYS_PER_NOTE = 2  # a noted entity's search keys in a session: its document and its note
WORDS = [
    "ancient",
    "river",
    "crown",
    "storm",
    "harbour",
    "blade",
    "shrine",
    "fox",
    "ember",
    "tower",
    "marsh",
    "guild",
]


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def unit_vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def populate(
    app, entries: int, notes: int, rng: np.random.Generator
) -> tuple[uuid.UUID, uuid.UUID]:  # type: ignore[no-untyped-def]
    now = utcnow()
    with app.database.uow() as uow:
        world = uow.worlds.add(World(name="Bench world"))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        uow.commit()
    ids = [uuid.uuid4() for _ in range(entries)]
    vectors = unit_vectors(entries, rng)
    # lore of 40 words from a vocabulary of 2,000: BM25's postings as long as real lore's
    vocabulary = [f"{WORDS[j % 12]}{j}" for j in range(2000)]
    lore = [
        f"Entity {i}: " + " ".join(vocabulary[int(j)] for j in rng.zipf(1.3, 40) % 2000)
        for i in range(entries)
    ]
    with app.database.engine.begin() as connection:
        for start in range(0, entries, 5000):
            chunk = range(start, min(entries, start + 5000))
            connection.execute(
                insert(LoreEntry),
                [
                    {
                        "id": ids[i],
                        "world_id": world.id,
                        "title": f"{WORDS[i % 12].title()} {i}",
                        "entity_type": "Character",
                        "content": lore[i],
                        "tags": [],
                        "aliases": [],
                        "extra": {},
                        "is_dynamically_generated": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in chunk
                ],
            )
            connection.execute(
                insert(EntityVector),
                [
                    {
                        "world_id": world.id,
                        "lore_entry_id": ids[i],
                        "session_id": None,
                        "text": f"[Base Lore]\n{lore[i]}",
                        "text_hash": text_hash(f"[Base Lore]\n{lore[i]}"),
                        "model": MODEL_NAME,
                        "dim": DIM,
                        "embedding": vectors[i].tobytes(),
                        "version": i + 1,
                        "is_deleted": False,
                        "updated_at": now,
                    }
                    for i in chunk
                ],
            )
        connection.execute(update(SyncCounter).values(value=entries))
    with app.database.uow() as uow:
        for i in range(notes):
            uow.notes.write(session.id, ids[i * 7 % entries], f"Session note {i}.", turn=0)
        uow.commit()
    for i in range(notes):
        app.vectors.sync_entry(ids[i * 7 % entries], session.id)
    return world.id, session.id


def overhead_at(size: int, turns: int, embedder: LocalEmbedder) -> dict[str, float]:
    rng = np.random.default_rng(size)
    with tempfile.TemporaryDirectory() as tmp:
        chat = ScriptedChatModel()
        chat.add("The story goes on.", prompt="chat", repeat=True)
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}", index_dir=Path(tmp) / "index"
        )
        app = build(settings, providers=Providers(chat=chat, embedder=embedder))
        world_id, session_id = populate(app, size, min(20, size), rng)
        started = time.perf_counter()
        first = app.chat.turn(session_id, "The storm reaches the harbour.")
        cold = time.perf_counter() - started
        tier_mb = len(app.cache.world_tier(world_id)) * (DIM * 4) / 2**20
        overheads = []
        for i in range(turns):
            # every message new: a repeated one would find its query vector cached
            message = f"We walk past the {WORDS[i % 12]} and the {WORDS[(i * 5) % 12]}, day {i}."
            overheads.append(app.chat.turn(session_id, message).overhead_seconds)
        # the sync step: nothing new, then 100 rows written by another process
        with app.database.uow(read_only=True) as uow:
            began = time.perf_counter()
            for _ in range(20):
                app.cache.sync_world(uow.session, world_id)
            idle_sync = (time.perf_counter() - began) / 20
        fresh = unit_vectors(100, rng)
        with app.database.uow() as uow:
            from loreweave.memory.composite import SearchKey, compose
            from loreweave.vectors.store import VectorStore

            store = VectorStore(uow.session)
            for i in range(100):
                entry = uow.entries.add(
                    LoreEntry(world_id=world_id, title=f"New {i}", content=f"New entity {i}.")
                )
                document = compose(
                    DocumentKey(entry.id, None), world_id, f"new {i}", None, app.vectors.config
                )
                store.write(document, SearchKey("document", document.text), fresh[i], MODEL_NAME)
            uow.commit()
        with app.database.uow(read_only=True) as uow:
            began = time.perf_counter()
            app.cache.sync_world(uow.session, world_id)
            apply_100 = time.perf_counter() - began
        corpus = app.retriever.lexical._worlds[world_id].corpus if app.retriever.lexical else None
        bm25_mb = (
            sum(v.nbytes for v in corpus.index.scores.values() if hasattr(v, "nbytes")) / 2**20
            if corpus is not None and corpus.index is not None
            else 0.0
        )
        app.close()
        del first
    return {
        "bm25_index_mb": bm25_mb,
        "entries": size,
        "turns": turns,
        "overhead_p50_ms": percentile(overheads, 0.5) * 1e3,
        "overhead_p95_ms": percentile(overheads, 0.95) * 1e3,
        "first_turn_ms": cold * 1e3,
        "world_tier_vectors_mb": tier_mb,
        "idle_sync_ms": idle_sync * 1e3,
        "apply_100_rows_ms": apply_100 * 1e3,
    }


def _overlay_design_mb(sessions: int, entries: int, notes: int) -> float:
    rng = np.random.default_rng(sessions)
    base = rss_mb()
    world = VectorTier(DIM, MODEL_NAME)
    world.index.add_with_ids(unit_vectors(entries, rng), np.arange(entries, dtype=np.int64))
    world.keys = {i: DocumentKey(uuid.uuid4(), None) for i in range(entries)}
    overlays = []
    for s in range(sessions):
        tier = VectorTier(DIM, MODEL_NAME)
        keys = notes * KEYS_PER_NOTE
        ids = np.arange(s * keys, (s + 1) * keys, dtype=np.int64) + 10**7
        tier.index.add_with_ids(unit_vectors(keys, rng), ids)
        session = uuid.uuid4()
        tier.keys = {int(i): DocumentKey(uuid.uuid4(), session) for i in ids}
        overlays.append(tier)
    return rss_mb() - base


def _full_index_mb(sessions: int, entries: int, notes: int) -> float:
    rng = np.random.default_rng(sessions)
    base = rss_mb()
    full = []
    for _ in range(sessions):
        tier = VectorTier(DIM, MODEL_NAME)
        count = entries + notes * KEYS_PER_NOTE
        tier.index.add_with_ids(unit_vectors(count, rng), np.arange(count, dtype=np.int64))
        tier.keys = {i: DocumentKey(uuid.uuid4(), None) for i in range(count)}
        full.append(tier)
    return rss_mb() - base


def _in_fresh_process(function, *args: int) -> float:  # type: ignore[no-untyped-def]
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return float(pool.apply(function, args))


def index_memory(sessions: int, entries: int = 1000, notes: int = 10) -> dict[str, float]:
    """Each measured in a fresh process, so RSS shows what the structures hold."""
    sample = 100
    per_full = _in_fresh_process(_full_index_mb, sample, entries, notes) / sample
    return {
        "sessions": sessions,
        "world_entries": entries,
        "notes_per_session": notes,
        "overlay_design_mb": _in_fresh_process(_overlay_design_mb, sessions, entries, notes),
        "full_index_per_session_mb_extrapolated": per_full * sessions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--turns", type=int, default=60)
    args = parser.parse_args()
    embedder = LocalEmbedder()
    rows = []
    for size in args.sizes:
        row = overhead_at(size, args.turns, embedder)
        print(row)
        rows.append(row)
    memory = [index_memory(n) for n in (1000, 10000)]
    lines = [
        "Turn overhead (everything but the main LLM call; SQLite, local MiniLM query embedding; "
        "retrieval with the last 2 turns, BM25 and keyword activation):",
        "",
        "| entries | p50 ms | p95 ms | first turn ms | world tier vectors MB | BM25 index MB | idle sync ms | apply 100 new rows ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['entries']} | {r['overhead_p50_ms']:.1f} | {r['overhead_p95_ms']:.1f} | {r['first_turn_ms']:.0f} | "
            f"{r['world_tier_vectors_mb']:.1f} | {r['bm25_index_mb']:.1f} | {r['idle_sync_ms']:.2f} | {r['apply_100_rows_ms']:.1f} |"
        )
    lines += [
        "",
        "Index memory (1k-entry world, 10 notes per session, each with 2 search keys: the "
        "document and the note; 384 dims):",
        "",
        "| sessions | overlay design (measured) MB | one full index per session (extrapolated) MB |",
        "|---|---|---|",
    ]
    for m in memory:
        lines.append(
            f"| {m['sessions']} | {m['overlay_design_mb']:.0f} | {m['full_index_per_session_mb_extrapolated']:.0f} |"
        )
    save("turn_overhead", {"overhead": rows, "index_memory": memory}, "\n".join(lines))


if __name__ == "__main__":
    main()

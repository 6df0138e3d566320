"""Peak memory while the workers drain a large backlog of note events.

A service that was down (or a provider that was slow) comes back to thousands of waiting note
events.  This seeds ``--events`` of them (default 2,700: 6 sessions x 30 entries x 15 events)
in a SQLite file, starts the in-process worker pool (``calls_in_flight`` 4, an LLM that answers
at once, the hashing embedder), and samples the process's resident memory every 50 ms until the
backlog is gone.  Reported: RSS before the drain, its peak during it, after it, and the time.

    python bench/backlog_memory.py [--events 2700] [--name backlog_memory]

Run on the code it is given; ``PYTHONPATH=<old checkout>/src`` runs it on older code.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import tempfile
import threading
import time
import uuid
from pathlib import Path

from common import save
from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.engine import Database
from loreweave.db.models import ChatSession, LoreEntry, NoteUpdateTask, TaskStatus, World
from loreweave.llm.registry import Providers
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.testing import HashingEmbedder

_REF = re.compile(r"^\[(E\d+)\] \[Entity\]:", re.M)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


class Rewriter:
    """Answers a rewrite at once: one sentence per note (batched: keyed by ref)."""

    provider = "bench"

    def complete(self, request: ChatRequest) -> ChatResponse:
        text = request.messages[-1].content
        if request.prompt == "rewrite.batch":
            notes = {ref: f"Note rewritten for {ref}." for ref in _REF.findall(text)}
            return ChatResponse(json.dumps({"notes": notes}), request.model)
        return ChatResponse("A note, rewritten with its new events.", request.model)


def seed(database: Database, sessions: int, entries: int, events: int) -> None:
    with database.uow() as uow:
        world = uow.worlds.add(World(name=f"backlog {uuid.uuid4().hex[:6]}"))
        ids = [
            uow.entries.add(
                LoreEntry(world_id=world.id, title=f"Entry {i}", content=f"Entry {i}. " * 40)
            ).id
            for i in range(entries)
        ]
        for s in range(sessions):
            session = uow.sessions.add(ChatSession(world_id=world.id, title=f"run {s}"))
            for turn in range(events):
                for entry_id in ids:
                    uow.session.add(
                        NoteUpdateTask(
                            lore_entry_id=entry_id,
                            session_id=session.id,
                            update_summary=f"At turn {turn} something happened to it. " * 3,
                            turn_index=turn,
                        )
                    )
        uow.commit()


def remaining(database: Database) -> int:
    with database.uow(read_only=True) as uow:
        return len(
            uow.session.scalars(
                NoteUpdateTask.__table__.select().where(
                    NoteUpdateTask.status.in_([TaskStatus.PENDING.value, "processing"])
                )
            ).all()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2700)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--entries", type=int, default=30)
    parser.add_argument("--name", default="backlog_memory")
    args = parser.parse_args()
    sessions, entries = args.sessions, args.entries
    per_key = max(1, args.events // (sessions * entries))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            index_dir=Path(tmp) / "index",
            pipeline_config={"poll_interval": 0.05},
        )
        providers = Providers(chat=Rewriter(), embedder=HashingEmbedder(64))
        lw = build(settings, providers=providers)
        seed(lw.database, sessions, entries, per_key)
        total = remaining(lw.database)
        gc.collect()
        before = rss_mb()
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(rss_mb())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        lw.start_local_workers()
        while remaining(lw.database):
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        lw.close()
        done.set()
        sampler.join()
        gc.collect()
        after = rss_mb()
    figures = {
        "events": total,
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(max(samples), 1),
        "rss_growth_mb": round(max(samples) - before, 1),
        "rss_after_mb": round(after, 1),
        "drain_seconds": round(seconds, 1),
    }
    table = (
        "| events | RSS before | peak while draining | growth | after | drain |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        f"| {total} | {before:.0f} MB | {max(samples):.0f} MB | {max(samples) - before:.0f} MB "
        f"| {after:.0f} MB | {seconds:.0f} s |"
    )
    save(args.name, figures, table)


if __name__ == "__main__":
    main()

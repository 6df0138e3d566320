"""Claiming the next job against the size of the backlog, and analyses per minute while a
backlog builds up.

1. Claim time: N pending analysis jobs (turns) of 8 players' sessions, half of the sessions
   with their head job in flight (held by busy workers), and N pending note updates over
   8 sessions x 10 entries likewise; the time of one claim (then rolled back), p50 and p95 over
   200 claims, for N = 100, 1,000, 10,000.
2. Sustained: 8 players add 4,000 turns as fast as the database takes them while analysis
   workers (an LLM that answers at once) work through them; analyses per minute and the backlog,
   every 5 s.

    python bench/claim_backlog.py [--postgres URL] [--sizes 100 1000 10000] [--turns 4000]

SQLite always (a file, WAL, as the embedded default); PostgreSQL when ``--postgres`` names a
server (a throw-away database is created and dropped there).  Runs on the code it is given, and
also on the code before the job registry (``PYTHONPATH=<old checkout>/src``), to compare.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from common import percentile, save
from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.engine import Database, normalise_url
from loreweave.db.models import ChatSession, ChatTurn, LoreEntry, NoteUpdateTask, World, utcnow
from loreweave.llm.registry import Providers
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.queue.notify import NullNotifier
from loreweave.testing import HashingEmbedder

try:  # the job registry
    from loreweave.queue import jobs
    from loreweave.queue.kinds import KINDS

    CODE = "job registry"

    def claim(db: Session, queue: str) -> list[Any]:
        kind = KINDS.named(queue)
        config = kind.settings(Settings()).model_copy(update={"batch_size": 5})
        return jobs.claim(db, kind, "bench", config, wide=False)  # one key a claim

except ImportError:  # the code before it
    from loreweave.queue import claims  # type: ignore[attr-defined,no-redef]

    CODE = "before the job registry"

    def claim(db: Session, queue: str) -> list[Any]:
        if queue == "analysis":
            turn = claims.claim_turn(db, "bench", 300)
            return [turn] if turn else []
        return claims.claim_note_updates(db, "bench", 300, 5)  # type: ignore[no-any-return]


PLAYERS = 8
ENTRIES = 10
CLAIMS = 200


class Instant:
    """An analysis LLM that answers at once: the pipeline's own cost is what is measured."""

    provider = "instant"

    def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(json.dumps({"updates": [], "creations": []}), request.model)


def world(database: Database) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    with database.uow() as uow:
        w = uow.worlds.add(World(name="bench"))
        sessions = [uow.sessions.add(ChatSession(world_id=w.id)).id for _ in range(PLAYERS)]
        entries = [
            uow.entries.add(LoreEntry(world_id=w.id, title=f"E{i}", content=f"Entity {i}.")).id
            for i in range(ENTRIES)
        ]
        uow.commit()
    return sessions, entries


def fill(database: Database, size: int) -> None:
    sessions, entries = world(database)
    now = utcnow()
    with database.uow() as uow:
        for i in range(size):
            session = sessions[i % PLAYERS]
            turn = i // PLAYERS
            busy = turn == 0 and i % 2 == 0  # half the sessions' heads are in flight
            uow.session.add(
                ChatTurn(
                    session_id=session,
                    turn_index=turn,
                    user_message="u",
                    assistant_message="a",
                    processing_status="processing" if busy else "pending",
                    locked_until=now + timedelta(hours=1) if busy else None,
                    created_at=now + timedelta(microseconds=i),
                    next_attempt_at=now + timedelta(microseconds=i),
                )
            )
            entry = entries[(i // PLAYERS) % ENTRIES]
            uow.session.add(
                NoteUpdateTask(
                    session_id=session,
                    lore_entry_id=entry,
                    update_summary="event",
                    turn_index=i // (PLAYERS * ENTRIES),
                    status="processing" if busy else "pending",
                    locked_until=now + timedelta(hours=1) if busy else None,
                    created_at=now + timedelta(microseconds=i),
                    next_attempt_at=now + timedelta(microseconds=i),
                )
            )
            if i % 2000 == 1999:
                uow.session.flush()
        uow.commit()


def claim_times(database: Database, queue: str) -> list[float]:
    times = []
    for _ in range(CLAIMS):
        with database.uow() as uow:
            started = time.perf_counter()
            claimed = claim(uow.session, queue)
            times.append((time.perf_counter() - started) * 1000)
            assert claimed, f"nothing claimable in {queue}"
            uow.rollback()
    return times


def sustained(database: Database, workdir: Path, turns: int, workers: int) -> list[dict[str, Any]]:
    settings = Settings(index_dir=workdir / "index")
    app = build(
        settings,
        providers=Providers(chat=Instant(), embedder=HashingEmbedder(32)),
        notifier=NullNotifier(),
        database=database,
    )
    sessions, _ = world(database)
    stop = threading.Event()
    analysed = [0]
    lock = threading.Lock()

    def player(session_id: uuid.UUID, count: int) -> None:
        for i in range(count):
            app.chat.persist(session_id, f"turn {i}", "reply", [])

    def worker(index: int) -> None:
        while not stop.is_set():
            if app.pipeline.run_next(f"bench-{index}", ("analysis",), pool=1):
                with lock:
                    analysed[0] += 1
            else:
                time.sleep(0.005)

    threads = [threading.Thread(target=player, args=(s, turns // PLAYERS)) for s in sessions] + [
        threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    windows = []
    started = time.perf_counter()
    last = 0
    while analysed[0] < turns and time.perf_counter() - started < 120:
        time.sleep(5)
        with database.uow(read_only=True) as uow:
            total = int(uow.session.scalar(text("SELECT count(*) FROM chat_turns")) or 0)
        done = analysed[0]
        windows.append(
            {
                "t": round(time.perf_counter() - started),
                "analyses_per_min": (done - last) * 12,
                "backlog": total - done,
            }
        )
        last = done
    stop.set()
    app.close()
    return windows


def databases(postgres: str | None, tmp: Path) -> list[tuple[str, Any]]:
    kinds: list[tuple[str, Any]] = [("sqlite", lambda name: f"sqlite:///{tmp / name}.db")]
    if postgres:
        admin = create_engine(normalise_url(postgres), isolation_level="AUTOCOMMIT")

        def make(name: str) -> str:
            db = f"lw_bench_{name}_{uuid.uuid4().hex[:8]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{db}"'))
            made.append(db)
            return normalise_url(postgres).set(database=db).render_as_string(False)

        made: list[str] = []
        kinds.append(("postgresql", make))
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--turns", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--name", default="claim_backlog")
    args = parser.parse_args()
    rows, figures = [], {"code": CODE, "claim": [], "sustained": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, url_for in databases(args.postgres, Path(tmp)):
            for size in args.sizes:
                database = Database(url_for(f"claim{size}"))
                database.ensure_schema(auto_upgrade=True)
                fill(database, size)
                for queue in ("analysis", "note_updates"):
                    times = claim_times(database, queue)
                    p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
                    figures["claim"].append(
                        {"db": kind, "backlog": size, "queue": queue, "p50": p50, "p95": p95}
                    )
                    rows.append(f"| {kind} | {queue} | {size:,} | {p50:.2f} | {p95:.2f} |")
                    print(rows[-1], flush=True)
                database.dispose()
            database = Database(url_for("sustained"))
            database.ensure_schema(auto_upgrade=True)
            windows = sustained(database, Path(tmp), args.turns, args.workers)
            figures["sustained"][kind] = windows
            database.dispose()
            print(kind, windows, flush=True)
    table = [
        f"Code: {CODE}.",
        "",
        "| database | queue | backlog | claim p50 ms | claim p95 ms |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Sustained: {args.turns:,} turns from {PLAYERS} players, {args.workers} analysis "
        "workers, an LLM answering at once; analyses per minute (backlog) every 5 s:",
        "",
    ]
    for kind, windows in figures["sustained"].items():
        cells = ", ".join(f"{w['analyses_per_min']:,} ({w['backlog']:,})" for w in windows)
        table.append(f"- {kind}: {cells}")
    save(args.name, figures, "\n".join(table))


if __name__ == "__main__":
    main()

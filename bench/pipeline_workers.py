"""Note-update throughput against LLM latency: updates/min and LLM calls per update for 1, 2, 4
and 8 note workers, with the fake provider server answering every chat call in 1 s.

The bound is workers ÷ latency rewrite calls per minute; coalescing lets one call apply several
events, so a burst can exceed it in updates/min.  Two workloads: *spread* (one event per entity,
nothing to fold) and *burst* (five events per entity arrive at once).

    python bench/pipeline_workers.py [--latency 1.0] [--workers 1 2 4 8]

Runs the embedded default (SQLite file, local worker threads), the real OpenAI SDK against the
fake server, and the hashing embedder (embedding cost is not what this measures).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import save
from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.models import ChatSession, LoreEntry, NoteUpdateTask, World
from loreweave.llm.providers.openai_compatible import OpenAIChatModel
from loreweave.llm.registry import Providers
from loreweave.testing import FakeProviderServer, HashingEmbedder

WORKLOADS = {"spread": (48, 1), "burst": (12, 5)}  # entities, events per entity


def run(workers: int, entities: int, per_entity: int, latency: float) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeProviderServer(
            latency=latency, chat_handler=lambda body: "The note, rewritten."
        ) as server,
    ):
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            index_dir=Path(tmp) / "index",
            provider_config={"calls_in_flight": workers},  # type: ignore[arg-type]
            pipeline_config={"poll_interval": 0.02},  # type: ignore[arg-type]
        )
        chat = OpenAIChatModel(None, base_url=server.openai_url, timeout=30)
        app = build(settings, providers=Providers(chat=chat, embedder=HashingEmbedder(64)))
        with app.database.uow() as uow:
            world = uow.worlds.add(World(name="bench"))
            session = uow.sessions.add(ChatSession(world_id=world.id))
            ids = [
                uow.entries.add(
                    LoreEntry(world_id=world.id, title=f"E{i}", content=f"Entity {i}.")
                ).id
                for i in range(entities)
            ]
            uow.commit()
        app.start_local_workers()
        started = time.perf_counter()
        with app.database.uow() as uow:
            for entry_id in ids:
                for turn in range(per_entity):
                    uow.session.add(
                        NoteUpdateTask(
                            lore_entry_id=entry_id,
                            session_id=session.id,
                            update_summary=f"event {turn}",
                            turn_index=turn,
                        )
                    )
            uow.commit()
        app.notifier.notify("note_updates")
        events = entities * per_entity
        while True:
            with app.database.uow(read_only=True) as uow:
                from sqlalchemy import func, select

                done = uow.session.scalar(
                    select(func.count())
                    .select_from(NoteUpdateTask)
                    .where(NoteUpdateTask.status == "done")
                )
            if done == events:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        app.close()
        calls = len(server.requests_to("/v1/chat/completions"))
    bound_calls = workers / latency * 60
    return {
        "workers": workers,
        "events": events,
        "seconds": elapsed,
        "updates_per_min": events / elapsed * 60,
        "llm_calls": calls,
        "calls_per_update": calls / events,
        "calls_per_min": calls / elapsed * 60,
        "bound_calls_per_min": bound_calls,
        "share_of_bound": calls / elapsed * 60 / bound_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    rows = []
    for name, (entities, per_entity) in WORKLOADS.items():
        for workers in args.workers:
            row = {"workload": name, **run(workers, entities, per_entity, args.latency)}
            rows.append(row)
            print(row)
    lines = [
        f"LLM latency {args.latency:.1f} s per call; SQLite + local worker threads.",
        "",
        "| workload | workers | events | updates/min | LLM calls/update | calls/min | bound (workers÷latency) | share of bound |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workload']} | {row['workers']} | {row['events']} | {row['updates_per_min']:.0f} | "
            f"{row['calls_per_update']:.2f} | {row['calls_per_min']:.0f} | {row['bound_calls_per_min']:.0f} | "
            f"{row['share_of_bound']:.0%} |"
        )
    save("pipeline_workers", {"latency_s": args.latency, "runs": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

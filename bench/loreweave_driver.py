"""loreweave's side of bench/vs_mem0.py, in its own process as mem0's is: records every turn of
the workload (each session's turns in order, the sessions at once) and runs the pipeline until
all memory is applied; writes what it measured as JSON.

    python bench/loreweave_driver.py WORKLOAD.json OUT.json --url URL --in-flight 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.models import (
    UNFINISHED,
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    World,
)
from story_standin import world


def _unfinished(lw: Any) -> int:
    with lw.database.uow(read_only=True) as uow:
        return sum(
            int(
                uow.session.scalar(
                    select(func.count()).select_from(model).where(model.status.in_(UNFINISHED))
                )
                or 0
            )
            for model in (ChatTurn, NoteUpdateTask, EntityCreationTask)
        )


def _applied_latencies(lw: Any) -> list[float]:
    """Per turn: from its recording to the last memory change it caused."""
    with lw.database.uow(read_only=True) as uow:
        done: dict[tuple[uuid.UUID, int], Any] = {}
        for model in (ChatTurn, NoteUpdateTask, EntityCreationTask):
            for session_id, index, at in uow.session.execute(
                select(model.session_id, model.turn_index, model.processed_at)
            ):
                key = (session_id, index)
                if at is not None and (key not in done or at > done[key]):
                    done[key] = at
        created = {
            (t.session_id, t.turn_index): t.created_at
            for t in uow.session.scalars(select(ChatTurn))
        }
    return [(done[key] - at).total_seconds() for key, at in created.items() if key in done]


def run_loreweave(
    url: str,
    in_flight: int,
    stories: list[list[tuple[str, str]]],
    work: Path,
    database_url: str | None = None,
    mode: str = "full",
) -> dict[str, Any]:
    settings = Settings(
        database_url=database_url or f"sqlite:///{work / 'loreweave.db'}",
        llm_provider="openai",
        embedding_provider="openai",
        openai_base_url=url,
        index_dir=work / "index",
        llm_config={"embedding_model": "fake-embed"},  # type: ignore[arg-type]
        provider_config={"calls_in_flight": in_flight, "timeout": 300},  # type: ignore[arg-type]
        pipeline_config={"poll_interval": 0.2, "mode": mode},  # type: ignore[arg-type]
        log_level="WARNING",
    )
    lw = build(settings)
    with lw.database.uow() as uow:
        the_world = uow.worlds.add(World(name=f"bench {uuid.uuid4().hex[:6]}"))
        ids = [uow.entries.add(LoreEntry(world_id=the_world.id, **entry)).id for entry in world()]
        sessions = [
            uow.sessions.add(ChatSession(world_id=the_world.id, title=f"s{i}")).id
            for i in range(len(stories))
        ]
        uow.commit()
    lw.vectors.sync_entries(ids)
    lw.start_local_workers()
    cpu = time.process_time()  # this process's CPU from here on: recording and the pipeline
    waits: list[float] = []
    lock = threading.Lock()
    started = time.perf_counter()

    def play(session_id: uuid.UUID, turns: list[tuple[str, str]]) -> None:
        for user, reply in turns:
            begun = time.perf_counter()
            lw.chat.record(session_id, user, reply)
            with lock:
                waits.append(time.perf_counter() - begun)

    players = [
        threading.Thread(target=play, args=(sid, turns))
        for sid, turns in zip(sessions, stories, strict=True)
    ]
    for player in players:
        player.start()
    for player in players:
        player.join()
    while _unfinished(lw):
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    figures: dict[str, Any] = {
        "turns": sum(len(t) for t in stories),
        "seconds": elapsed,
        "cpu_seconds": time.process_time() - cpu,
        "turn_waits": waits,
        "turn_to_memory": _applied_latencies(lw),
    }
    with lw.database.uow(read_only=True) as uow:
        figures["failed_jobs"] = sum(
            int(
                uow.session.scalar(
                    select(func.count()).select_from(model).where(model.status == "failed")
                )
                or 0
            )
            for model in (ChatTurn, NoteUpdateTask, EntityCreationTask)
        )
    lw.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--mode", choices=["full", "lean"], default="full")
    args = parser.parse_args()
    stories = [[tuple(t) for t in turns] for turns in json.loads(args.workload.read_text())]
    with tempfile.TemporaryDirectory() as tmp:
        figures = run_loreweave(
            args.url,
            args.in_flight,
            stories,  # type: ignore[arg-type]
            Path(tmp),
            args.database_url,
            args.mode,
        )
    args.out.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()

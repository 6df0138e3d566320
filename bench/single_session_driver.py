"""One session playing one turn at a time against a stand-in server: how long after each turn
its memory is applied.  Run by bench/single_session_latency.py under the loreweave tree to
measure (PYTHONPATH); uses only what every version since 0.3 has.

    python bench/single_session_driver.py URL OUT.json [--turns 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import select

from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    World,
)
from story_standin import turn, world

UNFINISHED = ("pending", "processing")


def _settled(lw, session_id: uuid.UUID, index: int) -> bool:  # type: ignore[no-untyped-def]
    with lw.database.uow(read_only=True) as uow:
        db = uow.session
        analysed = db.scalar(
            select(ChatTurn.processing_status).where(
                ChatTurn.session_id == session_id, ChatTurn.turn_index == index
            )
        )
        if analysed in UNFINISHED:
            return False
        for model in (NoteUpdateTask, EntityCreationTask):
            if db.scalars(
                select(model.id).where(model.session_id == session_id, model.status.in_(UNFINISHED))
            ).first():
                return False
        return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'one.db'}",
            llm_provider="openai",
            embedding_provider="openai",
            openai_base_url=args.url,
            index_dir=Path(tmp) / "index",
            llm_config={"embedding_model": "fake-embed"},  # type: ignore[arg-type]
            pipeline_config={"poll_interval": 1.0},  # type: ignore[arg-type]
            log_level="WARNING",
        )
        lw = build(settings)
        with lw.database.uow() as uow:
            the_world = uow.worlds.add(World(name=f"one {uuid.uuid4().hex[:6]}"))
            ids = [uow.entries.add(LoreEntry(world_id=the_world.id, **e)).id for e in world()]
            session_id = uow.sessions.add(ChatSession(world_id=the_world.id, title="one")).id
            uow.commit()
        lw.vectors.sync_entries(ids)
        lw.start_local_workers()
        latencies = []
        for index in range(args.turns):
            started = time.perf_counter()
            lw.chat.record(session_id, *turn(0, index))
            while not _settled(lw, session_id, index):
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
        lw.close()
    args.out.write_text(json.dumps(latencies))


if __name__ == "__main__":
    main()

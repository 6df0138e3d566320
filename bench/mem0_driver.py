"""mem0's side of bench/vs_mem0.py, run by it in mem0's own virtual environment (it imports
nothing of loreweave).  Reads the workload, feeds every turn to ``Memory.add`` — a session's turns
in order, ``--in-flight`` adds at a time (mem0 makes one LLM call per add) — and writes what it
measured as JSON.

    <mem0 venv>/bin/python bench/mem0_driver.py WORKLOAD.json OUT.json --url URL --in-flight 16
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("MEM0_TELEMETRY", "False")

from mem0 import Memory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--url", required=True, help="the stand-in's OpenAI URL, with /v1")
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    sessions: list[list[list[str]]] = json.loads(args.workload.read_text())
    memory = _memory(args.url, Path(tempfile.mkdtemp(prefix="mem0-bench-")))
    _run(memory, sessions, args.in_flight, args.out)


def _memory(url: str, work: Path) -> Memory:
    """mem0 on the stand-in (LLM and embeddings) with a local FAISS store."""
    return Memory.from_config(
        {
            "llm": {
                "provider": "openai",
                "config": {"model": "fake", "api_key": "none", "openai_base_url": url},
            },
            "embedder": {
                "provider": "openai",
                "config": {
                    "model": "fake-embed",
                    "api_key": "none",
                    "openai_base_url": url,
                    "embedding_dims": 64,
                },
            },
            "vector_store": {
                "provider": "faiss",
                "config": {"path": str(work / "faiss"), "embedding_model_dims": 64},
            },
            "history_db_path": str(work / "history.db"),
        }
    )


class _Run:
    """The turns to feed: a session's next turn is ready once its previous one is added."""

    def __init__(self, memory: Memory, sessions: list[list[list[str]]], in_flight: int) -> None:
        self.memory, self.sessions, self.in_flight = memory, sessions, in_flight
        self.ready: queue.Queue[tuple[int, int] | None] = queue.Queue()
        for session in range(len(sessions)):
            self.ready.put((session, 0))
        self.total = sum(len(turns) for turns in sessions)
        self.waits: list[float] = []
        self.applied: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.started = time.perf_counter()

    def add(self, session: int, index: int) -> None:
        user, reply = self.sessions[session][index]
        begun = time.perf_counter()
        try:
            self.memory.add(
                [{"role": "user", "content": user}, {"role": "assistant", "content": reply}],
                user_id=f"session-{session}",
            )
        except Exception as exc:  # counted, reported
            with self.lock:
                self.errors.append(repr(exc))
        done = time.perf_counter()
        with self.lock:
            self.waits.append(done - begun)  # the turn waits for its add: it runs in the turn
            self.applied.append(done - self.started)  # every turn was submitted at the start
            finished = len(self.applied)
        if index + 1 < len(self.sessions[session]):
            self.ready.put((session, index + 1))
        if finished == self.total:
            for _ in range(self.in_flight):
                self.ready.put(None)

    def worker(self) -> None:
        while (item := self.ready.get()) is not None:
            self.add(*item)


def _run(memory: Memory, sessions: list[list[list[str]]], in_flight: int, out: Path) -> None:
    run = _Run(memory, sessions, in_flight)
    cpu = time.process_time()
    threads = [threading.Thread(target=run.worker) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.write_text(
        json.dumps(
            {
                "turns": run.total,
                "seconds": time.perf_counter() - run.started,
                "cpu_seconds": time.process_time() - cpu,
                "turn_waits": run.waits,
                "turn_to_memory": run.applied,
                "errors": run.errors[:5],
                "failed_jobs": len(run.errors),
            }
        )
    )


if __name__ == "__main__":
    main()

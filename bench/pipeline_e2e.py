"""The whole system under load, through the real HTTP service, against the spec's targets.

A fake provider server answers as the OpenAI API does (chat 1.0 s ± 30 %, embeddings 0.2 s):
every analysis yields U updates and C creations.  Phase 1 plays S sessions x T turns (sessions in
parallel, turns in order) and waits for the memory to settle; phases 2 and 3 fire 100 and 1,000
turns at once.  Run on (a) the embedded default — SQLite, local worker threads inside
`loreweave serve` — and (b) PostgreSQL + Celery on Redis, with `loreweave worker --backend
celery` (one Celery worker process pool per queue).

    python bench/pipeline_e2e.py [--setup sqlite postgres] [--sessions 10] [--turns 5]

Results: bench/results/pipeline_e2e.json and .md.  Needs PostgreSQL and Redis for (b)
(TEST_POSTGRES_URL, TEST_REDIS_URL as the tests use them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from common import percentile, save
from loreweave.db.engine import normalise_url
from loreweave.testing import FakeProviderServer

NOTE_WORKERS, CREATION_WORKERS, ANALYSIS_WORKERS = 8, 4, 4
ENTITIES = 20
SETTLE_TIMEOUT = 900.0


def llm_answers(updates: int, creations: int):  # type: ignore[no-untyped-def]
    """The fake LLM: answers each prompt as a well-behaved model would."""

    def answer(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("You are the continuity analyst"):
            refs = re.findall(r"^(E\d+) \| ", prompt, re.M)[:ENTITIES]
            chosen = (
                [refs[(uuid.uuid4().int + i) % len(refs)] for i in range(updates)] if refs else []
            )
            return json.dumps(
                {
                    "updates": [
                        {
                            "lore_entry_id": r,
                            "update_summary": f"Event {uuid.uuid4().hex[:6]} changed things.",
                        }
                        for r in dict.fromkeys(chosen)
                    ],
                    "creations": [
                        {
                            "entity_type": "Character",
                            "creation_summary": f"A new character named Zed{uuid.uuid4().hex[:8]} arrived.",
                        }
                        for _ in range(creations)
                    ],
                }
            )
        if "continuity editor" in prompt:
            return "The note, rewritten with the new events: " + uuid.uuid4().hex
        if "world-building assistant" in prompt:
            name = re.search(r"named (Zed\w+)", prompt)
            return json.dumps(
                {
                    "title": name.group(1) if name else "Someone",
                    "content": "A newcomer to the story.",
                    "tags": ["new"],
                }
            )
        return "The story continues."

    return answer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pgid: int) -> float:
    """Sum of the peak RSS (VmHWM) of every live process in a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


class Service:
    def __init__(self, setup: str, provider: FakeProviderServer, workdir: Path) -> None:
        self.setup = setup
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOREWEAVE_")}
        env.update(
            LOREWEAVE_LLM_PROVIDER="openai",
            LOREWEAVE_EMBEDDING_PROVIDER="openai",
            LOREWEAVE_OPENAI_BASE_URL=provider.openai_url,
            LOREWEAVE_LLM_CONFIG__EMBEDDING_MODEL="fake-embed",
            LOREWEAVE_PROVIDER_CONFIG__REQUESTS_PER_SECOND="1000",
            LOREWEAVE_PROVIDER_CONFIG__TOKENS_PER_MINUTE="100000000",
            # one pool of calls in flight; the earlier fixed pools as its per-queue caps
            LOREWEAVE_PROVIDER_CONFIG__CALLS_IN_FLIGHT=str(
                NOTE_WORKERS + CREATION_WORKERS + ANALYSIS_WORKERS
            ),
            LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__CONCURRENT_WORKERS=str(NOTE_WORKERS),
            LOREWEAVE_DUAL_QUEUE_CONFIG__ENTITY_CREATION_QUEUE__CONCURRENT_WORKERS=str(
                CREATION_WORKERS
            ),
            LOREWEAVE_PIPELINE_CONFIG__ANALYSIS_WORKERS=str(ANALYSIS_WORKERS),
            # one job per call, as this benchmark's stand-in answers only the single prompts
            # (batching is measured by bench/vs_mem0.py)
            LOREWEAVE_DUAL_QUEUE_CONFIG__ANALYSIS_QUEUE__BATCH_SIZE="1",
            LOREWEAVE_DUAL_QUEUE_CONFIG__ENTITY_CREATION_QUEUE__BATCH_SIZE="1",
            LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__ENTITIES_PER_CALL="1",
            LOREWEAVE_PIPELINE_CONFIG__REWRITE_FIRST_NOTE="true",
            LOREWEAVE_PIPELINE_CONFIG__POLL_INTERVAL="0.2",
            LOREWEAVE_PIPELINE_CONFIG__SWEEP_INTERVAL="2",
            LOREWEAVE_INDEX_DIR=str(workdir / "index"),
            LOREWEAVE_LOG_LEVEL="WARNING",
        )
        if setup == "sqlite":
            self.database_url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            admin = create_engine(
                normalise_url(
                    os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
                ),
                isolation_level="AUTOCOMMIT",
            )
            name = f"lw_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self.admin, self.dbname = admin, name
            self.database_url = (
                normalise_url(admin.url).set(database=name).render_as_string(hide_password=False)
            )
            env.update(
                LOREWEAVE_QUEUE_BACKEND="celery",
                LOREWEAVE_BROKER_URL=os.environ.get(
                    "TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
                ).rsplit("/", 1)[0]
                + "/14",
            )
        env["LOREWEAVE_DATABASE_URL"] = self.database_url
        self.env = env
        self.log = (workdir / "service.log").open("wb")

    def start(self) -> None:
        run = [sys.executable, "-m", "loreweave"]
        subprocess.run([*run, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        serve = [*run, "serve", "--port", str(self.port)]
        if self.setup != "sqlite":
            serve.append("--no-workers")
            self.processes.append(
                subprocess.Popen(
                    [*run, "worker", "--backend", "celery"],
                    env=self.env,
                    stdout=self.log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self.processes.insert(
            0,
            subprocess.Popen(
                serve,
                env=self.env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ),
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start; see service.log")
            time.sleep(0.2)

    def peak_memory_mb(self) -> float:
        return sum(peak_rss_mb(p.pid) for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self.setup != "sqlite":
            with self.admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)'))


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def make_world(client: httpx.Client, sessions: int) -> list[str]:
    world = client.post("/api/worlds", json={"name": "Bench"}).json()["id"]
    for i in range(ENTITIES):
        client.post(
            f"/api/worlds/{world}/lore-entries",
            json={
                "title": f"Person {i}",
                "entity_type": "Character",
                "content": f"Person {i} lives in the valley.",
            },
        ).raise_for_status()
    return [
        client.post(f"/api/worlds/{world}/sessions", json={}).json()["id"] for _ in range(sessions)
    ]


def play(
    url: str, sessions: list[str], turns: int
) -> tuple[list[float], list[float], int, dict[str, list[float]]]:
    """Every session plays ``turns`` turns, sessions in parallel: response seconds, overhead ms,
    errors, and the overhead's parts in ms."""
    times: list[float] = []
    overheads: list[float] = []
    parts: dict[str, list[float]] = {}
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(len(sessions))

    def session(session_id: str) -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            start.wait()
            for turn in range(turns):
                began = time.perf_counter()
                response = client.post(
                    f"/api/sessions/{session_id}/turns",
                    json={"message": f"Turn {turn}: we press on."},
                )
                elapsed = time.perf_counter() - began
                with lock:
                    if response.status_code == 200:
                        times.append(elapsed)
                        overheads.append(response.json()["overhead_ms"])
                        for name, ms in response.json()["timings_ms"].items():
                            parts.setdefault(name, []).append(ms)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=session, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, overheads, errors[0], parts


def settle(client: httpx.Client, timeout: float) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        status = client.get("/api/dual-queue/status").json()
        busy = sum(
            status[q]["counts"]["pending"] + status[q]["counts"]["processing"]
            for q in ("analysis", "note_updates", "entity_creations")
        )
        if busy == 0:
            return time.monotonic() - began
        time.sleep(0.5)
    return None


def latencies(database_url: str, sessions: list[str]) -> dict[str, Any]:
    engine = create_engine(normalise_url(database_url))
    ids = ",".join(
        f"'{s}'" if "sqlite" not in database_url else f"'{uuid.UUID(s).hex}'" for s in sessions
    )
    figures: dict[str, Any] = {}
    with engine.connect() as connection:
        for name, table in (
            ("note_update", "note_update_tasks"),
            ("entity_creation", "entity_creation_tasks"),
        ):
            rows = connection.execute(
                text(
                    f"SELECT t.created_at, t.processed_at, c.created_at FROM {table} t JOIN chat_turns c "
                    f"ON c.session_id = t.session_id AND c.turn_index = t.turn_index "
                    f"WHERE t.status = 'done' AND t.session_id IN ({ids})"
                )
            ).all()
            values = [
                (_utc(processed, engine) - _utc(turn_at, engine)).total_seconds()
                for _, processed, turn_at in rows
            ]
            figures[f"{name}_done"] = len(values)
            figures[f"{name}_latency_p50_s"] = percentile(values, 0.5)
            figures[f"{name}_latency_p95_s"] = percentile(values, 0.95)
        figures["failed_tasks"] = int(
            connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM note_update_tasks WHERE status='failed') + (SELECT count(*) FROM entity_creation_tasks WHERE status='failed')"
                )
            ).scalar()
            or 0
        )
    engine.dispose()
    return figures


def _utc(value: Any, engine: Any) -> Any:
    """A timestamp read with raw SQL, as the ORM would give it: aware UTC."""
    from datetime import datetime

    from loreweave.db.models import UTCDateTime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, engine.dialect)


def run_setup(
    setup: str, sessions: int, turns: int, updates: int, creations: int, provider_rps: float | None
) -> dict[str, Any]:
    result: dict[str, Any] = {"setup": setup}
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeProviderServer(
            chat_handler=llm_answers(updates, creations),
            requests_per_second=provider_rps,
            latency=1.0,
            jitter=0.3,
            embedding_latency=0.2,
            embedding_dim=64,
        ) as provider,
    ):
        service = Service(setup, provider, Path(tmp))
        service.start()
        try:
            with httpx.Client(base_url=service.url, timeout=600) as client:
                phases = []
                for label, count, per in (
                    ("played", sessions, turns),
                    ("100 at once", 100, 1),
                    ("1000 at once", 1000, 1),
                ):
                    ids = make_world(client, count)
                    calls_before = len(provider.requests_to("/v1/chat/completions"))
                    began = time.monotonic()
                    busy_before, total_before = cpu_times()
                    times, overheads, errors, parts = play(service.url, ids, per)
                    chat_seconds = time.monotonic() - began
                    busy_after, total_after = cpu_times()
                    settled = settle(client, SETTLE_TIMEOUT if count <= 100 else 0.0)
                    phase: dict[str, Any] = {
                        "phase": label,
                        "sessions": count,
                        "turns": count * per,
                        "errors": errors,
                        "chat_p50_s": percentile(times, 0.5),
                        "chat_p95_s": percentile(times, 0.95),
                        "overhead_p50_ms": percentile(overheads, 0.5),
                        "overhead_p95_ms": percentile(overheads, 0.95),
                        "chat_phase_s": chat_seconds,
                        "cpu_busy_during_chat": (busy_after - busy_before)
                        / max(1, total_after - total_before),
                        "timings_p50_ms": {name: percentile(v, 0.5) for name, v in parts.items()},  # type: ignore[attr-defined]
                    }
                    if settled is not None:
                        total = chat_seconds + settled
                        phase.update(latencies(service.database_url, ids))
                        rewrites = sum(
                            1
                            for r in provider.requests_to("/v1/chat/completions")[calls_before:]
                            if "continuity editor" in r.json["messages"][-1]["content"]
                        )
                        phase["settled_after_s"] = settled
                        phase["updates_per_min"] = phase["note_update_done"] / total * 60
                        phase["llm_calls_per_update"] = rewrites / max(1, phase["note_update_done"])
                        phase["rewrite_calls_per_min"] = rewrites / total * 60
                    phases.append(phase)
                    print(setup, phase, flush=True)
                result["phases"] = phases
                result["peak_memory_mb"] = service.peak_memory_mb()
        finally:
            service.stop()
    return result


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    bound = NOTE_WORKERS / 1.0 * 60
    lines = [
        f"Fake provider: chat 1.0 s ± 30 %, embeddings 0.2 s. Each analysis: {args.updates} updates, {args.creations} creation(s). "
        f"Workers: {ANALYSIS_WORKERS} analysis, {NOTE_WORKERS} note, {CREATION_WORKERS} creation; bound {bound:.0f} rewrite calls/min.",
        "",
        "| setup | phase | turns | CPU busy | chat p50 / p95 s | overhead p50 / p95 ms | note update latency p50 / p95 s | creation latency p50 / p95 s | updates/min | LLM calls/update | share of bound | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for p in result["phases"]:
            settled = "settled_after_s" in p
            lines.append(
                f"| {result['setup']} | {p['phase']} | {p['turns']} | {p['cpu_busy_during_chat']:.0%} | {p['chat_p50_s']:.2f} / {p['chat_p95_s']:.2f} | "
                f"{p['overhead_p50_ms']:.0f} / {p['overhead_p95_ms']:.0f} | "
                + (
                    f"{p['note_update_latency_p50_s']:.1f} / {p['note_update_latency_p95_s']:.1f} | {p['entity_creation_latency_p50_s']:.1f} / {p['entity_creation_latency_p95_s']:.1f} | "
                    f"{p['updates_per_min']:.0f} | {p['llm_calls_per_update']:.2f} | {p['rewrite_calls_per_min'] / bound:.0%} |"
                    if settled
                    else "not waited for | | | | |"
                )
                + f" {p['errors']} |"
            )
        lines += [
            f"| {result['setup']} | {p['phase']}: p50 ms retrieval / prompt / LLM / persist | "
            + " / ".join(
                f"{p['timings_p50_ms'].get(k, 0):.0f}"
                for k in ("retrieval", "prompt", "llm", "persist")
            )
            + " | | | | | | | | | |"
            for p in result["phases"]
        ]
        lines.append(
            f"| {result['setup']} | peak memory (service + workers) | {result['peak_memory_mb']:.0f} MB | | | | | | | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setup", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--updates", type=int, default=2)
    parser.add_argument("--creations", type=int, default=1)
    parser.add_argument(
        "--provider-rps",
        type=float,
        default=None,
        help="the fake provider's own rate limit (429 with Retry-After beyond it)",
    )
    args = parser.parse_args()
    results = [
        run_setup(s, args.sessions, args.turns, args.updates, args.creations, args.provider_rps)
        for s in args.setup
    ]
    save("pipeline_e2e", {"args": vars(args), "results": results}, table(results, args))


if __name__ == "__main__":
    main()

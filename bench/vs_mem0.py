"""loreweave against mem0 under load: 20 sessions x 10 turns submitted at once, the same stand-in
LLM server (one write per answer, TCP_NODELAY) and the same number of LLM calls in flight.

For each latency model — a fixed 1.0 s per call, and 0.25 s + 0.05 ms per input token + 15 ms
per output token — and each number of calls in flight (4, 16):
- loreweave (embedded default: SQLite, in-process workers, ``calls_in_flight`` = N; in its own
  process, bench/loreweave_driver.py): every turn is recorded (``POST …/turns`` semantics:
  ``chat.record``), and the pipeline runs until all memory is applied;
- mem0 2.2.1 (PyPI ``mem0ai``, FAISS store, in its own virtual environment): every turn goes to
  ``Memory.add``, N at a time, a session's turns in order (bench/mem0_driver.py).
Both use the stand-in's embeddings (20 ms a call).  Measured: turns fully ingested per minute,
LLM calls and input/output tokens per turn (counted by the server), what a turn waits for memory
(loreweave: ``record``; mem0: ``add``, which runs in the turn), and turn → memory applied.

    python bench/vs_mem0.py [--mem0-python /work/mem0-venv/bin/python] [--in-flight 4 16]

Results: bench/results/vs_mem0.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import percentile, save
from loreweave.testing import FakeProviderServer
from story_standin import PROMPT_HANDLERS, by_wording, turn

SESSIONS, TURNS = 20, 10
EMBEDDING_LATENCY = 0.02
MODELS: dict[str, Callable[[int, int], float]] = {
    "fixed 1.0 s": lambda tokens_in, tokens_out: 1.0,
    "0.25 s + 0.05 ms/in + 15 ms/out": lambda tokens_in, tokens_out: (
        0.25 + 0.00005 * tokens_in + 0.015 * tokens_out
    ),
}
HERE = Path(__file__).parent


def workload(sessions: int, turns: int) -> list[list[tuple[str, str]]]:
    return [[turn(s, t) for t in range(turns)] for s in range(sessions)]


def _llm_figures(
    server: FakeProviderServer, mark: int, turns: int, model: Callable[[int, int], float]
) -> dict[str, float]:
    calls = [r for r in server.requests[mark:] if r.path.endswith("/chat/completions")]
    # the model-seconds the stand-in spent answering: what the calls in flight share
    model_seconds = sum(model(r.prompt_tokens, r.completion_tokens) for r in calls)
    by_prompt: dict[str, list[int]] = {}
    for r in calls:  # calls, input and output tokens per turn, by prompt name
        figures = by_prompt.setdefault(r.prompt or "(mem0)", [0, 0, 0])
        figures[0] += 1
        figures[1] += r.prompt_tokens
        figures[2] += r.completion_tokens
    return {
        "llm_calls_per_turn": len(calls) / turns,
        "input_tokens_per_turn": sum(r.prompt_tokens for r in calls) / turns,
        "output_tokens_per_turn": sum(r.completion_tokens for r in calls) / turns,
        "model_seconds_per_turn": model_seconds / turns,
        "per_turn_by_prompt": {
            name: [round(v / turns, 2) for v in values] for name, values in by_prompt.items()
        },
    }


def _waits(waits: list[float], applied: list[float]) -> dict[str, float]:
    return {
        "turn_wait_p50_ms": percentile(waits, 0.5) * 1000,
        "turn_wait_p95_ms": percentile(waits, 0.95) * 1000,
        "turn_to_memory_p50_s": percentile(applied, 0.5),
        "turn_to_memory_p95_s": percentile(applied, 0.95),
    }


def _drive(
    server: FakeProviderServer,
    command: list[str],
    stories: list[list[tuple[str, str]]],
    work: Path,
    extra: list[str],
    model: Callable[[int, int], float],
    in_flight: int,
) -> dict[str, Any]:
    """Run a driver on the workload against the stand-in; its figures and the server's.  The
    bound is the turns a minute the calls in flight allow at the model-seconds a turn took
    (in_flight / model-seconds per turn): how much of it a system reaches says how well it
    keeps its calls busy."""
    load, out = work / "workload.json", work / "measured.json"
    load.write_text(json.dumps(stories))
    mark = len(server.requests)
    subprocess.run([*command, str(load), str(out), "--url", server.openai_url, *extra], check=True)
    measured = json.loads(out.read_text())
    turns = measured["turns"]
    llm = _llm_figures(server, mark, turns, model)
    per_minute = turns / measured["seconds"] * 60
    bound = in_flight / llm["model_seconds_per_turn"] * 60 if llm["model_seconds_per_turn"] else 0
    return {
        "turns": turns,
        "seconds": measured["seconds"],
        "turns_per_minute": per_minute,
        "bound_turns_per_minute": bound,
        "of_bound": per_minute / bound if bound else 0.0,
        "cpu_seconds_per_turn": measured.get("cpu_seconds", 0.0) / turns,
        **llm,
        **_waits(measured["turn_waits"], measured["turn_to_memory"]),
        "failed_jobs": measured["failed_jobs"],
    }


def run_loreweave(
    server: FakeProviderServer,
    in_flight: int,
    stories: list[list[tuple[str, str]]],
    work: Path,
    database_url: str | None,
    model: Callable[[int, int], float],
    mode: str,
) -> dict[str, Any]:
    """loreweave in its own process, as mem0 is (the stand-in server keeps this one's GIL)."""
    extra = ["--in-flight", str(in_flight), "--mode", mode]
    if database_url:
        extra += ["--database-url", database_url]
    command = [sys.executable, str(HERE / "loreweave_driver.py")]
    return _drive(server, command, stories, work, extra, model, in_flight)


def run_mem0(
    server: FakeProviderServer,
    in_flight: int,
    stories: list[list[tuple[str, str]]],
    work: Path,
    python: str,
    model: Callable[[int, int], float],
) -> dict[str, Any]:
    command = [python, str(HERE / "mem0_driver.py")]
    extra = ["--in-flight", str(in_flight)]
    return _drive(server, command, stories, work, extra, model, in_flight)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mem0-python", default="/work/mem0-venv/bin/python")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--turns", type=int, default=TURNS)
    parser.add_argument("--only", choices=["loreweave", "mem0"], default=None)
    parser.add_argument("--latency", choices=["fixed", "token"], default=None)
    parser.add_argument(
        "--database-url", default=None, help="loreweave's database (default: a SQLite file)"
    )
    parser.add_argument("--label", default="", help="saved as vs_mem0_<label>")
    parser.add_argument(
        "--mode",
        nargs="+",
        choices=["full", "lean"],
        default=["full", "lean"],
        help="loreweave's pipeline modes to run (pipeline_config.mode)",
    )
    args = parser.parse_args()
    stories = workload(args.sessions, args.turns)
    rows: list[dict[str, Any]] = []
    for model_name, model in MODELS.items():
        if args.latency and (args.latency == "fixed") != model_name.startswith("fixed"):
            continue
        for in_flight in args.in_flight:
            systems = [*(f"loreweave {mode}" for mode in args.mode), "mem0"]
            for system in systems:
                if args.only and not system.startswith(args.only):
                    continue
                with (
                    tempfile.TemporaryDirectory() as tmp,
                    FakeProviderServer(
                        chat_handler=by_wording,
                        prompt_handlers=PROMPT_HANDLERS,
                        latency_model=model,
                        embedding_latency=EMBEDDING_LATENCY,
                    ) as server,
                ):
                    work = Path(tmp)
                    if system == "mem0":
                        figures = run_mem0(
                            server, in_flight, stories, work, args.mem0_python, model
                        )
                    else:
                        mode = system.split()[1]
                        figures = run_loreweave(
                            server, in_flight, stories, work, args.database_url, model, mode
                        )
                row = {"latency": model_name, "in_flight": in_flight, "system": system, **figures}
                print(json.dumps(row))
                rows.append(row)
    header = (
        "| latency model | in flight | system | turns/min | of bound | CPU s/turn | "
        "LLM calls/turn | input tok/turn | output tok/turn | model s/turn | "
        "turn waits p50/p95 | turn → memory p50/p95 | failed |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['latency']} | {r['in_flight']} | {r['system']} | {r['turns_per_minute']:.0f} | "
        f"{r['of_bound']:.0%} | {r['cpu_seconds_per_turn']:.3f} | "
        f"{r['llm_calls_per_turn']:.2f} | {r['input_tokens_per_turn']:.0f} | "
        f"{r['output_tokens_per_turn']:.0f} | {r['model_seconds_per_turn']:.2f} | "
        f"{r['turn_wait_p50_ms']:.0f} / "
        f"{r['turn_wait_p95_ms']:.0f} ms | {r['turn_to_memory_p50_s']:.1f} / "
        f"{r['turn_to_memory_p95_s']:.1f} s | {r['failed_jobs']} |"
        for r in rows
    ]
    save(
        f"vs_mem0_{args.label}" if args.label else "vs_mem0",
        {"sessions": args.sessions, "turns": args.turns, "rows": rows},
        f"{args.sessions} sessions x {args.turns} turns submitted at once; tokens as the "
        "stand-in counts them (4 characters each).\n\n" + header + "\n".join(lines),
    )


if __name__ == "__main__":
    main()

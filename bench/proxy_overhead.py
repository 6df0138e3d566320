"""The OpenAI-compatible proxy's own overhead, and where it goes: everything a
``/v1/chat/completions`` request costs but the upstream call, through the real HTTP service
(uvicorn on 127.0.0.1, one keep-alive connection, as an app holds one), SQLite.

The upstream answers at once and times itself; each answer's ``Server-Timing`` header splits
the rest: ``body`` (reading and validating the request: the HTTP body, FastAPI, pydantic),
loreweave's own following (``target``, ``match``: finding the chat and planning; ``stored``:
reading the caller's stored chats; ``follow``: changing it), ``retrieve`` (the local MiniLM
query embedding, FAISS, BM25, keywords, the lore block), ``record`` (the turn written), and
``http`` (what is left: the connection, routing, writing the answer).  A world of ``--sizes``
entries (as in ``turn_overhead.py``), 20 other chats in it, and one chat grown to the longest of
``--turns`` turns whose every request resends the whole conversation, as apps do; each figure
is over the ten requests up to that length.

    python bench/proxy_overhead.py [--sizes 1000] [--turns 10 60 150]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from common import percentile, save
from loreweave.api import create_app
from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.llm.providers.local import LocalEmbedder
from loreweave.llm.registry import Providers
from loreweave.llm.types import ChatRequest, ChatResponse
from turn_overhead import WORDS, populate


class Upstream:
    provider = "bench"

    def __init__(self) -> None:
        self.seconds = 0.0

    def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        last = request.messages[-1].content
        reply = ChatResponse(f"The story goes on after: {last[:30]}", request.model)
        self.seconds += time.perf_counter() - started
        return reply


@contextmanager
def serving(app: object) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


PHASES = ("body", "target", "match", "stored", "follow", "retrieve", "record")
OWN = ("target", "match", "stored", "follow")  # loreweave's following of the chat
WINDOW = 10  # requests per figure: the ten up to each length


def timing(header: str) -> dict[str, float]:
    """A ``Server-Timing`` header as seconds by phase."""
    phases = (part.split(";dur=") for part in header.split(", ") if ";dur=" in part)
    return {name: float(ms) / 1e3 for name, ms in phases}


def overhead_at(size: int, lengths: list[int], embedder: LocalEmbedder) -> list[dict[str, float]]:
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        upstream = Upstream()
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}", index_dir=Path(tmp) / "index"
        )
        app = build(settings, providers=Providers(chat=upstream, embedder=embedder))
        populate(app, size, min(20, size), np.random.default_rng(size))
        with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            model = "loreweave/Bench world"
            for other in range(20):  # other chats of the world, each of three turns
                messages = [{"role": "system", "content": "You narrate."}]
                for turn in range(3):
                    messages.append({"role": "user", "content": f"Chat {other}, turn {turn}."})
                    body = {"model": model, "messages": messages}
                    reply = client.post("/v1/chat/completions", json=body).json()
                    messages.append(reply["choices"][0]["message"])
            messages = [{"role": "system", "content": "You narrate."}]
            for i in range(max(lengths)):
                text = f"We walk past the {WORDS[i % 12]} and the {WORDS[(i * 5) % 12]}, day {i}."
                messages.append({"role": "user", "content": text})
                upstream.seconds = 0.0
                started = time.perf_counter()
                body = {"model": model, "messages": messages}
                answer = client.post("/v1/chat/completions", json=body)
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200, answer.text
                messages.append(answer.json()["choices"][0]["message"])
                phases = timing(answer.headers["server-timing"])
                phases.pop("upstream", None)  # the upstream times itself, below
                sample = {name: phases.get(name, 0.0) for name in PHASES}
                sample["overhead"] = elapsed - upstream.seconds
                sample["own"] = sum(sample[name] for name in OWN)
                sample["http"] = sample["overhead"] - sum(sample[name] for name in PHASES)
                samples.append(sample)
        app.close()
    rows = []
    for length in lengths:
        window = samples[max(0, length - WINDOW) : length]
        row: dict[str, float] = {"entries": size, "turns": length, "messages": 2 * length - 1}
        for name in ("overhead", "own", *PHASES, "http"):
            values = [sample[name] for sample in window]
            row[f"{name}_p50_ms"] = percentile(values, 0.5) * 1e3
            row[f"{name}_p95_ms"] = percentile(values, 0.95) * 1e3
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--turns", type=int, nargs="+", default=[10, 60, 150])
    args = parser.parse_args()
    embedder = LocalEmbedder()
    rows = []
    for size in args.sizes:
        rows += overhead_at(size, sorted(args.turns), embedder)
        for row in rows[-len(args.turns) :]:
            print({k: round(v, 2) for k, v in row.items()})
    parts = ("own", "body", "retrieve", "record", "http")
    lines = [
        "Proxy overhead (a /v1/chat/completions request but the upstream call; SQLite, local "
        "MiniLM; one chat resent whole on every request, 20 other chats; p50 / p95 of the ten "
        "requests up to each length, from the answers' Server-Timing):",
        "",
        "| entries | turns | overhead ms | loreweave's following ms | body ms | retrieve ms "
        "| record ms | http ms |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['entries']} | {r['turns']} | "
            f"{r['overhead_p50_ms']:.1f} / {r['overhead_p95_ms']:.1f} | "
            + " | ".join(f"{r[f'{p}_p50_ms']:.1f} / {r[f'{p}_p95_ms']:.1f}" for p in parts)
            + " |"
            for r in rows
        ),
        "",
        "loreweave's following = target + match (finding the chat, planning) + stored (reading "
        "the caller's stored chats) + follow (changing the chat); by phase, p50 ms: "
        + "; ".join(
            f"{r['turns']} turns: " + ", ".join(f"{name} {r[f'{name}_p50_ms']:.2f}" for name in OWN)
            for r in rows
        ),
    ]
    save("proxy_overhead", {"overhead": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

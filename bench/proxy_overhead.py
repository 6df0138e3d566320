"""The OpenAI-compatible proxy's own overhead: everything a ``/v1/chat/completions`` request
costs but the upstream call -- reading the request, finding the chat among the world's chats,
following it, retrieval (the local MiniLM query embedding, FAISS, BM25, keywords), the lore
block, and recording the turn -- through the real HTTP service (uvicorn on 127.0.0.1, one
keep-alive connection, as an app holds one), SQLite.

The upstream answers at once and times itself; overhead = request time - upstream time.  A
world of 1k and 10k entries (as in ``turn_overhead.py``), 20 other chats in it, and a chat of
``--turns`` turns whose every request resends the whole conversation, as apps do.

    python bench/proxy_overhead.py [--sizes 1000 10000] [--turns 60]
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


def overhead_at(size: int, turns: int, embedder: LocalEmbedder) -> dict[str, float]:
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
            overheads = []
            for i in range(turns):
                text = f"We walk past the {WORDS[i % 12]} and the {WORDS[(i * 5) % 12]}, day {i}."
                messages.append({"role": "user", "content": text})
                upstream.seconds = 0.0
                started = time.perf_counter()
                body = {"model": model, "messages": messages}
                answer = client.post("/v1/chat/completions", json=body)
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200, answer.text
                messages.append(answer.json()["choices"][0]["message"])
                overheads.append(elapsed - upstream.seconds)
        app.close()
    return {
        "entries": size,
        "turns": turns,
        "overhead_p50_ms": percentile(overheads, 0.5) * 1e3,
        "overhead_p95_ms": percentile(overheads, 0.95) * 1e3,
        "last_request_messages": len(messages) - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--turns", type=int, default=60)
    args = parser.parse_args()
    embedder = LocalEmbedder()
    rows = []
    for size in args.sizes:
        rows.append(overhead_at(size, args.turns, embedder))
        print(rows[-1])
    lines = [
        "Proxy overhead (a /v1/chat/completions request but the upstream call; SQLite, local "
        f"MiniLM; a chat of {args.turns} turns resent whole each time, 20 other chats):",
        "",
        "| entries | p50 ms | p95 ms |",
        "|---|---|---|",
        *(
            f"| {r['entries']} | {r['overhead_p50_ms']:.1f} | {r['overhead_p95_ms']:.1f} |"
            for r in rows
        ),
    ]
    save("proxy_overhead", {"overhead": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

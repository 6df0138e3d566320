"""A real HTTP server on 127.0.0.1 answering ``/v1/chat/completions`` and ``/v1/embeddings``
as the Mistral and OpenAI APIs do, so the real SDKs can be tested and benchmarked offline.

Scriptable per test: queue :class:`FakeReply` objects (content, status, headers, delay, a raw
malformed body, a finish reason, tool calls) for the next requests, refuse structured-output
forms as a server that does not know them does (``refused_forms``: ``{"json_schema": 500}``
is llama-cpp-python's server), or set a default ``chat_handler`` (and handlers by the
prompt name loreweave sends in ``X-Loreweave-Prompt``), ``latency`` with jitter — or a latency
model of the tokens in and out — an ``api_key`` to require, and a ``requests_per_second`` limit
answered with 429 + Retry-After.  Every request is recorded in
:attr:`FakeProviderServer.requests`, with its token counts.

Each answer goes out in one write with ``TCP_NODELAY``: headers and body written apart stall on
delayed ACKs (~40 ms a call on Linux), which would inflate every benchmark figure.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loreweave.testing.hashing_embedder import hash_embedding

ChatHandler = Callable[[dict[str, Any]], str]
# seconds a chat completion takes, from its prompt and completion tokens
LatencyModel = Callable[[int, int], float]


@dataclass
class FakeReply:
    """One scripted answer.  ``content`` is the assistant text of a chat completion; ``body``
    replaces the whole response body (e.g. malformed JSON); ``delay`` is seconds to wait."""

    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    delay: float = 0.0
    path: str | None = None  # only for this path ("/v1/chat/completions", "/v1/embeddings")
    prompt: str | None = None  # only for requests of this prompt ("chat", "analysis"…)
    finish_reason: str = "stop"  # "length": cut at max_tokens
    tool_calls: list[dict[str, Any]] | None = None


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    json: dict[str, Any]
    at: float
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def prompt(self) -> str | None:
        """The prompt's name, as loreweave sends it."""
        return self.headers.get("x-loreweave-prompt")


def structured_form(body: dict[str, Any]) -> str:
    """The structured-output form of a request body: ``json_schema``, ``json_object_schema``
    (llama-cpp-python's), ``json_object`` or ``off``."""
    response_format = body.get("response_format") or {}
    kind = response_format.get("type")
    if kind == "json_object" and "schema" in response_format:
        return "json_object_schema"
    return str(kind) if kind else "off"


def count_tokens(text: str) -> int:
    """The stand-in's tokens: about four characters each, as in its usage figures."""
    return max(1, len(text) // 4) if text else 0


def _default_chat(body: dict[str, Any]) -> str:
    return "OK"


class FakeProviderServer:
    def __init__(
        self,
        *,
        chat_handler: ChatHandler = _default_chat,
        prompt_handlers: dict[str, ChatHandler] | None = None,
        embedding_dim: int = 64,
        latency: float = 0.0,
        latency_model: LatencyModel | None = None,
        embedding_latency: float = 0.0,
        jitter: float = 0.0,
        api_key: str | None = None,
        requests_per_second: float | None = None,
        faults: dict[str, float] | None = None,
        fault_delay: float = 5.0,
        refused_forms: dict[str, int] | None = None,
        refuse: Callable[[str | None, dict[str, Any]], bool] | None = None,
        seed: int = 0,
    ) -> None:
        self.chat_handler = chat_handler
        self.prompt_handlers = dict(prompt_handlers or {})
        self.embedding_dim = embedding_dim
        self.latency = latency
        self.latency_model = latency_model
        self.embedding_latency = embedding_latency
        self.jitter = jitter
        self.api_key = api_key
        self.requests_per_second = requests_per_second
        # probabilities of "5xx", "429", "malformed" (a broken body) and "timeout" (an answer
        # after fault_delay seconds), drawn per request from a seeded generator
        self.faults = dict(faults or {})
        self.fault_delay = fault_delay
        self.refused_forms = dict(refused_forms or {})
        # (prompt name, body) -> True: answered HTTP 400 every time, as a content filter does
        self.refuse = refuse
        self.injected: dict[str, int] = {}
        self.requests: list[RecordedRequest] = []
        self._replies: deque[FakeReply] = deque()
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._next_slot = 0.0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The host root, as Mistral's ``server_url`` wants it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """With ``/v1``, as the OpenAI SDK's ``base_url`` wants it."""
        return f"{self.url}/v1"

    def start(self) -> FakeProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------
    def queue(self, *replies: FakeReply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- serving -----------------------------------------------------------------------------
    def _take_reply(self, path: str, prompt: str | None) -> FakeReply | None:
        with self._lock:
            for reply in self._replies:
                if reply.path in (None, path) and reply.prompt in (None, prompt):
                    self._replies.remove(reply)
                    return reply
        return None

    def _rate_limited(self) -> float | None:
        """Seconds to wait if this request exceeds ``requests_per_second``."""
        if not self.requests_per_second:
            return None
        with self._lock:
            now = time.monotonic()
            if now < self._next_slot:
                return self._next_slot - now
            self._next_slot = now + 1.0 / self.requests_per_second
            return None

    def _sleep_latency(self, base: float) -> None:
        if base <= 0:
            return
        with self._lock:
            factor = 1.0 + self._random.uniform(-self.jitter, self.jitter)
        time.sleep(max(0.0, base * factor))

    def answer(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], str]:
        """Status, extra headers and body for one request."""
        record = RecordedRequest(path, headers, body, time.monotonic())
        with self._lock:
            self.requests.append(record)
        refused = self._gate(headers) or self._refuse_form(path, body) or self._fault()
        if refused is not None:
            return refused
        if self.refuse is not None and self.refuse(record.prompt, body):
            with self._lock:
                self.injected["refused"] = self.injected.get("refused", 0) + 1
            return 400, {}, json.dumps({"message": "content filtered", "type": "invalid_request"})
        reply = self._take_reply(path, record.prompt)
        if reply is not None:
            time.sleep(reply.delay)
            if reply.status != 200 or reply.body is not None:
                fallback = json.dumps({"message": f"scripted {reply.status}"})
                return reply.status, reply.headers, fallback if reply.body is None else reply.body
        extra = reply.headers if reply else {}
        if path.endswith("/chat/completions"):
            content = reply.content if reply and reply.content is not None else None
            handler = self.prompt_handlers.get(record.prompt or "", self.chat_handler)
            text = handler(body) if content is None else content
            record.prompt_tokens = sum(
                count_tokens(str(m.get("content", ""))) for m in body.get("messages", [])
            )
            record.completion_tokens = count_tokens(text)
            if self.latency_model is not None:
                time.sleep(self.latency_model(record.prompt_tokens, record.completion_tokens))
            else:
                self._sleep_latency(self.latency)
            if body.get("stream"):
                return 200, {**extra, "Content-Type": "text/event-stream"}, self._sse(body, text)
            completion = self._completion(body, text)
            if reply is not None:
                choice = completion["choices"][0]
                choice["finish_reason"] = reply.finish_reason
                choice["message"]["tool_calls"] = reply.tool_calls
            return 200, extra, json.dumps(completion)
        if path.endswith("/embeddings"):
            self._sleep_latency(self.embedding_latency)
            return 200, extra, json.dumps(self._embeddings(body))
        return 404, {}, json.dumps({"message": f"no route {path}"})

    def _refuse_form(
        self, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, str], str] | None:
        status = self.refused_forms.get(structured_form(body))
        if status is None or not path.endswith("/chat/completions"):
            return None
        return status, {}, json.dumps({"message": f"unsupported response_format ({status})"})

    def _fault(self) -> tuple[int, dict[str, str], str] | None:
        if not self.faults:
            return None
        with self._lock:
            draw = self._random.random()
        for kind, probability in self.faults.items():
            if draw < probability:
                with self._lock:
                    self.injected[kind] = self.injected.get(kind, 0) + 1
                if kind == "5xx":
                    return 503, {}, json.dumps({"message": "injected outage"})
                if kind == "429":
                    return 429, {"Retry-After": "0.05"}, json.dumps({"message": "injected 429"})
                if kind == "malformed":
                    return 200, {}, '{"id": "cmpl-x", "choices": [{"index": 0, "mess'
                time.sleep(self.fault_delay)
                return 503, {}, json.dumps({"message": "injected timeout (too late)"})
            draw -= probability
        return None

    def models(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """``GET /v1/models`` as OpenAI-compatible servers answer it: one model, ``fake``."""
        refused = self._gate(headers)
        if refused is not None:
            return refused
        if not path.endswith("/models"):
            return 404, {}, json.dumps({"message": f"no route {path}"})
        return 200, {}, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def _gate(self, headers: dict[str, str]) -> tuple[int, dict[str, str], str] | None:
        """A 401 for a wrong key, a 429 over the rate limit; None to let the request through."""
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, json.dumps({"message": "Unauthorized", "type": "invalid_api_key"})
        wait = self._rate_limited()
        if wait is not None:
            message = json.dumps({"message": "Requests rate limit exceeded"})
            return 429, {"Retry-After": f"{max(wait, 0.001):.3f}"}, message
        return None

    @staticmethod
    def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
        prompt_tokens = sum(
            count_tokens(str(m.get("content", ""))) for m in body.get("messages", [])
        )
        completion_tokens = max(1, count_tokens(content))
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "tool_calls": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    @staticmethod
    def _sse(body: dict[str, Any], content: str) -> str:
        """The reply as server-sent events of ``chat.completion.chunk`` objects, word by word."""
        ident = f"cmpl-{uuid.uuid4().hex[:12]}"
        words = content.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        events = []
        for index, piece in enumerate(pieces):
            delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
            last = index == len(pieces) - 1
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": "stop" if last else None}
                ],
            }
            events.append(f"data: {json.dumps(chunk)}\n\n")
        events.append("data: [DONE]\n\n")
        return "".join(events)

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input", body.get("inputs", []))
        if isinstance(inputs, str):
            inputs = [inputs]
        tokens = sum(len(text) // 4 for text in inputs)
        return {
            "id": f"emb-{uuid.uuid4().hex[:12]}",
            "object": "list",
            "model": body.get("model", "fake-embed"),
            "data": [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": hash_embedding(text, self.embedding_dim),
                }
                for i, text in enumerate(inputs)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # one write per answer (headers and body buffered together, flushed at the end)
            # with TCP_NODELAY: no delayed-ACK stall between a small header and the body
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._send(*server.models(self.path.split("?")[0], headers))

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.split("?")[0]
                self._send(*server.answer(path, headers, body))

            def _send(self, status: int, extra: dict[str, str], text: str) -> None:
                payload = text.encode()
                try:
                    self.send_response(status)
                    if "Content-Type" not in extra:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

"""The real Mistral and OpenAI SDKs against a local server that answers as those APIs do."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from loreweave.errors import (
    AuthenticationFailed,
    InvalidResponse,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    RequestRejected,
)
from loreweave.llm.prompts.analysis import AnalysisResult
from loreweave.llm.ratelimit import RateLimiter
from loreweave.llm.resilience import Resilience, ResilientChatModel, ResilientEmbedder, RetryPolicy
from loreweave.llm.structured import complete_structured
from loreweave.llm.types import ChatModel, ChatRequest, Embedder, Message, normalise_rows
from loreweave.testing import FakeProviderServer, FakeReply, hash_embedding

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
KEY = "test-key"


class SleepRecorder:
    """Stands in for time.sleep in the retry loop: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(api_key=KEY, embedding_dim=32) as running:
        yield running


def make_chat(
    provider: str, server: FakeProviderServer, *, key: str = KEY, timeout: float = 5.0
) -> ChatModel:
    if provider == "mistral":
        from loreweave.llm.providers.mistral import MistralChatModel

        return MistralChatModel(key, server_url=server.url, timeout=timeout)
    from loreweave.llm.providers.openai_compatible import OpenAIChatModel

    return OpenAIChatModel(key, base_url=server.openai_url, timeout=timeout)


def make_embedder(provider: str, server: FakeProviderServer) -> Embedder:
    if provider == "mistral":
        from loreweave.llm.providers.mistral import MistralEmbedder

        return MistralEmbedder(KEY, model="mistral-embed", server_url=server.url)
    from loreweave.llm.providers.openai_compatible import OpenAIEmbedder

    return OpenAIEmbedder(KEY, model="text-embedding-3-small", base_url=server.openai_url)


def resilient(model: ChatModel, sleep: SleepRecorder, attempts: int = 4) -> ResilientChatModel:
    limiter = RateLimiter(1000, 10_000_000)
    return ResilientChatModel(
        model, Resilience(RetryPolicy(attempts, 0.5, 4.0), limiter, sleep=sleep)
    )


def request(prompt: str = "chat", text: str = "Hello there") -> ChatRequest:
    return ChatRequest(
        messages=(Message("system", "You narrate."), Message("user", text)),
        model="mistral-large-latest",
        temperature=0.3,
        prompt=prompt,
    )


PROVIDERS = pytest.mark.parametrize("provider", ["mistral", "openai"])


@PROVIDERS
def test_chat_success(provider: str, server: FakeProviderServer) -> None:
    server.queue(FakeReply(content="The tavern falls silent."))
    response = make_chat(provider, server).complete(request())
    assert response.text == "The tavern falls silent."
    assert response.model == "mistral-large-latest"
    assert response.usage.completion_tokens > 0 and response.usage.prompt_tokens > 0
    sent = server.requests_to(CHAT)[0]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json["temperature"] == 0.3
    assert [m["role"] for m in sent.json["messages"]] == ["system", "user"]
    assert "response_format" not in sent.json or sent.json["response_format"] is None


@PROVIDERS
def test_the_response_model_is_sent_as_the_schema_for_structured_output(
    provider: str, server: FakeProviderServer
) -> None:
    """A request without a schema of its own sends its response model's (json_schema form)."""
    server.queue(FakeReply(content='{"updates": [], "creations": []}'))
    result = complete_structured(make_chat(provider, server), request("analysis"), AnalysisResult)
    assert result == AnalysisResult()
    assert server.requests_to(CHAT)[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "analysis",
            "schema": AnalysisResult.model_json_schema(),
            "strict": False,
        },
    }


@PROVIDERS
def test_429_retry_after_is_honoured(provider: str, server: FakeProviderServer) -> None:
    server.queue(FakeReply(status=429, headers={"Retry-After": "2.5"}), FakeReply(content="done"))
    sleep = SleepRecorder()
    response = resilient(make_chat(provider, server), sleep).complete(request())
    assert response.text == "done"
    assert sleep.waits == [2.5]
    assert len(server.requests_to(CHAT)) == 2


@PROVIDERS
def test_5xx_then_success_backs_off(provider: str, server: FakeProviderServer) -> None:
    server.queue(FakeReply(status=503), FakeReply(status=500), FakeReply(content="recovered"))
    sleep = SleepRecorder()
    model = resilient(make_chat(provider, server), sleep)
    assert model.complete(request()).text == "recovered"
    assert len(sleep.waits) == 2
    # exponential back-off with jitter: 0.5 s then 1 s, each plus up to 0.5 s of jitter
    assert 0.5 <= sleep.waits[0] <= 1.0
    assert 1.0 <= sleep.waits[1] <= 1.5
    stats = model.resilience.stats.snapshot()
    assert stats[(provider, "chat", "calls")] == 3
    assert stats[(provider, "chat", "errors")] == 2


@PROVIDERS
def test_timeout_is_retried_then_reported(provider: str, server: FakeProviderServer) -> None:
    server.queue(FakeReply(content="late", delay=1.5), FakeReply(content="late", delay=1.5))
    sleep = SleepRecorder()
    model = resilient(make_chat(provider, server, timeout=0.3), sleep, attempts=2)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        model.complete(request())
    assert len(server.requests_to(CHAT)) == 2
    assert len(sleep.waits) == 1


@PROVIDERS
def test_connection_refused_is_unavailable(provider: str) -> None:
    server = FakeProviderServer()
    server.stop()  # the port is closed: nothing listens
    with pytest.raises(ProviderUnreachable):  # a ProviderUnavailable: retried
        make_chat(provider, server, timeout=2).complete(request())


class Clock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_a_server_that_stopped_is_reported_down_once_and_tried_at_a_slow_pace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 42: llama-cpp-python's server died on a grammar, and every job retried against
    a closed port until the drain's deadline.  After it has answered, no connection means
    down: said once, each later call waits for its slot (one try per backoff_max, no retries
    of its own), and the first answer ends it (said once too)."""
    outcomes: list[str] = ["ok", "refused", "refused", "refused", "ok", "ok"]

    def call() -> str:
        outcome = outcomes.pop(0)
        if outcome == "refused":
            raise ProviderUnreachable("connection failed: refused", provider="local")
        return outcome

    clock = Clock()
    resilience = Resilience(
        RetryPolicy(4, 0.5, 30.0), RateLimiter(1000, 10_000_000), sleep=clock.sleep, clock=clock
    )
    results = []
    for _ in range(6):
        try:
            results.append(resilience.call(call, provider="local", prompt="analysis", tokens=1))
        except ProviderUnreachable:
            results.append("down")
    assert results == ["ok", "down", "down", "down", "ok", "ok"]
    stats = resilience.stats.snapshot()
    assert stats[("local", "analysis", "calls")] == 6  # one try each: no retry loop
    assert ("local", "analysis", "retries") not in stats
    assert clock.waits == [30.0, 30.0, 30.0]  # each try waited for its slot
    messages = [r.getMessage() for r in caplog.records]
    assert sum("local is down" in m for m in messages) == 1
    assert sum("local answers again" in m for m in messages) == 1


def test_a_server_never_reached_is_retried_as_before() -> None:
    """Down needs an answer first: a server not up yet is retried with back-off."""
    clock = Clock()
    resilience = Resilience(
        RetryPolicy(3, 0.5, 30.0), RateLimiter(1000, 10_000_000), sleep=clock.sleep, clock=clock
    )

    def refused() -> str:
        raise ProviderUnreachable("connection failed: refused", provider="local")

    with pytest.raises(ProviderUnreachable):
        resilience.call(refused, provider="local", prompt="analysis", tokens=1)
    assert resilience.stats.snapshot()[("local", "analysis", "calls")] == 3
    assert not resilience.downtime.down


@PROVIDERS
def test_authentication_error_is_not_retried(provider: str, server: FakeProviderServer) -> None:
    sleep = SleepRecorder()
    with pytest.raises(AuthenticationFailed, match="401"):
        resilient(make_chat(provider, server, key="wrong"), sleep).complete(request())
    assert len(server.requests_to(CHAT)) == 1
    assert sleep.waits == []


@PROVIDERS
def test_other_4xx_is_not_retried(provider: str, server: FakeProviderServer) -> None:
    server.queue(FakeReply(status=400, body='{"message": "bad temperature"}'))
    sleep = SleepRecorder()
    with pytest.raises(RequestRejected, match="bad temperature"):
        resilient(make_chat(provider, server), sleep).complete(request())
    assert len(server.requests_to(CHAT)) == 1


@PROVIDERS
def test_malformed_http_body_is_an_invalid_response(
    provider: str, server: FakeProviderServer
) -> None:
    server.queue(FakeReply(body="{this is not json"))
    with pytest.raises(InvalidResponse):
        make_chat(provider, server).complete(request())


@PROVIDERS
def test_malformed_json_output_then_successful_repair(
    provider: str, server: FakeProviderServer
) -> None:
    server.queue(
        FakeReply(content='Sure! Here it is: {"updates": [{"lore_entry_id": "E1"}]}'),
        FakeReply(
            content='```json\n{"updates": [{"lore_entry_id": "E1", "update_summary": "Hurt"}]}\n```'
        ),
    )
    result = complete_structured(make_chat(provider, server), request("analysis"), AnalysisResult)
    assert result.updates[0].lore_entry_id == "E1"
    assert result.updates[0].update_summary == "Hurt"
    repair = server.requests_to(CHAT)[1].json["messages"]
    assert repair[-2]["role"] == "assistant"
    assert "update_summary" in repair[-1]["content"]  # the validation error is quoted


@PROVIDERS
def test_rate_limit_holds_under_concurrent_callers(
    provider: str, server: FakeProviderServer
) -> None:
    limiter = RateLimiter(requests_per_second=20, tokens_per_minute=10_000_000, burst=1)
    model = ResilientChatModel(make_chat(provider, server), Resilience(RetryPolicy(1), limiter))
    # the SDK's first call (its connection, its lazy imports) arrives late at the server and
    # would shorten the span measured there: made before the timed calls
    model.complete(request())
    server.requests.clear()
    calls = 12
    threads = [threading.Thread(target=model.complete, args=(request(),)) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps = sorted(r.at for r in server.requests_to(CHAT))
    assert len(stamps) == calls
    # 12 requests at 20/s with no burst cannot span less than 11 intervals of 50 ms
    assert stamps[-1] - stamps[0] >= (calls - 1) / 20 * 0.9


@PROVIDERS
def test_embeddings_are_batched_normalised_and_in_order(
    provider: str, server: FakeProviderServer
) -> None:
    texts = [f"entity number {i} with a katana" if i % 2 else f"tavern {i}" for i in range(300)]
    embedder = make_embedder(provider, server)
    matrix = embedder.embed(texts)
    assert matrix.shape == (300, 32) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    expected = normalise_rows([hash_embedding(t, 32) for t in texts])
    assert np.allclose(matrix, expected, atol=1e-5)
    sizes = [len(r.json.get("input") or r.json.get("inputs")) for r in server.requests_to(EMBED)]
    assert sizes == [128, 128, 44]
    assert embedder.dim == 32


@PROVIDERS
def test_resilient_embedder_retries(provider: str, server: FakeProviderServer) -> None:
    server.queue(FakeReply(status=502, path=EMBED))
    sleep = SleepRecorder()
    embedder = ResilientEmbedder(
        make_embedder(provider, server),
        Resilience(RetryPolicy(3, 0.1, 1.0), RateLimiter(100, 1_000_000), sleep=sleep),
    )
    assert embedder.embed(["one", "two"]).shape == (2, 32)
    assert len(sleep.waits) == 1


def test_rate_limited_error_carries_retry_after() -> None:
    from loreweave.llm.providers.common import error_for_status

    error = error_for_status(429, "slow down", provider="mistral", headers={"retry-after": "7"})
    assert isinstance(error, RateLimited) and error.retry_after == 7.0 and error.retriable


@PROVIDERS
def test_streaming_through_the_real_sdk(provider: str, server: FakeProviderServer) -> None:
    server.queue(FakeReply(content="The tavern falls silent at once."))
    model = make_chat(provider, server)
    chunks = list(model.stream(request()))  # type: ignore[attr-defined]
    assert len(chunks) == 6
    assert "".join(chunks) == "The tavern falls silent at once."
    assert server.requests_to(CHAT)[0].json["stream"] is True


@PROVIDERS
def test_streaming_retries_before_the_first_chunk(
    provider: str, server: FakeProviderServer
) -> None:
    server.queue(FakeReply(status=503), FakeReply(content="Back again."))
    sleep = SleepRecorder()
    chunks = list(resilient(make_chat(provider, server), sleep).stream(request()))
    assert "".join(chunks) == "Back again."
    assert len(sleep.waits) == 1


def test_the_stand_in_answers_in_one_write_without_nagle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers and body written apart stall ~40 ms a call on delayed ACKs (Nagle waits for the
    ACK of the first segment): every figure measured against the stand-in would carry it."""
    import socket

    writes: list[tuple[int, bool]] = []  # (bytes, TCP_NODELAY) of the server's sends
    server = FakeProviderServer().start()
    original_send, original_sendall = socket.socket.send, socket.socket.sendall

    def record(sock: socket.socket, data: bytes) -> None:
        if sock.getsockname()[1] == server.port:
            nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            writes.append((len(data), bool(nodelay)))

    def send(sock: socket.socket, data: bytes, *args: int) -> int:
        record(sock, data)
        return original_send(sock, data, *args)

    def sendall(sock: socket.socket, data: bytes, *args: int) -> None:
        record(sock, data)
        original_sendall(sock, data, *args)

    monkeypatch.setattr(socket.socket, "send", send)
    monkeypatch.setattr(socket.socket, "sendall", sendall)
    try:
        with httpx.Client() as client:
            reply = client.post(
                f"{server.openai_url}/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            )
    finally:
        server.stop()
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "OK"
    assert len(writes) == 1, writes  # headers and body together
    assert writes[0][1] is True  # TCP_NODELAY

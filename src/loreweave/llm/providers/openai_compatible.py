"""Any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp server, LM Studio), through the
official ``openai`` SDK (the ``openai`` extra): chat and embeddings.  ``base_url`` includes ``/v1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import openai

from loreweave.errors import (
    InvalidResponse,
    MalformedResponse,
    ProviderUnavailable,
    ProviderUnreachable,
)
from loreweave.llm.providers.common import (
    BatchingEmbedder,
    completion_options,
    error_for_status,
    prompt_headers,
)
from loreweave.llm.providers.forms import FORMS, StructuredForms
from loreweave.llm.types import ChatRequest, ChatResponse, Usage

PROVIDER = "openai"
T = TypeVar("T")


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except openai.APITimeoutError as exc:
        raise ProviderUnavailable("request timed out", provider=PROVIDER) from exc
    except openai.APIConnectionError as exc:
        raise ProviderUnreachable(f"connection failed: {exc}", provider=PROVIDER) from exc
    except openai.APIStatusError as exc:
        raise error_for_status(
            exc.status_code,
            exc.response.text,
            provider=PROVIDER,
            headers=dict(exc.response.headers),
        ) from exc
    except (openai.APIResponseValidationError, ValueError) as exc:
        raise MalformedResponse(f"malformed response: {exc}", provider=PROVIDER) from exc


def _client(api_key: str | None, base_url: str | None, timeout: float) -> openai.OpenAI:
    # The SDK's own retries are off: resilience lives in one place (loreweave.llm.resilience).
    return openai.OpenAI(
        api_key=api_key or "not-needed", base_url=base_url, timeout=timeout, max_retries=0
    )


class OpenAIChatModel:
    provider = PROVIDER

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
        structured_output: str = "auto",
    ) -> None:
        self._client = _client(api_key, base_url, timeout)
        self.forms = StructuredForms(structured_output, FORMS, provider=PROVIDER)

    def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        result = self.forms.send(
            request,
            lambda response_format: _call(
                lambda: self._client.chat.completions.create(
                    model=request.model,
                    messages=[{"role": m.role, "content": m.content} for m in request.messages],  # type: ignore[misc]
                    temperature=request.temperature,
                    extra_headers=prompt_headers(request),
                    **completion_options(request, response_format),
                )
            ),
        )
        if not result.choices:
            raise InvalidResponse("a completion without choices", provider=PROVIDER)
        usage = result.usage
        choice = result.choices[0]
        return ChatResponse(
            text=choice.message.content or "",
            model=result.model,
            usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
            latency=time.perf_counter() - started,
            finish_reason=choice.finish_reason,
            tool_calls=tuple(call.model_dump() for call in choice.message.tool_calls or ()),
        )

    def stream(self, request: ChatRequest) -> Iterator[str]:
        chunks = _call(
            lambda: self._client.chat.completions.create(
                model=request.model,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],  # type: ignore[misc]
                temperature=request.temperature,
                stream=True,
                extra_headers=prompt_headers(request),
                **completion_options(request),
            )
        )
        iterator: Iterator[Any] = iter(chunks)
        while True:
            chunk = _call(lambda: next(iterator, None))
            if chunk is None:
                return
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


class OpenAIEmbedder(BatchingEmbedder):
    provider = PROVIDER

    def __init__(
        self,
        api_key: str | None,
        *,
        model: str,
        base_url: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._client = _client(api_key, base_url, timeout)
        self.model_name = model
        self._dim: int | None = None

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        result = _call(lambda: self._client.embeddings.create(model=self.model_name, input=batch))
        data = sorted(result.data, key=lambda item: item.index)
        if len(data) != len(batch) or any(not item.embedding for item in data):
            raise InvalidResponse("embeddings missing from the response", provider=PROVIDER)
        return [list(item.embedding) for item in data]

"""Mistral, through the official ``mistralai`` SDK (the ``mistral`` extra): chat and embeddings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import httpx2
from mistralai.client import Mistral
from mistralai.client import errors as mistral_errors

from loreweave.errors import (
    InvalidResponse,
    MalformedResponse,
    ProviderError,
    ProviderUnavailable,
    ProviderUnreachable,
    RequestRejected,
)
from loreweave.llm.providers.common import (
    BatchingEmbedder,
    completion_options,
    error_for_status,
    prompt_headers,
)
from loreweave.llm.providers.forms import Form, StructuredForms
from loreweave.llm.types import ChatRequest, ChatResponse, Usage

PROVIDER = "mistral"
T = TypeVar("T")

EMBED_DIMS = {"mistral-embed": 1024}
# Mistral takes a schema as json_schema (custom structured outputs, every model) or JSON mode.
FORMS: tuple[Form, ...] = ("json_schema", "json_object", "off")


def _call(fn: Callable[[], T]) -> T:
    """Run an SDK call, translating its errors into loreweave's."""
    try:
        return fn()
    except mistral_errors.HTTPValidationError as exc:
        raise RequestRejected(f"HTTP 422: {exc.body[:300]}", provider=PROVIDER, status=422) from exc
    except mistral_errors.ResponseValidationError as exc:
        raise MalformedResponse(f"malformed response: {exc}", provider=PROVIDER) from exc
    except mistral_errors.SDKError as exc:
        raise error_for_status(
            exc.status_code, exc.body, provider=PROVIDER, headers=dict(exc.headers)
        ) from exc
    except mistral_errors.NoResponseError as exc:
        raise ProviderUnavailable("no response", provider=PROVIDER) from exc
    except httpx2.TimeoutException as exc:
        raise ProviderUnavailable("request timed out", provider=PROVIDER) from exc
    except httpx2.TransportError as exc:
        raise ProviderUnreachable(f"connection failed: {exc}", provider=PROVIDER) from exc
    except ProviderError:
        raise
    except ValueError as exc:  # a body that is not JSON at all
        raise MalformedResponse(f"malformed response: {exc}", provider=PROVIDER) from exc


def _client(api_key: str, server_url: str | None, timeout: float) -> Mistral:
    return Mistral(api_key=api_key, server_url=server_url, timeout_ms=int(timeout * 1000))


class MistralChatModel:
    provider = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        server_url: str | None = None,
        timeout: float = 60.0,
        structured_output: str = "auto",
    ):
        self._client = _client(api_key, server_url, timeout)
        self.forms = StructuredForms(structured_output, FORMS, provider=PROVIDER)

    def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        result = self.forms.send(
            request,
            lambda response_format: _call(
                lambda: self._client.chat.complete(
                    model=request.model,
                    messages=cast(
                        Any, [{"role": m.role, "content": m.content} for m in request.messages]
                    ),
                    temperature=request.temperature,
                    http_headers=prompt_headers(request),
                    **completion_options(request, response_format),
                )
            ),
        )
        choice = result.choices[0] if result.choices else None
        if choice is None or choice.message is None:
            raise InvalidResponse("a completion without a message", provider=PROVIDER)
        content = choice.message.content
        if not isinstance(content, str):
            content = "".join(getattr(chunk, "text", "") for chunk in content or [])
        calls = choice.message.tool_calls or []
        return ChatResponse(
            text=content,
            model=result.model,
            usage=Usage(result.usage.prompt_tokens or 0, result.usage.completion_tokens or 0),
            latency=time.perf_counter() - started,
            finish_reason=str(choice.finish_reason) if choice.finish_reason else None,
            tool_calls=tuple(call.model_dump(mode="json") for call in calls),
        )

    def stream(self, request: ChatRequest) -> Iterator[str]:
        events = _call(
            lambda: self._client.chat.stream(
                model=request.model,
                messages=cast(
                    Any, [{"role": m.role, "content": m.content} for m in request.messages]
                ),
                temperature=request.temperature,
                http_headers=prompt_headers(request),
                **completion_options(request),
            )
        )
        iterator = iter(events)
        while True:
            event = _call(lambda: next(iterator, None))
            if event is None:
                return
            choices = event.data.choices
            content = choices[0].delta.content if choices else None
            if isinstance(content, str) and content:
                yield content


class MistralEmbedder(BatchingEmbedder):
    provider = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "mistral-embed",
        server_url: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._client = _client(api_key, server_url, timeout)
        self.model_name = model
        self._dim = EMBED_DIMS.get(model)

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        result = _call(lambda: self._client.embeddings.create(model=self.model_name, inputs=batch))
        data = sorted(result.data, key=lambda item: item.index or 0)
        if len(data) != len(batch) or any(not item.embedding for item in data):
            raise InvalidResponse("embeddings missing from the response", provider=PROVIDER)
        return [list(item.embedding or []) for item in data]

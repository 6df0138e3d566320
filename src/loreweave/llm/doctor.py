"""``loreweave doctor``: is the configured LLM usable?  Which provider and models, whether its
server answers, whether it takes the structured output the memory sends, and one call's round
trip.  Each check is one line; no secret is ever part of one (URLs lose their user info, errors
are redacted)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from loreweave.config import Settings
from loreweave.errors import ConfigurationError, ProviderError
from loreweave.llm.registry import CHAT_PROVIDERS, IN_PROCESS
from loreweave.llm.types import ChatModel, ChatRequest, Message
from loreweave.redact import environment_secrets, redact

MISTRAL_SERVER = "https://api.mistral.ai"
OPENAI_SERVER = "https://api.openai.com/v1"
REACH_TIMEOUT = 5.0  # seconds for GET /models: a server that is up answers it at once
# the smallest schema the memory's requests look like: an object with a required field
SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def shown_url(url: str) -> str:
    """``url`` without user info (``http://user:secret@host`` → ``http://host``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _clean(settings: Settings, text: str) -> str:
    secrets = [k.get_secret_value() for k in settings.api_keys] + environment_secrets()
    for key in (settings.mistral_api_key, settings.openai_api_key):
        if key is not None:
            secrets.append(key.get_secret_value())
    return redact(text, secrets, limit=200)


def _server(settings: Settings) -> tuple[str, str | None]:
    """The provider's ``/v1`` base URL and its key."""
    if settings.llm_provider == "mistral":
        key = settings.mistral_api_key
        base = (settings.mistral_server_url or MISTRAL_SERVER).rstrip("/") + "/v1"
    else:
        key = settings.openai_api_key
        base = (settings.openai_base_url or OPENAI_SERVER).rstrip("/")
    return base, key.get_secret_value() if key is not None else None


def provider_check(settings: Settings) -> Check:
    config = settings.llm_config
    roles = {
        "analysis": config.analysis_model,
        "rewrite": config.rewrite_model,
        "creation": config.creation_model,
        "chat": config.chat_model,
    }
    models = ", ".join(
        f"{model} ({', '.join(r for r, m in roles.items() if m == model)})"
        for model in dict.fromkeys(roles.values())
    )
    where = "" if settings.llm_provider in IN_PROCESS else f" at {shown_url(_server(settings)[0])}"
    return Check("provider", True, f"{settings.llm_provider}{where}; models {models}")


def reach_check(settings: Settings) -> Check:
    """GET {base}/models, briefly: the server is up and takes the key."""
    if settings.llm_provider in IN_PROCESS:
        return Check("reachable", True, "in this process (no server)")
    base, key = _server(settings)
    url = f"{base}/models"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        answer = httpx.get(url, headers=headers, timeout=REACH_TIMEOUT)
    except httpx.HTTPError as exc:
        reason = _clean(settings, str(exc) or type(exc).__name__)
        return Check("reachable", False, f"no answer from {shown_url(url)}: {reason}")
    if answer.status_code != 200:
        why = " (the API key?)" if answer.status_code in (401, 403) else ""
        return Check(
            "reachable", False, f"{shown_url(url)} answered HTTP {answer.status_code}{why}"
        )
    return Check("reachable", True, _served(settings, answer))


def _served(settings: Settings, answer: httpx.Response) -> str:
    try:
        names = [str(m["id"]) for m in answer.json().get("data", [])]
    except (ValueError, TypeError, KeyError, AttributeError):
        names = []
    said = f"serves {', '.join(names[:5])}{' …' if len(names) > 5 else ''}" if names else "up"
    wanted = {settings.llm_config.analysis_model, settings.llm_config.chat_model}
    missing = sorted(wanted - set(names)) if names else []
    if missing:
        said += f" (not listed: {', '.join(missing)}; a one-model server may take any name)"
    return said


def _request(settings: Settings, *, structured: bool) -> ChatRequest:
    if structured:
        return ChatRequest(
            messages=(Message("user", 'Answer with the JSON object {"ok": true}, nothing else.'),),
            model=settings.llm_config.analysis_model,
            temperature=0.0,
            prompt="doctor.structured",
            json_schema=SCHEMA,
            max_tokens=32,
        )
    return ChatRequest(
        messages=(Message("user", "Say hello in one word."),),
        model=settings.llm_config.chat_model,
        temperature=0.0,
        prompt="chat",
        max_tokens=16,
    )


def structured_check(settings: Settings, chat: ChatModel) -> Check:
    """One tiny call with a schema, in the form the provider sends (stepping down in auto)."""
    request = _request(settings, structured=True)
    try:
        answer = chat.complete(request)
    except ProviderError as exc:
        return Check("structured output", False, f"the call failed: {_clean(settings, str(exc))}")
    forms = getattr(chat, "forms", None)
    form = forms.current(request.prompt) if forms is not None else "json_schema"
    stepped = forms.forms[: forms.forms.index(form)] if forms is not None else ()
    form += f" ({', '.join(stepped)} refused)" if stepped else ""
    try:
        parsed = json.loads(answer.text)
        valid = isinstance(parsed, dict) and isinstance(parsed.get("ok"), bool)
    except ValueError:
        valid = False
    if not valid:
        said = _clean(settings, answer.text)[:80]
        return Check("structured output", False, f"sent as {form}; not the JSON asked: {said!r}")
    return Check("structured output", True, f"sent as {form}; the answer was valid")


def round_trip_check(settings: Settings, chat: ChatModel) -> Check:
    request = _request(settings, structured=False)
    started = time.perf_counter()
    try:
        answer = chat.complete(request)
    except ProviderError as exc:
        return Check("round trip", False, f"the call failed: {_clean(settings, str(exc))}")
    took = time.perf_counter() - started
    return Check(
        "round trip",
        True,
        f"{took:.2f} s for one chat call ({answer.usage.completion_tokens} tokens out)",
    )


def _chat_model(settings: Settings) -> tuple[ChatModel | None, Check | None]:
    """The provider's own chat model (no retries: one call is one try), or why it cannot be."""
    try:
        return CHAT_PROVIDERS[settings.llm_provider](settings), None
    except ConfigurationError as exc:
        return None, Check("provider", False, _clean(settings, str(exc)))


def run(settings: Settings) -> Iterator[Check]:
    """The checks in order; the calls are not tried (failed) when the server is not reachable."""
    chat, refused = _chat_model(settings)
    yield refused or provider_check(settings)
    if chat is None:
        for name in ("reachable", "structured output", "round trip"):
            yield Check(name, False, "not tried: no provider")
        return
    reached = reach_check(settings)
    yield reached
    if not reached.ok:
        for name in ("structured output", "round trip"):
            yield Check(name, False, "not tried: the server is not reachable")
        return
    if settings.llm_provider in IN_PROCESS:
        yield Check("structured output", True, "the scripted cassette answers in shape")
    else:
        yield structured_check(settings, chat)
    yield round_trip_check(settings, chat)

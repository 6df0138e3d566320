"""``/v1/chat/completions`` and ``/v1/models`` in the OpenAI wire format: any OpenAI-compatible
client (SillyTavern, Open WebUI, Agnai, the ``openai`` SDK) gets loreweave's memory by pointing
its base URL here.  The world is the model: ``loreweave/<world name or id>`` (the upstream model
from settings) or ``loreweave/<world>/<upstream model>``.  The work is ``proxy.py``'s; this file
speaks the format, plain and streamed (chunks passed on as the provider sends them; the turn
recorded when the reply is complete, or as far as it went when the client goes away), with
errors as OpenAI error bodies."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Generator, Sequence
from contextlib import closing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from loreweave.api.access import AccessTo
from loreweave.api.deps import LW
from loreweave.api.errors import error_status
from loreweave.api.guard import KEY
from loreweave.api.routes.memory import changes_path
from loreweave.api.streaming import in_threads
from loreweave.app.chat import Names
from loreweave.app.follow import AppMessage, as_shown, group_speaker
from loreweave.app.matching import caller_of
from loreweave.app.proxy import MODEL_PREFIX, Prepared, ProxyService, Stopwatch
from loreweave.errors import NotFound
from loreweave.llm.types import ChatResponse

router = APIRouter(tags=["openai"])
log = logging.getLogger("loreweave.api")

# a client's own options, sent upstream untouched (SillyTavern extensions ask for json_schema)
PASSED_THROUGH = ("response_format", "tools", "tool_choice")

# a static header a client sends per connection (SillyTavern: "Additional headers"): chats of
# one key and user kept apart, e.g. one per Discord channel
CHAT_HEADER = "x-loreweave-chat"
CHANGES_HEADER = "X-Loreweave-Changes"  # the path of the previous turn's changes
MAX_CALLER_CHARS = 256
MAX_KEY_CHARS = 200  # chat_turns.idempotency_key

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer"]
    content: Annotated[str, Field(max_length=200_000)] | list[dict[str, Any]] | None = None

    def name(self) -> str:
        """The speaker's name when the client sends one (the OpenAI ``name`` field)."""
        name = (self.model_extra or {}).get("name")
        return name.strip()[:100] if isinstance(name, str) else ""

    def text(self) -> str:
        """The content; a list of parts (the newer format) gives its text parts."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class CompletionIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # the sampling parameters loreweave does not use
    model: Annotated[str, Field(min_length=1, max_length=400)]
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=2_000)]
    stream: bool = False
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    user: Annotated[str, Field(max_length=MAX_CALLER_CHARS)] | None = None  # the end user

    def raw(self, group_patterns: Sequence[str]) -> list[tuple[str, str]]:
        """(role, content) as the proxy reads them; in a group chat (its nudge the last
        message, or before a continue's nudge) a member reply's ``name`` goes into its content,
        "Mira: …", as SillyTavern shows it (and as its post-processing sends it)."""
        group = any(group_speaker(m.text(), group_patterns) for m in self.messages[-2:])
        raw: list[tuple[str, str]] = []
        for m in self.messages:
            role, text, name = ("system" if m.role == "developer" else m.role), m.text(), m.name()
            if group and role == "assistant" and name and not text.startswith(f"{name}: "):
                text = f"{name}: {text}"
            raw.append((role, text))
        return raw

    def names(self, default: Names) -> Names:
        """Who ``{{user}}`` and ``{{char}}`` are: the last user and assistant messages' names,
        when the client sends them, else ``default`` (the settings')."""
        said = {m.role: m.name() for m in self.messages if m.name()}
        return Names(said.get("user") or default.user, said.get("assistant") or default.char)

    def passthrough(self) -> dict[str, Any] | None:
        extra = self.model_extra or {}
        options = {name: extra[name] for name in PASSED_THROUGH if extra.get(name) is not None}
        return options or None


def openai_error(status: int, message: str, code: str | None = None) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=400 if status == 422 else status)


def _failure(exc: Exception) -> JSONResponse:
    status, message = error_status(exc)
    if status >= 500:
        log.exception("a /v1 request failed")
    code = "model_not_found" if isinstance(exc, NotFound) and "world" in str(exc) else None
    return openai_error(status, message, code)


@router.get("/v1/models")
def models(lw: LW, access: AccessTo) -> dict[str, Any]:
    """One model per world the key may use."""
    return {
        "object": "list",
        "data": [
            {
                "id": f"{MODEL_PREFIX}{world.name}",
                "object": "model",
                "created": int(world.created_at.timestamp()),
                "owned_by": "loreweave",
                "world_id": str(world.id),
            }
            for world in lw.proxy.models()
            if access.allows(world.id)
        ],
    }


class ShownIn(BaseModel):
    role: Literal["user", "assistant"]
    content: Annotated[str, Field(max_length=200_000)]
    name: Annotated[str, Field(max_length=100)] | None = None  # a group chat's member


class LookupIn(BaseModel):
    messages: Annotated[list[ShownIn], Field(min_length=1, max_length=5_000)]
    group: bool = False  # a group chat: each reply's ``name`` is its speaker
    user: Annotated[str, Field(max_length=MAX_CALLER_CHARS)] | None = None  # as sent to /v1


class FollowedOut(BaseModel):
    session_id: uuid.UUID
    world_id: uuid.UUID
    title: str | None


@router.post("/api/sessions/lookup")
def lookup(body: LookupIn, request: Request, lw: LW, access: AccessTo) -> FollowedOut:
    """The session that follows a chat an app shows (its user and assistant messages, as the
    SillyTavern extension sends them): the one the proxy's next request with these messages
    would go on in, among the caller's chats (the same API key, ``user`` and ``X-Loreweave-
    Chat`` header as the app's requests) in the worlds the key may use; 404 when none."""
    chat = request.headers.get(CHAT_HEADER, "").strip()[:MAX_CALLER_CHARS]
    caller = caller_of(request.scope.get(KEY, ""), body.user or "", chat)
    shown = [
        AppMessage(
            m.role,
            as_shown(
                f"{m.name}: {m.content}"
                if body.group and m.name and m.role == "assistant"
                else m.content
            ),
        )
        for m in body.messages
    ]
    worlds = [w.id for w in lw.proxy.models() if access.allows(w.id)]
    found = lw.proxy.follows(shown, caller, worlds)
    if found is None:
        raise NotFound("session", "following these messages")
    with lw.database.uow(read_only=True) as uow:
        title = uow.sessions.require(found[1]).title
    return FollowedOut(session_id=found[1], world_id=found[0], title=title)


async def _read(request: Request) -> CompletionIn | JSONResponse:
    try:
        return CompletionIn.model_validate(await request.json())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        return openai_error(400, f"invalid request: {problems}")
    except ValueError:
        return openai_error(400, "the body is not JSON")


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request, lw: LW, access: AccessTo) -> Response:
    """The answer's ``Server-Timing`` header says where the time went: ``body`` (reading the
    request), then :meth:`ProxyService.prepare`'s phases, ``upstream`` and ``record`` (a streamed
    answer's headers go out before the upstream call: they hold the phases before it)."""
    clock = Stopwatch()
    body = await _read(request)
    if isinstance(body, JSONResponse):
        return body
    clock.lap("body")
    chat = request.headers.get(CHAT_HEADER, "").strip()
    if len(chat) > MAX_CALLER_CHARS:
        return openai_error(400, f"the {CHAT_HEADER} header is over {MAX_CALLER_CHARS} characters")
    caller = caller_of(request.scope.get(KEY, ""), body.user or "", chat)
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and len(key) > MAX_KEY_CHARS:
        return openai_error(400, f"the Idempotency-Key header is over {MAX_KEY_CHARS} characters")
    try:
        raw = body.raw(lw.proxy.config.group_patterns)
        prepared = await run_in_threadpool(
            lambda: lw.proxy.prepare(
                body.model,
                raw,
                allowed=access.allows,
                temperature=body.temperature,
                max_tokens=body.max_tokens,
                passthrough=body.passthrough(),
                caller=caller,
                clock=clock,
                names=body.names(lw.proxy.chat.names),
                key=key,
            )
        )
    except Exception as exc:  # every failure answers in the OpenAI format
        return _failure(exc)
    reply = Reply(body.model, prepared.session_id, prepared.previous_turn)
    if body.stream:
        reply.headers["Server-Timing"] = clock.header()
        return StreamingResponse(
            in_threads(reply.stream(lw.proxy, prepared)),
            media_type="text/event-stream",
            headers=reply.headers,
        )
    try:
        response = await run_in_threadpool(lw.proxy.answer, prepared)
    except Exception as exc:
        return _failure(exc)
    reply.headers["Server-Timing"] = clock.header()
    return JSONResponse(reply.completion(response), headers=reply.headers)


class Reply:
    """One completion's identity and its shapes: the whole answer, or its chunks."""

    def __init__(self, model: str, session_id: uuid.UUID, previous_turn: int | None) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.headers = {"X-Loreweave-Session": str(session_id)}
        if previous_turn is not None:  # what the turn before this one changed (DESIGN §1.7)
            self.headers[CHANGES_HEADER] = changes_path(session_id, previous_turn)

    def completion(self, response: ChatResponse) -> dict[str, Any]:
        usage = response.usage
        message: dict[str, Any] = {"role": "assistant", "content": response.text}
        if response.tool_calls:  # the upstream's, as it sent them
            message["tool_calls"] = list(response.tool_calls)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": response.finish_reason or "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }

    def chunk(self, delta: dict[str, str], finish: str | None = None) -> str:
        payload = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload)}\n\n"

    def stream(self, proxy: ProxyService, prepared: Prepared) -> Generator[str, None, None]:
        """The proxy's pieces as chunks; the turn is recorded once the reply is complete, or
        as far as it went when this generator is closed (the client went away)."""
        with closing(proxy.stream(prepared)) as pieces:
            try:
                yield self.chunk({"role": "assistant", "content": ""})
                for piece in pieces:
                    yield self.chunk({"content": piece})
                yield self.chunk({}, "stop")
            except Exception as exc:  # the headers are sent: the stream itself says it failed
                status, message = error_status(exc)
                if status >= 500:
                    log.exception("a streamed /v1 request failed")
                error = {"error": {"message": message, "type": "api_error", "code": status}}
                yield f"data: {json.dumps(error)}\n\n"
        yield "data: [DONE]\n\n"

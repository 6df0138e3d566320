"""The service edge, before any route runs: the API key is checked before a byte of the body is
read, the body is bounded (413), and only the allowed ``Host`` names are served (no DNS
rebinding of a server on 127.0.0.1).  A pure ASGI middleware, so nothing is buffered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OPEN_PATHS = ("/healthz",)
WORLDS = "loreweave.worlds"  # the request scope's record of what the key may use
KEY = "loreweave.key"  # and of which key it was: a fingerprint, never the key itself


def parse_key(raw: str) -> tuple[str, frozenset[uuid.UUID] | None]:
    """``key`` (every world) or ``key@<world id>;<world id>…`` (only those worlds)."""
    secret, at, worlds = raw.partition("@")
    if not at:
        return secret, None
    return secret, frozenset(uuid.UUID(part.strip()) for part in worlds.split(";") if part.strip())


API_PREFIXES = ("/api/", "/v1/", "/metrics")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class BodyTooLarge(HTTPException):
    """Raised from the body stream: an HTTPException, so a route reading the body answers 413
    (FastAPI turns other errors while reading a body into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than {limit} bytes")


class EdgeGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Sequence[str],
        max_body: int,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        self.app = app
        self.keys = [(secret.encode(), worlds) for secret, worlds in map(parse_key, keys)]
        self.max_body = max_body
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope["path"]
        if self.allowed_hosts is not None:
            host = headers.get("host", "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.allowed_hosts:
                await _answer(send, 400, "this server does not serve that Host name")
                return
        if self.keys and path not in OPEN_PATHS and not _preflight(scope, headers):
            allowed, fingerprint = self._authorised(headers)
            if allowed is False:
                await _answer(send, 401, _challenge_text(path), _challenge(path))
                return
            scope[WORLDS] = allowed  # None: every world
            scope[KEY] = fingerprint
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _answer(send, 413, f"the body is larger than {self.max_body} bytes")
            return
        await self._bounded(scope, receive, send)

    def _authorised(self, headers: Headers) -> tuple[frozenset[uuid.UUID] | bool | None, str]:
        """False, or the worlds the key may use (None: all); and the key's fingerprint."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # the browser UI: the key as the password
            try:
                token = base64.b64decode(token).decode().partition(":")[2]
            except ValueError:
                return False, ""
        elif scheme.lower() != "bearer":
            return False, ""
        given = token.strip().encode()
        matched: frozenset[uuid.UUID] | bool | None = False
        for key, worlds in self.keys:  # compare with every key: no timing of which matched
            if hmac.compare_digest(given, key):
                matched = worlds
        return matched, hashlib.sha256(given).hexdigest()[:16] if matched is not False else ""

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, f"the body is larger than {self.max_body} bytes")


def _preflight(scope: Scope, headers: Headers) -> bool:
    """A CORS preflight: a browser sends it without the key (the CORS middleware answers it;
    the request it asks about is checked as any other)."""
    return (
        scope["method"] == "OPTIONS"
        and "origin" in headers
        and "access-control-request-method" in headers
    )


def _challenge(path: str) -> list[tuple[bytes, bytes]]:
    if path.startswith(API_PREFIXES):
        return [(b"www-authenticate", b"Bearer")]
    # the UI and the docs: the browser asks for the key once (user name: anything)
    return [(b"www-authenticate", b'Basic realm="loreweave", charset="UTF-8"')]


def _challenge_text(path: str) -> str:
    if path.startswith(API_PREFIXES):
        return "missing or invalid API key: send 'Authorization: Bearer <key>'"
    return "this loreweave needs an API key: give it as the password"


async def _answer(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    response_headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def serving_plan(
    host: str, keys: Sequence[str], configured: Sequence[str]
) -> tuple[list[str], str]:
    """The Host names to serve when bound to ``host``, and a warning to print ("" for none):
    bound to loopback, only loopback names (a web page cannot reach the server through DNS
    rebinding); beyond it without API keys, anyone who reaches the port has all the memory."""
    hosts = list(configured) or (list(LOOPBACK_HOSTS) if host in LOOPBACK_HOSTS else [])
    warning = ""
    if host not in LOOPBACK_HOSTS and not keys:
        warning = (
            f"warning: serving on {host} without API keys: anyone who can reach this port can "
            "read and change every world; set LOREWEAVE_API_KEYS"
        )
    return hosts, warning

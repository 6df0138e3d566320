"""Text that leaves the process (alerts, logs of provider errors) without secrets in it."""

from __future__ import annotations

import re
from collections.abc import Iterable

SECRET_SHAPED = re.compile(
    # "api_key": "…", Authorization: Bearer …, token=…
    r"(?i)((?:api[_-]?key|authorization|token|secret|password)[\"']?\s*[:=]\s*[\"']?"
    r"(?:bearer\s+)?)[^\s\"',;}]{4,}"
    r"|(bearer\s+)[a-z0-9._~+/=-]{8,}"  # a bare Bearer token
    r"|\bsk-[a-z0-9_-]{8,}"  # OpenAI-style keys
)


def redact(text: str, secrets: Iterable[str] = (), *, limit: int = 500) -> str:
    """``text`` with the given secrets and anything secret-shaped replaced, cut to ``limit``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = SECRET_SHAPED.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"

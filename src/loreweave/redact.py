"""Text that leaves the process (alerts, logs of provider errors) without secrets in it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

SECRET_SHAPED = re.compile(
    # "api_key": "…", Authorization: Bearer …, token=…
    r"(?i)((?:api[_-]?key|authorization|token|secret|password)[\"']?\s*[:=]\s*[\"']?"
    r"(?:bearer\s+)?)[^\s\"',;}]{4,}"
    r"|(bearer\s+)[a-z0-9._~+/=-]{8,}"  # a bare Bearer token
    r"|\bsk-[a-z0-9_-]{8,}"  # OpenAI-style keys
)


# where loreweave's secrets live (DESIGN §5: the environment only)
SECRET_VARIABLES = (
    "MISTRAL_API_KEY",
    "OPENAI_API_KEY",
    "LOREWEAVE_API_KEYS",
    "LOREWEAVE_ALERT_WEBHOOK_URL",
)


def environment_secrets() -> list[str]:
    values = []
    for name in SECRET_VARIABLES:
        values += [part.strip() for part in os.environ.get(name, "").split(",")]
    return [value for value in values if value]


def redact(text: str, secrets: Iterable[str] = (), *, limit: int = 500) -> str:
    """``text`` with the given secrets, the environment's and anything secret-shaped
    replaced, cut to ``limit`` characters."""
    for secret in [*secrets, *environment_secrets()]:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = SECRET_SHAPED.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""Text that loreweave accepts: no NUL (PostgreSQL refuses it) and no lone surrogate (it cannot
be encoded, so it cannot be stored, sent to an LLM or echoed); checked at every edge."""

from __future__ import annotations

import re
from typing import Any

from loreweave.errors import InvalidInput

_UNSAFE = re.compile("[\x00\ud800-\udfff]")
EXCERPT = 40


def unsafe_reason(text: str) -> str | None:
    found = _UNSAFE.search(text)
    if found is None:
        return None
    what = "a NUL character" if found.group() == "\x00" else "a lone surrogate (invalid Unicode)"
    return f"contains {what} at position {found.start()}"


def require_clean(text: str, what: str = "the text") -> str:
    reason = unsafe_reason(text)
    if reason is not None:
        raise InvalidInput(f"{what} {reason}")
    return text


def check_tree(value: Any, where: str = "") -> None:
    """Every string in a parsed document (JSON), with its place in the error."""
    if isinstance(value, str):
        require_clean(value, where or "the text")
    elif isinstance(value, dict):
        for key, item in value.items():
            require_clean(str(key), f"{where}.{key}" if where else str(key))
            check_tree(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_tree(item, f"{where}.{index}" if where else str(index))


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A short, printable piece of an input for an error message."""
    text = _UNSAFE.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"

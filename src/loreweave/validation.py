"""Text that loreweave accepts: no NUL (PostgreSQL refuses it) and no lone surrogate (it cannot
be encoded, so it cannot be stored, sent to an LLM or echoed); checked at every edge.  What a
person sends with one is refused (422); what a model answers with one is scrubbed
(:func:`scrub`), and a name from a model loses its bidi controls and invisible marks too."""

from __future__ import annotations

import re
from typing import Any

from loreweave.errors import InvalidInput

_UNSAFE = re.compile("[\x00\ud800-\udfff]")
# bidi controls (embeddings, overrides, isolates, marks) and invisible characters (zero-width
# space, joiners, word joiner, BOM, soft hyphen): a name holding one looks like another name
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
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


def scrub(text: str) -> str:
    """``text`` without NUL and lone surrogates (a model's answer: kept, its unstorable part
    dropped)."""
    return _UNSAFE.sub("", text)


def scrub_name(text: str) -> str:
    """A name from a model: scrubbed, without bidi controls or invisible marks, its whitespace
    collapsed to single spaces."""
    return " ".join(_INVISIBLE.sub("", scrub(text)).split())


def scrub_tree(value: Any) -> Any:
    """Every string of a parsed document (JSON), keys included, scrubbed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(key)): scrub_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_tree(item) for item in value]
    return value

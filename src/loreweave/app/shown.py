"""A message as an app shows it: what the proxy compares and stores (DESIGN §1.5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class AppMessage:
    """A user or assistant message of the app's chat, as the app shows it (not an LLM
    request's :class:`loreweave.llm.types.Message`)."""

    role: Role
    content: str


def as_shown(content: str) -> str:
    """A message as an app shows it: line ends as ``\\n``, no surrounding whitespace (models
    pad their replies; SillyTavern trims them and resends them trimmed).  Messages are compared
    and stored in this form, so padding is never taken for an edit."""
    return content.replace("\r\n", "\n").replace("\r", "\n").strip()


def paragraphs(content: str) -> list[str]:
    """A message's paragraphs (what post-processing joins merged messages with), stripped."""
    return [part.strip() for part in content.split("\n\n") if part.strip()]


_SPOKEN = re.compile(r"^([^:\n]{1,100}): (.*)$", re.S)


def spoken_by(content: str, speaker: str | None) -> tuple[str | None, str]:
    """A reply as a group chat shows it, "Name: text", split into (name, text).  ``speaker``:
    None — not a group chat, the text as it is; "" — any name; a name — only that one."""
    if speaker is None or not content:
        return None, content
    found = _SPOKEN.match(content)
    if found is None or (speaker and found.group(1) != speaker):
        return None, content
    return found.group(1).strip(), found.group(2).strip()

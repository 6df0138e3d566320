"""A message as an app shows it: what the proxy compares and stores (DESIGN §1.5)."""

from __future__ import annotations

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

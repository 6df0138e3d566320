"""The neutral form every format converts to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loreweave.errors import InvalidInput


@dataclass(frozen=True)
class PortableEntry:
    title: str
    content: str
    entity_type: str = "Other"
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the source format's own fields


def require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise InvalidInput(f"{where}: {problem}")


def strings(value: Any, where: str) -> list[str]:
    require(isinstance(value, list), where, "must be a list of strings")
    require(all(isinstance(v, str) for v in value), where, "must be a list of strings")
    return [v.strip() for v in value if v.strip()]


def unique(values: list[str], exclude: str = "") -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        if value.lower() != exclude.lower():
            seen.setdefault(value.lower(), value)
    return list(seen.values())

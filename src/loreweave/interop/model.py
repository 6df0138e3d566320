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


@dataclass(frozen=True)
class KeyFields:
    """What a lorebook format calls an entry's keys, secondary keys and label."""

    keys: str
    secondary: str
    labels: tuple[str, ...]


def entry_from(
    item: Any, where: str, fields: KeyFields, fallback: str, extra: dict[str, Any]
) -> PortableEntry:
    """One lorebook entry: its label (or first key) is the title; keys become aliases."""
    require(isinstance(item, dict), where, "must be an object")
    content = item.get("content")
    require(
        isinstance(content, str) and content.strip() != "", f"{where}.content", "missing or empty"
    )
    keys = strings(item.get(fields.keys, []), f"{where}.{fields.keys}")
    secondary = strings(item.get(fields.secondary, []), f"{where}.{fields.secondary}")
    label = next((item[name] for name in fields.labels if item.get(name)), "")
    require(isinstance(label, str), f"{where}.{fields.labels[-1]}", "must be a string")
    title = label.strip() or (keys[0] if keys else fallback)
    return PortableEntry(
        title=title[:200],
        content=content,
        aliases=unique(keys + secondary, exclude=title),
        extra=extra,
    )


def keys_for(
    entry: PortableEntry, original: dict[str, Any], fields: KeyFields
) -> tuple[list[str], list[str]]:
    """The keys to export: the imported ones while the aliases are unchanged, else the title
    and aliases."""
    keys = list(original.get(fields.keys, []))
    secondary = list(original.get(fields.secondary, []))
    imported = unique([*keys, *secondary], exclude=entry.title)
    if [a.lower() for a in imported] != [a.lower() for a in entry.aliases]:
        return unique([entry.title, *entry.aliases]), []
    return keys or [entry.title], secondary

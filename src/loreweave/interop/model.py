"""The neutral form every format converts to and from."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    # lorebook activation (see LoreEntry)
    secondary_keys: list[str] = field(default_factory=list)
    key_logic: str = "and_any"
    constant: bool = False
    enabled: bool = True
    placement: dict[str, int] = field(default_factory=dict)  # order, position, depth, probability


@dataclass(frozen=True)
class Lorebook:
    """What a file holds: its entries, the file's own fields beside them (kept on the world,
    written back on export: World Info's name, scan_depth, token_budget…), and the entries that
    could not be read, each with the reason (skipped, unless the import is strict)."""

    kind: str
    entries: list[PortableEntry]
    fields: dict[str, Any] = field(default_factory=dict)  # by format: {source: {...}}
    skipped: list[str] = field(default_factory=list)


def readable(
    items: Iterable[tuple[Any, Any]],
    read: Callable[[Any, Any], PortableEntry],
    *,
    strict: bool,
) -> tuple[list[PortableEntry], list[str]]:
    """Each (key, item) read; with ``strict`` the first bad one refuses the file, otherwise it
    is skipped and its problem returned."""
    entries, skipped = [], []
    for key, item in items:
        try:
            entries.append(read(key, item))
        except InvalidInput as exc:
            if strict:
                raise
            skipped.append(str(exc))
    return entries, skipped


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


# SillyTavern's world_info_logic, by its numbers
KEY_LOGIC = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}
KEY_LOGIC_NUMBER = {name: number for number, name in KEY_LOGIC.items()}


@dataclass(frozen=True)
class KeyFields:
    """What a lorebook format calls an entry's keys, secondary keys and label, and whether it
    says "enabled" or "disable"."""

    keys: str
    secondary: str
    labels: tuple[str, ...]
    disable: bool = False
    order: str = "order"


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
    extensions = item.get("extensions") if isinstance(item.get("extensions"), dict) else {}
    logic = item.get("selectiveLogic", extensions.get("selectiveLogic", 0))
    switch = not item.get("disable", False) if fields.disable else item.get("enabled", True)
    placement = {
        name: value
        for name, value in (
            ("order", item.get(fields.order)),
            ("position", item.get("position") if fields.disable else extensions.get("position")),
            ("depth", item.get("depth") if fields.disable else extensions.get("depth")),
            (
                "probability",
                item.get("probability") if fields.disable else extensions.get("probability"),
            ),
        )
        if isinstance(value, int) and not isinstance(value, bool)
    }
    return PortableEntry(
        title=title[:200],
        content=content,
        aliases=unique(keys, exclude=title),
        extra=extra,
        # SillyTavern ignores the secondary keys of an entry that is not selective
        secondary_keys=unique(secondary) if item.get("selective", True) is not False else [],
        key_logic=KEY_LOGIC.get(logic, "and_any") if isinstance(logic, int) else "and_any",
        constant=item.get("constant") is True,
        enabled=switch is not False,
        placement=placement,
    )


def keys_for(
    entry: PortableEntry, original: dict[str, Any], fields: KeyFields
) -> tuple[list[str], list[str]]:
    """The keys to export: the imported ones while the aliases are unchanged, else the title
    and aliases."""
    keys = list(original.get(fields.keys, []))
    imported = unique(keys, exclude=entry.title)
    if [a.lower() for a in imported] != [a.lower() for a in entry.aliases]:
        keys = unique([entry.title, *entry.aliases])
    return keys or [entry.title], list(entry.secondary_keys)

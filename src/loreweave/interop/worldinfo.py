"""SillyTavern World Info (lorebook) JSON: ``{"entries": {"<uid>": {key, keysecondary, comment,
content, constant, order, position, …}}}``.  Keys and secondary keys become aliases; every other
field is kept in ``extra`` and written back on export."""

from __future__ import annotations

from typing import Any

from loreweave.interop.model import PortableEntry, require, strings, unique

SOURCE = "sillytavern_world_info"


def parse(data: Any) -> list[PortableEntry]:
    require(isinstance(data, dict) and "entries" in data, "file", "no 'entries' object")
    raw = data["entries"]
    items = list(raw.items()) if isinstance(raw, dict) else list(enumerate(raw))
    require(isinstance(raw, dict | list), "entries", "must be an object or a list")
    entries = []
    for uid, item in items:
        where = f"entries.{uid}"
        require(isinstance(item, dict), where, "must be an object")
        content = item.get("content")
        require(
            isinstance(content, str) and content.strip() != "",
            f"{where}.content",
            "missing or empty",
        )
        keys = strings(item.get("key", []), f"{where}.key")
        secondary = strings(item.get("keysecondary", []), f"{where}.keysecondary")
        comment = item.get("comment") or ""
        require(isinstance(comment, str), f"{where}.comment", "must be a string")
        title = comment.strip() or (keys[0] if keys else f"Entry {uid}")
        entries.append(
            PortableEntry(
                title=title[:200],
                content=content,
                aliases=unique(keys + secondary, exclude=title),
                extra={SOURCE: {"uid": uid, **item}},
            )
        )
    return entries


def build(entries: list[PortableEntry]) -> dict[str, Any]:
    """World Info JSON; an entry imported from World Info gets its own fields back."""
    out: dict[str, Any] = {}
    for index, entry in enumerate(entries):
        original = dict(entry.extra.get(SOURCE, {}))
        uid = original.pop("uid", index)
        keys = original.get("key", [])
        secondary = original.get("keysecondary", [])
        imported_aliases = unique([*keys, *secondary], exclude=entry.title)
        if [a.lower() for a in imported_aliases] != [a.lower() for a in entry.aliases]:
            keys, secondary = unique([entry.title, *entry.aliases]), []
        item = {
            "uid": uid if isinstance(uid, int) else index,
            "key": keys or [entry.title],
            "keysecondary": secondary,
            "comment": original.get("comment", entry.title) or entry.title,
            "content": entry.content,
            "constant": False,
            "selective": False,
            "order": 100,
            "position": 0,
            "disable": False,
        }
        item.update({k: v for k, v in original.items() if k not in ("content",)})
        item["content"] = entry.content
        out[str(uid)] = item
    return {"entries": out}

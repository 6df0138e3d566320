"""SillyTavern World Info (lorebook) JSON: ``{"entries": {"<uid>": {key, keysecondary, comment,
content, constant, order, position, …}}}``.  Keys become aliases; secondary keys, their logic,
``constant`` and ``disable`` become the entry's activation fields; every other field is kept in
``extra`` and written back on export."""

from __future__ import annotations

from typing import Any

from loreweave.db.models import WORLD_INFO
from loreweave.interop.model import (
    KEY_LOGIC_NUMBER,
    KeyFields,
    Lorebook,
    PortableEntry,
    entry_from,
    keys_for,
    readable,
    require,
)

SOURCE = WORLD_INFO
FIELDS = KeyFields(keys="key", secondary="keysecondary", labels=("comment",), disable=True)


def parse(data: Any, *, strict: bool = True) -> Lorebook:
    require(isinstance(data, dict) and "entries" in data, "file", "no 'entries' object")
    raw = data["entries"]
    require(isinstance(raw, dict | list), "entries", "must be an object or a list")
    items = list(raw.items()) if isinstance(raw, dict) else list(enumerate(raw))
    entries, skipped = readable(
        items,
        lambda uid, item: entry_from(
            item, f"entries.{uid}", FIELDS, f"Entry {uid}", {SOURCE: {"uid": uid, **item}}
        ),
        strict=strict,
    )
    fields = {k: v for k, v in data.items() if k != "entries"}
    return Lorebook("SillyTavern World Info", entries, {SOURCE: fields} if fields else {}, skipped)


def build(entries: list[PortableEntry], fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """World Info JSON; an entry imported from World Info gets its own fields back, and the
    file its top-level ``fields`` (name, description, scan_depth, token_budget, extensions…).
    Every entry is written: an entry whose uid is taken (two files imported into one world, or
    one file twice) gets the next free uid."""
    out: dict[str, Any] = {}
    taken = {
        uid for entry in entries if isinstance(uid := entry.extra.get(SOURCE, {}).get("uid"), int)
    }
    next_free = max(taken, default=-1) + 1
    for entry in entries:
        original = dict(entry.extra.get(SOURCE, {}))
        uid = original.pop("uid", None)
        if not isinstance(uid, int) or str(uid) in out:
            uid, next_free = next_free, next_free + 1
        keys, secondary = keys_for(entry, original, FIELDS)
        item = {
            "uid": uid,
            "key": keys,
            "keysecondary": secondary,
            "comment": original.get("comment", entry.title) or entry.title,
            "content": entry.content,
            "constant": False,
            "selective": False,
            "order": 100,
            "position": 0,
            "disable": False,
        }
        item.update(original)
        item.update(
            content=entry.content,
            keysecondary=secondary,
            selective=bool(secondary) or bool(original.get("selective", False)),
            constant=entry.constant,
            disable=not entry.enabled,
        )
        item.update(entry.placement)  # order, position, depth, probability: as edited
        if "selectiveLogic" in original or entry.key_logic != "and_any":
            item["selectiveLogic"] = KEY_LOGIC_NUMBER.get(entry.key_logic, 0)
        out[str(uid)] = item
    return {**(fields or {}), "entries": out}

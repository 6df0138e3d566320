"""Character Card V2/V3: the card JSON, or a PNG carrying it base64-encoded in a ``tEXt`` chunk
named ``chara`` (V2) or ``ccv3`` (V3).  Its ``data.character_book.entries`` become lore entries;
the character itself becomes a Character entry."""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from typing import Any

from loreweave.errors import InvalidInput
from loreweave.interop.model import (
    KEY_LOGIC_NUMBER,
    KeyFields,
    PortableEntry,
    entry_from,
    keys_for,
    require,
    strings,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SOURCE = "character_book"
CARD = "character_card"
FIELDS = KeyFields(keys="keys", secondary="secondary_keys", labels=("name", "comment"))


def png_text_chunks(data: bytes) -> dict[str, bytes]:
    """The ``tEXt`` chunks of a PNG, by keyword."""
    require(data.startswith(PNG_SIGNATURE), "file", "not a PNG image")
    chunks: dict[str, bytes] = {}
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        require(len(body) == length, "PNG", "truncated chunk")
        if kind == b"tEXt" and b"\0" in body:
            keyword, text = body.split(b"\0", 1)
            chunks[keyword.decode("latin-1")] = text
        if kind == b"IEND":
            break
        position += 12 + length
    return chunks


def card_from_png(data: bytes) -> dict[str, Any]:
    chunks = png_text_chunks(data)
    raw = chunks.get("ccv3") or chunks.get("chara")
    require(raw is not None, "PNG", "no 'chara' or 'ccv3' text chunk: not a character card")
    try:
        card = json.loads(base64.b64decode(raw or b""))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"PNG: the character chunk is not base64 JSON ({exc})") from None
    require(isinstance(card, dict), "card", "must be a JSON object")
    return dict(card)


def png_with_card(image: bytes, card: dict[str, Any]) -> bytes:
    """``image`` with its ``chara`` chunk replaced by ``card``."""
    chunks = [image[: len(PNG_SIGNATURE)]]
    position = len(PNG_SIGNATURE)
    payload = base64.b64encode(json.dumps(card).encode())
    body = b"chara\0" + payload
    new = (
        struct.pack(">I", len(body))
        + b"tEXt"
        + body
        + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    )
    while position + 8 <= len(image):
        (length,) = struct.unpack(">I", image[position : position + 4])
        kind = image[position + 4 : position + 8]
        chunk = image[position : position + 12 + length]
        is_card = kind == b"tEXt" and image[position + 8 :].startswith((b"chara\0", b"ccv3\0"))
        if kind == b"IEND":
            chunks.append(new)
        if not is_card:
            chunks.append(chunk)
        position += 12 + length
    return b"".join(chunks)


def parse(card: dict[str, Any]) -> list[PortableEntry]:
    data = card.get("data", card)
    require(isinstance(data, dict), "card.data", "must be an object")
    entries: list[PortableEntry] = []
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        description = "\n\n".join(
            part.strip()
            for part in (data.get("description"), data.get("personality"))
            if isinstance(part, str) and part.strip()
        )
        if description:
            entries.append(
                PortableEntry(
                    title=name.strip()[:200],
                    content=description,
                    entity_type="Character",
                    tags=strings(data.get("tags", []), "card.data.tags")[:50],
                    extra={CARD: {"spec": card.get("spec"), "name": name}},
                )
            )
    book = data.get("character_book")
    if book is None:
        return entries
    require(isinstance(book, dict), "character_book", "must be an object")
    raw = book.get("entries")
    require(isinstance(raw, list), "character_book.entries", "must be a list")
    entries += [
        entry_from(
            item,
            f"character_book.entries.{index}",
            FIELDS,
            f"Entry {index}",
            {SOURCE: {"book_name": book.get("name"), **item}},
        )
        for index, item in enumerate(raw)
    ]
    return entries


def build_book(entries: list[PortableEntry], name: str) -> dict[str, Any]:
    """A V2 ``character_book`` object."""
    items = []
    for index, entry in enumerate(entries):
        original = {k: v for k, v in entry.extra.get(SOURCE, {}).items() if k != "book_name"}
        keys, secondary = keys_for(entry, original, FIELDS)
        item = {
            "id": index,
            "keys": keys,
            "secondary_keys": secondary,
            "comment": entry.title,
            "content": entry.content,
            "constant": False,
            "selective": False,
            "insertion_order": 100,
            "enabled": True,
            "position": "before_char",
            "extensions": {},
        }
        item.update(original)
        found = item.get("extensions")
        extensions: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
        if "selectiveLogic" in extensions or entry.key_logic != "and_any":
            extensions["selectiveLogic"] = KEY_LOGIC_NUMBER.get(entry.key_logic, 0)
        item.update(
            content=entry.content,
            secondary_keys=secondary,
            selective=bool(secondary) or bool(original.get("selective", False)),
            constant=entry.constant,
            enabled=entry.enabled,
            extensions=extensions,
        )
        items.append(item)
    return {"name": name, "entries": items}

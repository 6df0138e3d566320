"""Character Card V1/V2/V3: the card JSON, or a PNG carrying it base64-encoded in a ``tEXt``
chunk named ``chara`` (V2) or ``ccv3`` (V3).  Its ``data.character_book.entries`` become lore
entries; the character itself becomes a Character entry that keeps the whole card (greetings,
scenario, examples, system prompt, the image), so it can be exported as a card again."""

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
    Lorebook,
    PortableEntry,
    entry_from,
    keys_for,
    readable,
    require,
    strings,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SOURCE = "character_book"
CARD = "character_card"
KIND = "character card"
FIELDS = KeyFields(
    keys="keys", secondary="secondary_keys", labels=("name", "comment"), order="insertion_order"
)
POSITIONS = {0: "before_char", 1: "after_char"}  # the book's two; the rest: extensions.position


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


def strip_text_chunks(image: bytes) -> bytes:
    """The PNG without its text chunks (a card's JSON is written back fresh)."""
    kept = [image[: len(PNG_SIGNATURE)]]
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(image):
        (length,) = struct.unpack(">I", image[position : position + 4])
        if image[position + 4 : position + 8] != b"tEXt":
            kept.append(image[position : position + 12 + length])
        position += 12 + length
    return b"".join(kept)


def _description(data: dict[str, Any]) -> str:
    return "\n\n".join(
        part.strip()
        for part in (data.get("description"), data.get("personality"))
        if isinstance(part, str) and part.strip()
    )


def parse(card: dict[str, Any], *, strict: bool = True, image: bytes | None = None) -> Lorebook:
    """A V1 (flat), V2 or V3 card.  The character becomes a Character entry carrying the whole
    card but its book's entries (and the image of a PNG card), so it can be exported again as
    a card; the book's entries become entries; the book's own fields are kept for its export."""
    data = card.get("data", card)
    require(isinstance(data, dict), "card.data", "must be an object")
    entries: list[PortableEntry] = []
    name = data.get("name")
    description = _description(data)
    if isinstance(name, str) and name.strip() and description:
        kept = dict(card)
        if "data" in kept:
            kept["data"] = {k: v for k, v in data.items() if k != "character_book"}
        else:
            kept.pop("character_book", None)
        carried: dict[str, Any] = {"card": kept}
        if image is not None:
            carried["png"] = base64.b64encode(strip_text_chunks(image)).decode()
        entries.append(
            PortableEntry(
                title=name.strip()[:200],
                content=description,
                entity_type="Character",
                tags=strings(data.get("tags", []), "card.data.tags")[:50],
                extra={CARD: carried},
            )
        )
    book = data.get("character_book")
    if book is None:
        return Lorebook(KIND, entries)
    require(isinstance(book, dict), "character_book", "must be an object")
    raw = book.get("entries")
    require(isinstance(raw, list), "character_book.entries", "must be a list")
    found, skipped = readable(
        enumerate(raw),
        lambda index, item: entry_from(
            item, f"character_book.entries.{index}", FIELDS, f"Entry {index}", {SOURCE: item}
        ),
        strict=strict,
    )
    fields = {k: v for k, v in book.items() if k != "entries"}
    return Lorebook(KIND, entries + found, {SOURCE: fields} if fields else {}, skipped)


def is_character(entry: PortableEntry) -> bool:
    return CARD in entry.extra


def build_book(
    entries: list[PortableEntry], name: str, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A V2 ``character_book`` object: the entries but a card's character, named ``name``
    unless the imported book's own ``fields`` name it."""
    items = []
    for index, entry in enumerate(e for e in entries if not is_character(e)):
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
        placement = entry.placement
        for field_name in ("position", "depth", "probability"):
            if field_name in placement:
                extensions[field_name] = placement[field_name]
        if "order" in placement:
            item["insertion_order"] = placement["order"]
        if placement.get("position") in POSITIONS:
            item["position"] = POSITIONS[placement["position"]]
        item.update(
            content=entry.content,
            secondary_keys=secondary,
            selective=bool(secondary) or bool(original.get("selective", False)),
            constant=entry.constant,
            enabled=entry.enabled,
            extensions=extensions,
        )
        items.append(item)
    return {"name": name, **(fields or {}), "entries": items}


def build_card(
    entries: list[PortableEntry], name: str, fields: dict[str, Any] | None = None
) -> tuple[dict[str, Any], bytes | None]:
    """A V2 card of the world's character (the imported card, its description as edited
    since) with every other entry in its book; and its image when it came as a PNG."""
    character = next((e for e in entries if is_character(e)), None)
    if character is None:
        raise InvalidInput("no character card was imported into this world: export a lorebook")
    carried = character.extra[CARD]
    card = dict(carried.get("card") or {})
    data = dict(card.get("data", card))
    if _description(data) != character.content:
        data = {**data, "description": character.content, "personality": ""}
    data["name"] = data.get("name") or character.title
    data["character_book"] = build_book(entries, name, fields)
    # a V2/V3 card keeps its top-level fields (SillyTavern mirrors V1's there); a V1 card's
    # fields are its data
    top = {k: v for k, v in card.items() if k != "data"} if "data" in card else {}
    out = {
        **top,
        "spec": card.get("spec") or "chara_card_v2",
        "spec_version": card.get("spec_version") or "2.0",
        "data": {k: v for k, v in data.items() if k not in ("spec", "spec_version")},
    }
    if out["spec"] not in ("chara_card_v2", "chara_card_v3"):
        out["spec"], out["spec_version"] = "chara_card_v2", "2.0"
    image = carried.get("png")
    return out, base64.b64decode(image) if isinstance(image, str) else None

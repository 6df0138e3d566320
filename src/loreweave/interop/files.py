"""Reading and writing lorebook files: the format is recognised from the content."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Literal

from loreweave.db.engine import Database
from loreweave.errors import InvalidInput
from loreweave.interop import charcard, worldinfo
from loreweave.interop.model import Lorebook, PortableEntry
from loreweave.validation import check_tree
from loreweave.vectors.service import CompositeVectorService

ExportFormat = Literal["worldinfo", "character-book", "card"]
V1_CARD = {"first_mes", "mes_example", "char_name", "char_persona"}  # a flat V1 card's fields
MAX_FILE_BYTES = 20 * 2**20


def read_lorebook(path: Path, *, strict: bool = False) -> Lorebook:
    """A World Info JSON, a character card (V1/V2/V3, JSON or PNG) or a bare ``character_book``
    JSON.  Raises InvalidInput naming the file and what is wrong; an entry that cannot be read
    is skipped and reported (``strict``: refuses the file)."""
    too_large = InvalidInput(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        if path.is_dir():
            raise InvalidInput(f"{path} is a directory")
        with path.open("rb") as stream:  # what is read counts: a pipe has no size to stat
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise too_large
    try:
        return parse_lorebook(data, strict=strict)
    except InvalidInput as exc:
        raise InvalidInput(f"{path.name}: {exc}") from None


def parse_lorebook(data: bytes, *, strict: bool = False) -> Lorebook:
    """:func:`read_lorebook` for a file's bytes (an upload)."""
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"larger than {MAX_FILE_BYTES // 2**20} MiB")
    if not data.strip():
        raise InvalidInput("the file is empty")
    if data.startswith(charcard.PNG_SIGNATURE):
        card = charcard.card_from_png(data)
        book = charcard.parse(card, strict=strict, image=data)
        return Lorebook("character card (PNG)", book.entries, book.fields, book.skipped)
    try:
        document = json.loads(data)
    except RecursionError:
        raise InvalidInput("the JSON is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"not JSON or a PNG card ({exc})") from None
    check_tree(document)  # no NUL, no lone surrogate: nothing that cannot be stored
    return _parse_json(document, strict)


def _parse_json(document: Any, strict: bool) -> Lorebook:
    if not isinstance(document, dict):
        raise InvalidInput("the JSON is not an object")
    spec = str(document.get("spec", ""))
    if spec.startswith("chara_card") or "data" in document or V1_CARD & document.keys():
        book = charcard.parse(document, strict=strict)
        return Lorebook("character card (JSON)", book.entries, book.fields, book.skipped)
    entries = document.get("entries")
    if isinstance(entries, list) and all(isinstance(e, dict) and "keys" in e for e in entries):
        book = charcard.parse({"data": {"character_book": document}}, strict=strict)
        return Lorebook("character book", book.entries, book.fields, book.skipped)
    if "entries" in document:
        return worldinfo.parse(document, strict=strict)
    raise InvalidInput("not a World Info file, a character card or a character book")


def portable_entries(
    database: Database,
    vectors: CompositeVectorService,
    world_id: uuid.UUID,
    session_id: uuid.UUID | None,
) -> list[PortableEntry]:
    """A world's lore, or one session's view of it (its created entries; notes included)."""
    with database.uow(read_only=True) as uow:
        uow.worlds.require(world_id)
        if session_id is None:
            entries = [e for e in uow.entries.in_world(world_id) if e.origin_session_id is None]
        else:
            session = uow.sessions.require(session_id)
            if session.world_id != world_id:
                raise InvalidInput(f"session {session_id} is not in world {world_id}")
            entries = list(uow.entries.visible_to(session))
        out = []
        for entry in entries:
            content = (
                vectors.document(uow, entry, session_id).text.split("\n", 1)[1]
                if session_id is not None and uow.notes.for_entry(session_id, entry.id)
                else entry.content
            )
            out.append(
                PortableEntry(
                    title=entry.title,
                    content=content,
                    entity_type=entry.entity_type,
                    tags=list(entry.tags or []),
                    aliases=list(entry.aliases or []),
                    extra=dict(entry.extra or {}),
                    secondary_keys=list(entry.secondary_keys or []),
                    key_logic=entry.key_logic,
                    constant=entry.constant,
                    enabled=entry.enabled,
                    placement=dict(entry.placement or {}),
                )
            )
        return out


def write_document(path: Path, document: dict[str, Any], image: bytes | None = None) -> None:
    """Write an export, atomically: JSON, or a card inside ``image`` when ``path`` ends in
    ``.png``; a bad path is a one-line error."""
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory: give a file name")
    if not path.parent.is_dir():
        raise InvalidInput(f"{path.parent} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".png":
        if image is None or "data" not in document:
            raise InvalidInput(f"{path}: only a card imported from a PNG exports as a PNG")
        payload = charcard.png_with_card(image, document)
    elif suffix != ".json":
        raise InvalidInput(f"{path}: an export is written as .json (or a card as .png)")
    else:
        payload = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_bytes(payload)
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def export_notes(entries: list[PortableEntry]) -> list[str]:
    """What an export should tell about fields loreweave keeps but does not act on."""
    outlets = sorted(
        {
            str(name)
            for entry in entries
            if (name := entry.extra.get(worldinfo.SOURCE, {}).get("outletName"))
        }
    )
    if not outlets:
        return []
    count = sum(1 for e in entries if e.extra.get(worldinfo.SOURCE, {}).get("outletName"))
    return [
        f"{count} entries use the Outlet position (outletName: {', '.join(outlets)}): written "
        "back as they came; loreweave has no outlet and retrieves them as ordinary lore"
    ]


def export_document(
    entries: list[PortableEntry], fmt: ExportFormat, name: str, fields: dict[str, Any]
) -> tuple[dict[str, Any], bytes | None]:
    """The export of ``entries`` in ``fmt``, with the imported file's own ``fields`` (by
    format); a card also returns the image it came with (None for a JSON card)."""
    if fmt == "worldinfo":
        return worldinfo.build(entries, fields.get(worldinfo.SOURCE)), None
    if fmt == "character-book":
        return charcard.build_book(entries, name, fields.get(charcard.SOURCE)), None
    return charcard.build_card(entries, name, fields.get(charcard.SOURCE))


def entries_written(document: dict[str, Any], fmt: ExportFormat) -> int:
    """How many lorebook entries an exported ``document`` holds (a card: its book's)."""
    if fmt == "card":
        data = document.get("data", document)
        book = data.get("character_book") or {}
        return len(book.get("entries", []))
    return len(document.get("entries", []))

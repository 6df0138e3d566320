"""Worlds, their lore entries and their sessions."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from loreweave.api.access import AccessTo
from loreweave.api.deps import LW, Lore
from loreweave.api.progress import ImportsUnderWay
from loreweave.api.schemas import Clean, EntryIn, EntryOut, SessionIn, SessionOut, WorldIn, WorldOut
from loreweave.app import branches
from loreweave.app.lore import EntryFilter
from loreweave.errors import InvalidInput, NotFound
from loreweave.interop import charcard
from loreweave.interop.files import export_document, parse_lorebook, portable_entries

router = APIRouter(prefix="/api/worlds", tags=["worlds"])

# an import's progress is read under a name of the caller's choice
PROGRESS_NAME = r"^[A-Za-z0-9_-]{1,64}$"
# an export's file name says its format: two exports of one world never overwrite each other
SUFFIXES = {"worldinfo": ".world-info", "character-book": ".character-book", "card": ".card"}


@router.post("", status_code=status.HTTP_201_CREATED)
def create_world(body: WorldIn, lw: LW) -> WorldOut:
    return WorldOut.model_validate(lw.lore.create_world(body.name, body.description))


@router.get("")
def list_worlds(lw: LW, access: AccessTo) -> list[WorldOut]:
    with lw.database.uow(read_only=True) as uow:
        return [WorldOut.model_validate(w) for w in uow.worlds.list() if access.allows(w.id)]


@router.get("/{world_id}")
def get_world(world_id: uuid.UUID, lw: LW) -> WorldOut:
    with lw.database.uow(read_only=True) as uow:
        return WorldOut.model_validate(uow.worlds.require(world_id))


@router.delete("/{world_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_world(world_id: uuid.UUID, lw: LW, cascade: bool = False) -> Response:
    """A world and everything in it; 409 while it has sessions, unless ``cascade=true``."""
    lw.transcript.delete_world(world_id, cascade=cascade)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{world_id}/lore-entries", status_code=status.HTTP_201_CREATED)
def create_entry(world_id: uuid.UUID, body: EntryIn, lore: Lore) -> EntryOut:
    return EntryOut.model_validate(lore.create(world_id, **body.model_dump(exclude_none=True)))


@router.get("/{world_id}/lore-entries")
def list_entries(
    world_id: uuid.UUID,
    lore: Lore,
    type: Annotated[str | None, Query(max_length=50), Clean] = None,
    tag: Annotated[str | None, Query(max_length=100), Clean] = None,
    dynamic: bool | None = None,
    text: Annotated[str | None, Query(max_length=200), Clean] = None,
    session_id: uuid.UUID | None = None,
) -> list[EntryOut]:
    where = EntryFilter(type, tag, dynamic, text, session_id)
    return [EntryOut.model_validate(e) for e in lore.list(world_id, where)]


@router.post("/{world_id}/import", status_code=status.HTTP_201_CREATED)
async def import_lorebook(
    world_id: uuid.UUID,
    request: Request,
    lw: LW,
    imports: ImportsUnderWay,
    strict: bool = False,
    progress: Annotated[str | None, Query(pattern=PROGRESS_NAME)] = None,
) -> dict[str, Any]:
    """The request body is a lorebook file as it is (World Info JSON, a character card as JSON or
    PNG, a character book): {imported, updated, merged, kind, skipped} -- an entry the world
    already has is merged or updated, never doubled; an entry that cannot be read is skipped
    and named (``strict=true``: the file is refused, nothing imported).  With ``progress=TOKEN``
    (the caller's choice) ``GET …/imports/TOKEN`` says how far the embedding is meanwhile."""
    data = await request.body()
    book = await run_in_threadpool(lambda: parse_lorebook(data, strict=strict))
    if not book.entries:
        raise InvalidInput("no entries to import")
    lore = lw.lore
    with imports.tracked(world_id, progress) as moved:
        report = await run_in_threadpool(
            lambda: lore.import_entries(world_id, book.entries, book.fields, progress=moved)
        )
    return {
        "imported": len(report.created),
        "updated": len(report.updated),
        "merged": len(report.merged),
        "kind": book.kind,
        "skipped": book.skipped,
    }


@router.get("/{world_id}/imports/{token}")
def import_progress(
    world_id: uuid.UUID,
    token: Annotated[str, Path(pattern=PROGRESS_NAME)],
    imports: ImportsUnderWay,
) -> dict[str, int]:
    """How far the import under way with ``progress=TOKEN`` is: {done, total} in entries
    embedded (done = total: their rows are being written); 404 before it starts embedding and
    after it ends."""
    found = imports.read(world_id, token)
    if found is None:
        raise NotFound("import under way", token)
    done, total = found
    return {"done": done, "total": total}


@router.get("/{world_id}/export")
def export_lorebook(
    world_id: uuid.UUID,
    lw: LW,
    format: Literal["worldinfo", "character-book", "card"] = "worldinfo",
    session_id: uuid.UUID | None = None,
    png: bool = False,
) -> Response:
    """The world's lore (or a session's state) as a file to download: World Info, a character
    book, or the imported character card with the world's lore as its book (JSON; with
    ``png=true`` inside the card's own image, for a card imported from a PNG)."""
    entries = portable_entries(lw.database, lw.vectors, world_id, session_id)
    with lw.database.uow(read_only=True) as uow:
        world = uow.worlds.require(world_id)
        name, fields = world.name, dict(world.extra or {})
    document, image = export_document(entries, format, name, fields)
    filename = (re.sub(r"[^\w.-]+", "_", name).strip("_") or "lorebook") + SUFFIXES[format]
    if png:
        if format != "card" or image is None:
            raise InvalidInput("only a card imported from a PNG exports as a PNG (format=card)")
        return Response(
            charcard.png_with_card(image, document),
            media_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="{filename}.png"'},
        )
    return JSONResponse(
        document, headers={"Content-Disposition": f'attachment; filename="{filename}.json"'}
    )


@router.post("/{world_id}/sessions", status_code=status.HTTP_201_CREATED)
def create_session(world_id: uuid.UUID, body: SessionIn, lw: LW) -> SessionOut:
    return SessionOut.model_validate(lw.chat.start_session(world_id, body.title))


@router.get("/{world_id}/sessions")
def list_sessions(
    world_id: uuid.UUID,
    lw: LW,
    side: Annotated[Literal["all", "active", "abandoned", "archived"], Query()] = "all",
) -> list[SessionOut]:
    """The world's sessions.  ``side``: ``abandoned`` — the sides of a branch no request has
    matched since a related session was (what "delete the last messages, then send" leaves, as
    the proxy cannot tell it from a branch); ``archived`` — set aside by a person; ``active`` —
    the others."""
    with lw.database.uow(read_only=True) as uow:
        uow.worlds.require(world_id)
        left = branches.abandoned(uow, world_id)
        listed = []
        for session in uow.sessions.in_world(world_id):
            kind = (
                "archived"
                if session.archived_at is not None
                else "abandoned"
                if session.id in left
                else "active"
            )
            if side in ("all", kind):
                out = SessionOut.model_validate(session)
                listed.append(out.model_copy(update={"abandoned_for": left.get(session.id)}))
        return listed

"""Importing a lorebook's entries into a world: the use case behind ``loreweave import``, the
import route and :meth:`LoreService.import_entries`.

The entries' documents are embedded first (``batch`` entries a call, progress reported after
each), outside any transaction; then ONE transaction writes the entries and their vector rows.
So an import writes the index once, the database never holds an imported entry without its
vectors (an integrity check during an import finds nothing to report), and a slow embedder never
holds a write lock.  What changed in the world while the import embedded is decided again in
that transaction, and a document that is not what was embedded is embedded after the commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from loreweave.db.engine import Database
from loreweave.db.models import LoreEntry, utcnow
from loreweave.db.uow import UnitOfWork
from loreweave.vectors.service import CompositeVectorService

# SillyTavern's activation fields, imported and updated with the content
ACTIVATION = ("secondary_keys", "key_logic", "constant", "enabled", "placement")

Progress = Callable[[int, int], None]  # (entries embedded, entries to embed)


@dataclass
class Imported:
    """What an import did: entries created, entries it updated (the same entry of the same
    file, edited since), and entries the world already had (merged, nothing doubled)."""

    created: list[uuid.UUID] = field(default_factory=list)
    updated: list[uuid.UUID] = field(default_factory=list)
    merged: list[uuid.UUID] = field(default_factory=list)

    def summary(self) -> str:
        said = [f"{len(self.created)} new"]
        if self.updated:
            said.append(f"{len(self.updated)} updated")
        if self.merged:
            said.append(f"{len(self.merged)} already in the world (merged, not doubled)")
        return ", ".join(said)


def import_entries(
    database: Database,
    vectors: CompositeVectorService,
    world_id: uuid.UUID,
    entries: Sequence[Any],
    fields: dict[str, Any] | None = None,
    *,
    progress: Progress | None = None,
) -> Imported:
    """Import ``entries`` (portable entries) into the world, all or nothing; the file's own
    ``fields`` (by format) are kept on the world for its export.  An entry the world already
    has is not doubled: the same keys and content (a card's embedded book and the World Info
    file it came from, or a file imported again) is merged into it, keeping both formats'
    fields; the same keys under the same uid of the same format (a file edited since) updates
    it."""
    new_ids = [uuid.uuid4() for _ in entries]
    with database.uow(read_only=True) as uow:
        uow.worlds.require(world_id)
        to_embed = [
            _as_imported(world_id, new_id if known is None else known.id, e)
            for new_id, (e, known) in zip(new_ids, _decide(uow, world_id, entries), strict=True)
            if known is None or _differs(known, e)
        ]
        groups = vectors.documents_of(uow, to_embed)
    ahead = vectors.embed_ahead(groups, progress=progress)
    with database.uow() as uow:
        report, written = _apply(uow, world_id, entries, fields, new_ids)
        documents = [d for group in vectors.documents_of(uow, written) for d in group]
        late = vectors.write_ahead(uow, documents, ahead)
        uow.commit()
    if late:  # the world changed while the import embedded
        vectors.sync_entries(sorted({d.key.lore_entry_id for d in late}, key=str))
    return report


def _apply(
    uow: UnitOfWork,
    world_id: uuid.UUID,
    entries: Sequence[Any],
    fields: dict[str, Any] | None,
    new_ids: list[uuid.UUID],
) -> tuple[Imported, list[LoreEntry]]:
    """Inside ``uow``: create, update or merge each entry; returns the report and the entries
    whose documents changed (created or updated)."""
    world = uow.worlds.require(world_id)
    if fields:
        world.extra = {**(world.extra or {}), **fields}
    report, written = Imported(), []
    # the file's order is the world's (entries list by creation time): stamped here, a
    # microsecond apart, as one flush could give several the same clock reading
    stamp = utcnow()
    for i, (new_id, (e, known)) in enumerate(
        zip(new_ids, _decide(uow, world_id, entries), strict=True)
    ):
        if known is None:
            entry = _as_imported(world_id, new_id, e)
            entry.created_at = stamp + timedelta(microseconds=i)
            uow.session.add(entry)
            report.created.append(new_id)
            written.append(entry)
            continue
        known.extra = {**(known.extra or {}), **e.extra}
        if _differs(known, e):
            known.content, known.title, known.tags = e.content, e.title, e.tags
            for name in ACTIVATION:
                setattr(known, name, getattr(e, name))
            report.updated.append(known.id)
            written.append(known)
        else:
            report.merged.append(known.id)
    uow.session.flush()
    return report, written


def _as_imported(world_id: uuid.UUID, entry_id: uuid.UUID, e: Any) -> LoreEntry:
    """The world's entry for the portable entry ``e`` (not added to any session)."""
    return LoreEntry(
        id=entry_id,
        world_id=world_id,
        title=e.title,
        entity_type=e.entity_type,
        content=e.content,
        tags=e.tags,
        aliases=e.aliases,
        extra=e.extra,
        **{name: getattr(e, name) for name in ACTIVATION},
    )


def _decide(
    uow: UnitOfWork, world_id: uuid.UUID, entries: Sequence[Any]
) -> list[tuple[Any, LoreEntry | None]]:
    """Each entry with the world's entry it already is, if any (the world read once)."""
    existing = _by_keys([e for e in uow.entries.in_world(world_id) if e.origin_session_id is None])
    return [(e, _already(existing, e)) for e in entries]


def _differs(known: LoreEntry, incoming: Any) -> bool:
    return _content_key(known.content) != _content_key(incoming.content)


def _content_key(text: str) -> str:
    return " ".join(text.split())


def _keys(title: str, aliases: Sequence[str]) -> frozenset[str]:
    return frozenset(" ".join(k.split()).casefold() for k in [title, *aliases] if k and k.strip())


def _uid(extra: dict[str, Any]) -> set[tuple[str, object]]:
    """The entry's id in each format it came from (World Info's uid, a character book's id)."""
    found = set()
    for source, original in (extra or {}).items():
        if isinstance(original, dict):
            for name in ("uid", "id"):
                if isinstance(original.get(name), int):
                    found.add((source, original[name]))
    return found


def _by_keys(entries: Sequence[LoreEntry]) -> dict[frozenset[str], list[LoreEntry]]:
    """The world's entries by their keys (title and aliases)."""
    found: dict[frozenset[str], list[LoreEntry]] = {}
    for entry in entries:
        found.setdefault(_keys(entry.title, entry.aliases or []), []).append(entry)
    return found


def _already(existing: dict[frozenset[str], list[LoreEntry]], incoming: Any) -> LoreEntry | None:
    """The world's entry ``incoming`` is, if any: the same keys and content, or the same keys
    under the same id of the same format."""
    content = _content_key(incoming.content)
    ids = _uid(incoming.extra)
    for entry in existing.get(_keys(incoming.title, incoming.aliases), []):
        if _content_key(entry.content) == content or ids & _uid(entry.extra or {}):
            return entry
    return None

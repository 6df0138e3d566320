"""CompositeVectorService: keeps every entity's vector rows equal to its composite documents,
one row per search key of each document (``memory/composite.py`` says which keys).

Two ways in.  Workers that already know the new text call :meth:`embed` before their write
transaction and :meth:`write` inside it, so a note, its revision, its task status and its vector
commit together.  Everything else (a lore edit, a promotion, a repair) calls :meth:`sync_entry`
after its commit: it reads, embeds what changed, and writes only if the texts are still current.
A text whose hash is unchanged is never embedded again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from loreweave.config import CompositeDocumentConfig
from loreweave.db.engine import Database
from loreweave.db.models import EntityVector, LoreEntry, SessionNote
from loreweave.db.uow import UnitOfWork
from loreweave.llm.types import Embedder, Matrix
from loreweave.memory.composite import (
    CompositeDocument,
    DocumentKey,
    SearchKey,
    documents_for,
    search_keys,
    session_view,
)
from loreweave.vectors.store import CHUNK, VectorStore, next_versions, row_key

log = logging.getLogger("loreweave.vectors")

SYNC_ATTEMPTS = 3
# documents embedded ahead of their transaction, by key: the text embedded and its key vectors
Ahead = dict[DocumentKey, tuple[CompositeDocument, Matrix]]


@dataclass
class VerifyReport:
    documents: int = 0
    missing: list[DocumentKey] = field(default_factory=list)
    stale: list[DocumentKey] = field(default_factory=list)
    orphans: list[DocumentKey] = field(default_factory=list)
    other_model: int = 0
    repaired: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.orphans or self.other_model)


class CompositeVectorService:
    def __init__(
        self,
        database: Database,
        embedder: Embedder,
        config: CompositeDocumentConfig,
        *,
        chunk_words: int = 160,
    ) -> None:
        self.database = database
        self.embedder = embedder
        self.config = config
        self.chunk_words = chunk_words

    # -- documents -----------------------------------------------------------------------------
    def documents(
        self, uow: UnitOfWork, entry: LoreEntry, session_id: uuid.UUID | None = None
    ) -> list[CompositeDocument]:
        """The documents ``entry`` should have (only the ``session_id`` view, when given); an
        entry waiting for a person's review has none yet."""
        if entry.proposed:
            return []
        query = select(SessionNote).where(SessionNote.lore_entry_id == entry.id)
        if session_id is not None:
            query = query.where(SessionNote.session_id == session_id)
        documents = documents_for(entry, list(uow.session.scalars(query)), self.config)
        if session_id is None:
            return documents
        return [d for d in documents if d.key.session_id in (session_id, None)]

    def documents_of(
        self, uow: UnitOfWork, entries: Sequence[LoreEntry]
    ) -> list[list[CompositeDocument]]:
        """:meth:`documents` of many entries, their notes read in one query per ``CHUNK``."""
        ids = [entry.id for entry in entries]
        notes: dict[uuid.UUID, list[SessionNote]] = {}
        for start in range(0, len(ids), CHUNK):
            query = select(SessionNote).where(
                SessionNote.lore_entry_id.in_(ids[start : start + CHUNK])
            )
            for note in uow.session.scalars(query):
                notes.setdefault(note.lore_entry_id, []).append(note)
        return [documents_for(entry, notes.get(entry.id, []), self.config) for entry in entries]

    def document(
        self, uow: UnitOfWork, entry: LoreEntry, session_id: uuid.UUID
    ) -> CompositeDocument:
        """The composite document of ``entry`` as ``session_id`` sees it."""
        return session_view(
            entry, uow.notes.for_entry(session_id, entry.id), session_id, self.config
        )

    # -- embedding and writing -----------------------------------------------------------------
    def keys(self, document: CompositeDocument) -> list[SearchKey]:
        return search_keys(document, self.chunk_words)

    def embed(self, documents: Sequence[CompositeDocument]) -> Matrix:
        """The vectors of every search key of ``documents``, in order (one embedding call)."""
        return self.embedder.embed([k.text for d in documents for k in self.keys(d)])

    def write(
        self, uow: UnitOfWork, documents: Sequence[CompositeDocument], matrix: Matrix
    ) -> None:
        """Write the key vectors :meth:`embed` returned; keys a document no longer has become
        tombstones.  The rows are read in one query, the versions handed out in one
        statement and written in one flush, however many documents."""
        store = VectorStore(uow.session)
        rows = store.for_documents([d.key for d in documents])
        keys = [(d, key) for d in documents for key in self.keys(d)]
        if len(keys) != len(matrix):
            raise ValueError(f"{len(matrix)} vectors for {len(keys)} search keys")
        stale = [
            row
            for d in documents
            for part, row in rows.get(d.key, {}).items()
            if not row.is_deleted and part not in {key.part for key in self.keys(d)}
        ]
        if not keys and not stale:
            return
        versions = iter(next_versions(uow.session, len(keys) + len(stale)))
        model = self.embedder.model_name
        for (document, key), vector in zip(keys, matrix, strict=True):
            row = rows.get(document.key, {}).get(key.part)
            store.write(document, key, vector, model, row, version=next(versions))
        for row in stale:
            store.tombstone(row, version=next(versions))
        uow.session.flush()

    def per_document(
        self, documents: Sequence[CompositeDocument], matrix: Matrix | None
    ) -> list[Matrix]:
        """:meth:`embed`'s matrix cut into each document's key vectors."""
        out, start = [], 0
        for document in documents:
            count = len(self.keys(document))
            assert matrix is not None
            out.append(matrix[start : start + count])
            start += count
        return out

    def embed_ahead(
        self,
        groups: Sequence[Sequence[CompositeDocument]],
        *,
        batch: int = 64,
        progress: Callable[[int, int], None] | None = None,
    ) -> Ahead:
        """Embed the documents of many entries (a group each) before the transaction that
        writes them (:meth:`write_ahead`): ``batch`` entries a call, ``progress(done, total)``
        in entries before the first call and after each."""
        ahead: Ahead = {}
        if progress:
            progress(0, len(groups))
        for start in range(0, len(groups), batch):
            documents = [d for group in groups[start : start + batch] for d in group]
            matrix = self.embed(documents) if documents else None
            for document, vectors in zip(
                documents, self.per_document(documents, matrix), strict=True
            ):
                ahead[document.key] = (document, vectors)
            if progress:
                progress(min(start + batch, len(groups)), len(groups))
        return ahead

    def write_ahead(
        self, uow: UnitOfWork, documents: Sequence[CompositeDocument], ahead: Ahead
    ) -> list[CompositeDocument]:
        """Inside ``uow``: write each of ``documents`` with the vectors :meth:`embed_ahead`
        made of that same text.  Returns the documents it could not write (their text is not
        what was embedded, or they appeared since): sync them after the commit."""
        store = VectorStore(uow.session)
        ready: list[tuple[CompositeDocument, Matrix]] = []
        late = []
        for document in documents:
            found = ahead.get(document.key)
            if found is not None and found[0] == document:
                ready.append(found)
            elif not self._current(document, store.for_document(document.key)):
                late.append(document)
        if ready:
            self.write(uow, [d for d, _ in ready], np.concatenate([v for _, v in ready]))
        return late

    def _current(self, document: CompositeDocument, rows: dict[str, EntityVector]) -> bool:
        """Whether ``rows`` (by part) are exactly the live vectors of ``document``'s keys."""
        keys = self.keys(document)
        live = {part: row for part, row in rows.items() if not row.is_deleted}
        return live.keys() == {key.part for key in keys} and all(
            live[key.part].text_hash == key.hash
            and live[key.part].model == self.embedder.model_name
            for key in keys
        )

    def _changed(
        self, uow: UnitOfWork, documents: list[CompositeDocument]
    ) -> list[CompositeDocument]:
        store = VectorStore(uow.session)
        return [d for d in documents if not self._current(d, store.for_document(d.key))]

    def forget_entry(self, uow: UnitOfWork, entry_id: uuid.UUID) -> None:
        """Inside ``uow``: tombstone every vector of the entry (it is being deleted)."""
        store = VectorStore(uow.session)
        for row in store.for_entry(entry_id):
            store.tombstone(row)

    def sync_entry(self, entry_id: uuid.UUID, session_id: uuid.UUID | None = None) -> int:
        """Bring the vector rows of one entry (or of its view in one session) up to date; a
        deleted entry's rows become tombstones.  Returns how many documents were embedded."""
        return self.sync_entries([entry_id], session_id)

    def sync_entries(
        self,
        entry_ids: Sequence[uuid.UUID],
        session_id: uuid.UUID | None = None,
        *,
        batch: int = 64,
    ) -> int:
        """:meth:`sync_entry` for many entries, embedding up to ``batch`` documents a call."""
        embedded = 0
        for start in range(0, len(entry_ids), batch):
            embedded += self._sync_chunk(list(entry_ids[start : start + batch]), session_id)
        return embedded

    def _wanted(
        self, uow: UnitOfWork, entry_ids: list[uuid.UUID], session_id: uuid.UUID | None
    ) -> dict[uuid.UUID, list[CompositeDocument]]:
        wanted = {}
        for entry_id in entry_ids:
            entry = uow.entries.get(entry_id)
            wanted[entry_id] = self.documents(uow, entry, session_id) if entry else []
        return wanted

    def _sync_chunk(self, entry_ids: list[uuid.UUID], session_id: uuid.UUID | None) -> int:
        embedded = 0
        for _ in range(SYNC_ATTEMPTS):
            with self.database.uow(read_only=True) as uow:
                wanted = self._wanted(uow, entry_ids, session_id)
                changed = self._changed(uow, [d for docs in wanted.values() for d in docs])
            vectors = self.per_document(changed, self.embed(changed) if changed else None)
            with self.database.uow() as uow:
                now = self._wanted(uow, entry_ids, session_id)
                current = {d.key: d for docs in now.values() for d in docs}
                fresh = [
                    (d, v) for d, v in zip(changed, vectors, strict=True) if current.get(d.key) == d
                ]
                if fresh:
                    self.write(uow, [d for d, _ in fresh], np.concatenate([v for _, v in fresh]))
                for entry_id, docs in now.items():
                    self._tombstone_extra(uow, entry_id, session_id, {d.key for d in docs})
                uow.commit()
            embedded += len(fresh)
            if len(fresh) == len(changed):
                return embedded
            log.info("entries changed while they were being embedded; syncing again")
        return embedded

    @staticmethod
    def _tombstone_extra(
        uow: UnitOfWork,
        entry_id: uuid.UUID,
        session_id: uuid.UUID | None,
        keep: set[DocumentKey],
    ) -> None:
        store = VectorStore(uow.session)
        for row in store.for_entry(entry_id):
            key = row_key(row)
            in_scope = session_id is None or row.session_id in (session_id, None)
            if in_scope and key not in keep:
                store.tombstone(row)

    # -- verify and rebuild --------------------------------------------------------------------
    def _all_entry_ids(self) -> list[uuid.UUID]:
        with self.database.uow(read_only=True) as uow:
            entries = set(uow.session.scalars(select(LoreEntry.id)))
            vectors = set(
                uow.session.scalars(
                    select(EntityVector.lore_entry_id).where(EntityVector.is_deleted.is_(False))
                )
            )
        return sorted(entries | vectors, key=str)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Compare every vector row with the documents the database says should exist."""
        report = VerifyReport()
        for entry_id in self._all_entry_ids():
            with self.database.uow(read_only=True) as uow:
                entry = uow.entries.get(entry_id)
                wanted = {d.key: d for d in (self.documents(uow, entry) if entry else [])}
                rows: dict[DocumentKey, dict[str, EntityVector]] = {}
                for r in VectorStore(uow.session).for_entry(entry_id):
                    if not r.is_deleted:
                        rows.setdefault(row_key(r), {})[r.part] = r
            report.documents += len(wanted)
            broken = False
            for key, document in wanted.items():
                parts = rows.get(key, {})
                if not parts:
                    report.missing.append(key)
                elif any(r.model != self.embedder.model_name for r in parts.values()):
                    report.other_model += 1
                elif not self._current(document, parts):
                    report.stale.append(key)
                else:
                    continue
                broken = True
            orphans = [key for key in rows if key not in wanted]
            report.orphans.extend(orphans)
            if repair and (broken or orphans):
                self.sync_entry(entry_id)
                report.repaired += 1
        return report

    def rebuild(
        self, *, batch_size: int = 64, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Re-embed every document with the current embedder (e.g. after a model change)."""
        with self.database.uow() as uow:
            entry_ids = list(uow.session.scalars(select(LoreEntry.id).order_by(LoreEntry.id)))
        done = 0
        for start in range(0, len(entry_ids), batch_size):
            chunk = entry_ids[start : start + batch_size]
            with self.database.uow() as uow:
                documents = [
                    d
                    for entry_id in chunk
                    if (entry := uow.entries.get(entry_id)) is not None
                    for d in self.documents(uow, entry)
                ]
            matrix = self.embed(documents) if documents else None
            with self.database.uow() as uow:
                if matrix is not None:
                    self.write(uow, documents, matrix)
                uow.commit()
            done += len(chunk)
            if progress:
                progress(done, len(entry_ids))
        return done

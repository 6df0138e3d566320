"""Vector rows in the database: the truth that every process's FAISS caches follow."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from loreweave.db.models import EntityVector, SyncCounter
from loreweave.llm.types import Matrix
from loreweave.memory.composite import CompositeDocument, DocumentKey, SearchKey

COUNTER = "vectors"
CHUNK = 500  # entry ids in one IN (…) list


def next_version(session: Session) -> int:
    """The next vector version.  The counter row stays locked until commit, so versions become
    visible in the order they were handed out: a cache that has seen version N never misses an
    older one committed later."""
    statement = (
        update(SyncCounter)
        .where(SyncCounter.name == COUNTER)
        .values(value=SyncCounter.value + 1)
        .returning(SyncCounter.value)
    )
    return int(session.execute(statement).scalar_one())


def next_versions(session: Session, count: int) -> range:
    """``count`` consecutive vector versions in one statement (the counter locked as by
    :func:`next_version`)."""
    statement = (
        update(SyncCounter)
        .where(SyncCounter.name == COUNTER)
        .values(value=SyncCounter.value + count)
        .returning(SyncCounter.value)
    )
    last = int(session.execute(statement).scalar_one())
    return range(last - count + 1, last + 1)


def _where_key(key: DocumentKey) -> list[object]:
    session_clause = (
        EntityVector.session_id.is_(None)
        if key.session_id is None
        else EntityVector.session_id == key.session_id
    )
    return [EntityVector.lore_entry_id == key.lore_entry_id, session_clause]


def row_key(row: EntityVector) -> DocumentKey:
    return DocumentKey(row.lore_entry_id, row.session_id)


class VectorStore:
    """Reads and writes ``entity_vectors`` inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def for_document(self, key: DocumentKey) -> dict[str, EntityVector]:
        """The rows of a document's search keys, by part."""
        rows = self.session.scalars(select(EntityVector).where(*_where_key(key)))  # type: ignore[arg-type]
        return {row.part: row for row in rows}

    def for_documents(
        self, keys: Sequence[DocumentKey]
    ) -> dict[DocumentKey, dict[str, EntityVector]]:
        """The rows of many documents' search keys, by document and part (a query per
        ``CHUNK`` entries, not one per document)."""
        wanted = set(keys)
        entries = sorted({key.lore_entry_id for key in keys}, key=str)
        found: dict[DocumentKey, dict[str, EntityVector]] = {}
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            query = select(EntityVector).where(EntityVector.lore_entry_id.in_(chunk))
            for row in self.session.scalars(query):
                if row_key(row) in wanted:
                    found.setdefault(row_key(row), {})[row.part] = row
        return found

    def for_entry(self, entry_id: uuid.UUID) -> Sequence[EntityVector]:
        query = select(EntityVector).where(EntityVector.lore_entry_id == entry_id)
        return self.session.scalars(query).all()

    def write(
        self,
        document: CompositeDocument,
        key: SearchKey,
        embedding: Matrix,
        model: str,
        row: EntityVector | None = None,
        *,
        version: int | None = None,
    ) -> EntityVector:
        """Insert or replace the vector of one search key of ``document`` (``row``: its
        current row, if known) with a new version (``version``: one already handed out by
        :func:`next_versions`; then the caller flushes)."""
        vector = np.ascontiguousarray(embedding, dtype=np.float32).reshape(-1)
        given = version is not None
        version = version if version is not None else next_version(self.session)
        if row is None and not given:
            row = self.for_document(document.key).get(key.part)
        if row is None:
            row = EntityVector(
                world_id=document.world_id,
                lore_entry_id=document.key.lore_entry_id,
                session_id=document.key.session_id,
                part=key.part,
            )
            self.session.add(row)
        row.text = key.text
        row.text_hash = key.hash
        row.model = model
        row.dim = int(vector.shape[0])
        row.embedding = vector.tobytes()
        row.is_deleted = False
        row.version = version
        if not given:
            self.session.flush()
        return row

    def tombstone(self, row: EntityVector, *, version: int | None = None) -> None:
        """Mark a vector deleted (caches drop it when they see the new version; ``version``:
        as for :meth:`write`)."""
        if not row.is_deleted:
            row.is_deleted = True
            row.version = version if version is not None else next_version(self.session)
            if version is None:
                self.session.flush()


def decode(row_embedding: bytes, dim: int) -> Matrix:
    return np.frombuffer(row_embedding, dtype=np.float32).reshape(1, dim)

"""Retrieval for a session: vector search over both tiers, plus entries named in the message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from loreweave.db.engine import Database
from loreweave.llm.types import Embedder
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.keywords import KeywordIndex
from loreweave.vectors.service import CompositeVectorService


@dataclass(frozen=True)
class RetrievedEntry:
    lore_entry_id: uuid.UUID
    title: str
    entity_type: str
    text: str
    score: float | None
    via: str  # "vector" or "keyword"


class Retriever:
    def __init__(
        self,
        database: Database,
        embedder: Embedder,
        cache: IndexCache,
        vectors: CompositeVectorService,
        *,
        keywords: bool = True,
    ) -> None:
        self.database = database
        self.embedder = embedder
        self.cache = cache
        self.vectors = vectors
        self.keywords = KeywordIndex() if keywords else None

    def search(self, session_id: uuid.UUID, query: str, k: int = 5) -> list[RetrievedEntry]:
        """Up to ``k`` entries by similarity, plus (first) the entries the query names.  Never
        returns another session's notes or session-created entries."""
        vector = self.embedder.embed([query])
        with self.database.uow(read_only=True) as uow:
            session = uow.sessions.require(session_id)
            hits = self.cache.search(uow.session, session.world_id, session.id, vector, k)
            named = (
                self.keywords.matches(uow.session, session.world_id, session.id, query)
                if self.keywords
                else []
            )
            scored: dict[uuid.UUID, tuple[float | None, str]] = {
                entry_id: (None, "keyword") for entry_id in named
            }
            for hit in hits:
                scored.setdefault(hit.key.lore_entry_id, (hit.score, "vector"))
            results = []
            for entry_id, (score, via) in scored.items():
                entry = uow.entries.get(entry_id)
                if entry is None or entry.world_id != session.world_id:
                    continue
                if entry.origin_session_id not in (None, session.id):
                    continue
                document = self.vectors.document(uow, entry, session.id)
                results.append(
                    RetrievedEntry(
                        entry.id, entry.title, entry.entity_type, document.text, score, via
                    )
                )
            return results

"""BM25 over the documents of a session's view (DESIGN §1.3), beside the vector search.

The texts are the ``document`` rows of ``entity_vectors`` (the database's copy of every composite
document), followed by version like the FAISS caches.  A world's base documents are one ``bm25s``
index (a sparse matrix: a query costs well under a millisecond at 10k documents), rebuilt in the
background when they change, the previous one serving meanwhile.  A session's overlay documents
(its notes, its created entries) are few: they are scored with the same formula and the world's
statistics, so both kinds rank on one scale and a note replaces its entry's base document.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import bm25s
import numpy as np
import Stemmer
from sqlalchemy import select
from sqlalchemy.orm import Session

from loreweave.db.models import EntityVector
from loreweave.memory.composite import DOCUMENT_PART

log = logging.getLogger("loreweave.vectors")

K1, B = 1.5, 0.75  # bm25s's defaults ("lucene" scoring)
_stemmer = Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, English stop words dropped, stemmed; "Korrin's" is the token ``korrin``."""
    if not texts:
        return []
    tokens = bm25s.tokenize(
        list(texts),
        stopwords="en",
        stemmer=_stemmer.stemWords,
        return_ids=False,
        show_progress=False,
    )
    return [list(t) for t in tokens]


@dataclass
class _Corpus:
    """One world's base documents, indexed: immutable once built."""

    entry_ids: list[uuid.UUID] = field(default_factory=list)
    index: bm25s.BM25 | None = None
    df: Counter[str] = field(default_factory=Counter)
    avgdl: float = 1.0

    def idf(self, token: str) -> float:
        df, n = self.df.get(token, 0), len(self.entry_ids)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def score(self, tokens: Counter[str], length: int, query: Sequence[str]) -> float:
        """BM25 ("lucene") of one document outside the index, with this corpus's statistics."""
        norm = K1 * (1 - B + B * length / self.avgdl)
        return sum(
            self.idf(t) * tokens[t] / (tokens[t] + norm) for t in set(query) if tokens.get(t)
        )


@dataclass
class _Documents:
    """Tokens of the documents of one scope (a world's base, a session's overlay)."""

    version: int = 0
    tokens: dict[uuid.UUID, list[str]] = field(default_factory=dict)

    def apply(self, rows: Sequence[EntityVector]) -> bool:
        fresh = [row for row in rows if row.version > self.version]
        if not fresh:
            return False
        texts = tokenize([row.text for row in fresh if not row.is_deleted])
        live = iter(texts)
        for row in fresh:
            self.version = max(self.version, row.version)
            if row.is_deleted:
                self.tokens.pop(row.lore_entry_id, None)
            else:
                self.tokens[row.lore_entry_id] = next(live)
        return True


def _build(documents: dict[uuid.UUID, list[str]]) -> _Corpus:
    entry_ids = list(documents)
    corpus = _Corpus(entry_ids=entry_ids)
    if not entry_ids:
        return corpus
    token_lists = [documents[e] for e in entry_ids]
    for tokens in token_lists:
        corpus.df.update(set(tokens))
    corpus.avgdl = max(1.0, sum(len(t) for t in token_lists) / len(token_lists))
    index = bm25s.BM25(k1=K1, b=B)
    index.index(token_lists, show_progress=False)
    corpus.index = index
    return corpus


class _World:
    def __init__(self) -> None:
        self.documents = _Documents()
        self.corpus = _Corpus()
        self.built_version = -1
        self.building = False
        self.lock = threading.Lock()


class LexicalIndex:
    def __init__(self, *, max_sessions: int = 1024, background: bool = True) -> None:
        self.max_sessions = max_sessions
        self.background = background
        self._worlds: dict[uuid.UUID, _World] = {}
        self._sessions: OrderedDict[uuid.UUID, _Documents] = OrderedDict()
        self._lock = threading.Lock()

    # -- following the database ----------------------------------------------------------------
    def _rows(self, db: Session, version: int, *where: object) -> list[EntityVector]:
        query = (
            select(EntityVector)
            .where(EntityVector.part == DOCUMENT_PART, EntityVector.version > version, *where)  # type: ignore[arg-type]
            .order_by(EntityVector.version)
        )
        return list(db.scalars(query))

    def _world(self, db: Session, world_id: uuid.UUID) -> _Corpus:
        with self._lock:
            world = self._worlds.setdefault(world_id, _World())
        with world.lock:
            world.documents.apply(
                self._rows(
                    db,
                    world.documents.version,
                    EntityVector.world_id == world_id,
                    EntityVector.session_id.is_(None),
                )
            )
            if world.built_version == world.documents.version or world.building:
                return world.corpus
            snapshot = dict(world.documents.tokens)
            version = world.documents.version
            first = world.built_version < 0
            world.building = True
        if first or not self.background:
            self._rebuild(world, snapshot, version)
        else:
            threading.Thread(
                target=self._rebuild, args=(world, snapshot, version), daemon=True
            ).start()
        return world.corpus

    @staticmethod
    def _rebuild(world: _World, snapshot: dict[uuid.UUID, list[str]], version: int) -> None:
        try:
            corpus = _build(snapshot)
        except Exception:  # a failed rebuild leaves the previous index serving
            log.exception("could not rebuild a BM25 index; keeping the previous one")
            corpus = None
        with world.lock:
            if corpus is not None:
                world.corpus, world.built_version = corpus, version
            world.building = False

    def _overlay(self, db: Session, session_id: uuid.UUID) -> dict[uuid.UUID, list[str]]:
        with self._lock:
            documents = self._sessions.get(session_id)
            if documents is None:
                documents = self._sessions[session_id] = _Documents()
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(session_id)
        documents.apply(self._rows(db, documents.version, EntityVector.session_id == session_id))
        return dict(documents.tokens)

    # -- search --------------------------------------------------------------------------------
    def search(
        self,
        db: Session,
        world_id: uuid.UUID,
        session_id: uuid.UUID,
        queries: Sequence[tuple[str, float]],
        limit: int,
    ) -> list[tuple[uuid.UUID, float]]:
        """The ``limit`` best entities of the session's view for the weighted ``queries``
        (text, weight), by BM25; an entity with a note is scored on its composite document."""
        corpus = self._world(db, world_id)
        overlay = self._overlay(db, session_id)
        scores: dict[uuid.UUID, float] = {}
        tokenized = tokenize([text for text, _ in queries])
        for tokens, (_, weight) in zip(tokenized, queries, strict=True):
            known = [t for t in tokens if t in corpus.df]
            if corpus.index is not None and known:
                base = corpus.index.get_scores(known)
                for position in np.flatnonzero(base > 0):
                    entry_id = corpus.entry_ids[int(position)]
                    scores[entry_id] = scores.get(entry_id, 0.0) + weight * float(base[position])
        for entry_id in overlay:  # the overlay's document replaces the base one
            scores.pop(entry_id, None)
        for tokens, (_, weight) in zip(tokenized, queries, strict=True):
            for entry_id, document in overlay.items():
                score = corpus.score(Counter(document), len(document), tokens)
                if score > 0:
                    scores[entry_id] = scores.get(entry_id, 0.0) + weight * score
        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        return ranked[:limit]

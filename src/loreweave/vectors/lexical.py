"""BM25 over the search keys of a session's view (DESIGN §1.3), beside the vector search.

The texts are the rows of ``entity_vectors`` (the database's copy of every search key: the
composite document, the note alone, chunks), followed by version like the FAISS caches; an
entity scores by its best key, as in the vector search, so a short note stating the current
state is not drowned by the length of the whole document.  A world's base keys are one
``bm25s`` index (a sparse matrix: a query costs well under a millisecond at 10k documents),
rebuilt in the background when they change, the previous one serving meanwhile.  A session's
overlay keys (its notes, its created entries) are few: they are scored with the same formula and
the world's statistics, so both rank on one scale, and a session's keys replace its entity's
base keys.
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

log = logging.getLogger("loreweave.vectors")
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at DEBUG

K1, B = 1.5, 0.75  # bm25s's defaults ("lucene" scoring)
KEYS_PER_ENTITY = 4
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


@dataclass(frozen=True)
class _Key:
    entry_id: uuid.UUID
    tokens: list[str]
    counts: Counter[str]


@dataclass(frozen=True)
class _Row:
    """What BM25 needs of an ``entity_vectors`` row."""

    id: int
    entry_id: uuid.UUID
    version: int
    is_deleted: bool
    text: str


@dataclass
class _Keys:
    """The tokenised search keys of one scope (a world's base, a session's overlay), by row."""

    version: int = 0
    rows: dict[int, _Key] = field(default_factory=dict)

    def apply(self, rows: Sequence[_Row]) -> None:
        fresh = [row for row in rows if row.version > self.version]
        live = iter(tokenize([row.text for row in fresh if not row.is_deleted]))
        for row in fresh:
            self.version = max(self.version, row.version)
            if row.is_deleted:
                self.rows.pop(row.id, None)
            else:
                tokens = next(live)
                self.rows[row.id] = _Key(row.entry_id, tokens, Counter(tokens))


@dataclass
class _Corpus:
    """One world's base keys, indexed: immutable once built."""

    owners: list[uuid.UUID] = field(default_factory=list)  # the entity of each indexed key
    index: bm25s.BM25 | None = None
    df: Counter[str] = field(default_factory=Counter)
    avgdl: float = 1.0

    def idf(self, token: str) -> float:
        df, n = self.df.get(token, 0), len(self.owners)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def score(self, key: _Key, query: set[str]) -> float:
        """BM25 ("lucene") of one key outside the index, with this corpus's statistics."""
        counts = key.counts
        norm = K1 * (1 - B + B * len(key.tokens) / self.avgdl)
        return sum(self.idf(t) * counts[t] / (counts[t] + norm) for t in query & counts.keys())


def _build(keys: list[_Key]) -> _Corpus:
    corpus = _Corpus(owners=[k.entry_id for k in keys])
    if not keys:
        return corpus
    for key in keys:
        corpus.df.update(set(key.tokens))
    corpus.avgdl = max(1.0, sum(len(k.tokens) for k in keys) / len(keys))
    index = bm25s.BM25(k1=K1, b=B)
    index.index([k.tokens for k in keys], show_progress=False)
    corpus.index = index
    return corpus


class _World:
    def __init__(self) -> None:
        self.keys = _Keys()
        self.corpus = _Corpus()
        self.building = False
        self.lock = threading.Lock()


class LexicalIndex:
    """BM25 per world and per session; see the module's docstring.  A world of up to
    ``sync_keys`` keys is indexed again on the spot when it changes (~0.1 s); a larger one in
    the background, the searches meanwhile ranked by the previous index (at a process's first
    search: without BM25, by vectors and keywords only)."""

    def __init__(
        self, *, max_sessions: int = 1024, background: bool = True, sync_keys: int = 2000
    ) -> None:
        self.max_sessions = max_sessions
        self.background = background
        self.sync_keys = sync_keys
        self._worlds: dict[uuid.UUID, _World] = {}
        self._sessions: OrderedDict[uuid.UUID, _Keys] = OrderedDict()
        self._lock = threading.Lock()

    # -- following the database ----------------------------------------------------------------
    @staticmethod
    def _rows(db: Session, version: int, *where: object) -> list[_Row]:
        query = (
            select(
                EntityVector.id,
                EntityVector.lore_entry_id,
                EntityVector.version,
                EntityVector.is_deleted,
                EntityVector.text,
            )
            .where(EntityVector.version > version, *where)  # type: ignore[arg-type]
            .order_by(EntityVector.version)
        )
        return [_Row(*row) for row in db.execute(query)]

    def _world(self, db: Session, world_id: uuid.UUID) -> _Corpus:
        with self._lock:
            world = self._worlds.setdefault(world_id, _World())
        with world.lock:
            if world.building:
                return world.corpus
            rows = self._rows(
                db,
                world.keys.version,
                EntityVector.world_id == world_id,
                EntityVector.session_id.is_(None),
            )
            if not rows:
                return world.corpus
            world.building = True
        if len(world.keys.rows) + len(rows) <= self.sync_keys or not self.background:
            self._refresh(world, rows)
        else:
            threading.Thread(target=self._refresh, args=(world, rows), daemon=True).start()
        return world.corpus

    @staticmethod
    def _refresh(world: _World, rows: list[_Row]) -> None:
        """Apply ``rows`` and index the world's keys again (only one refresh runs at a time)."""
        try:
            world.keys.apply(rows)
            corpus: _Corpus | None = _build(list(world.keys.rows.values()))
        except Exception:  # a failed rebuild leaves the previous index serving
            log.exception("could not rebuild a BM25 index; keeping the previous one")
            corpus = None
        with world.lock:
            if corpus is not None:
                world.corpus = corpus
            world.building = False

    def _overlay(self, db: Session, session_id: uuid.UUID) -> list[_Key]:
        with self._lock:
            keys = self._sessions.get(session_id)
            if keys is None:
                keys = self._sessions[session_id] = _Keys()
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(session_id)
        keys.apply(self._rows(db, keys.version, EntityVector.session_id == session_id))
        return list(keys.rows.values())

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
        (text, weight): for each query an entity scores by its best key; weighted, summed."""
        corpus = self._world(db, world_id)
        overlay = self._overlay(db, session_id)
        overridden = {key.entry_id for key in overlay}
        scores: dict[uuid.UUID, float] = {}
        for tokens, (_, weight) in zip(
            tokenize([text for text, _ in queries]), queries, strict=True
        ):
            best: dict[uuid.UUID, float] = {}
            known = [t for t in tokens if t in corpus.df]
            if corpus.index is not None and known:
                base = corpus.index.get_scores(known)
                # only the best keys can rank: enough of them for ``limit`` entities beside the
                # overridden ones, each entity with several keys
                wanted = min(len(base), KEYS_PER_ENTITY * (limit + len(overridden)))
                top = np.argpartition(-base, wanted - 1)[:wanted]
                for position in top[base[top] > 0]:
                    entry_id = corpus.owners[int(position)]
                    if entry_id not in overridden:
                        best[entry_id] = max(best.get(entry_id, 0.0), float(base[position]))
            wanted_tokens = set(tokens)
            for key in overlay:
                score = corpus.score(key, wanted_tokens)
                if score > 0:
                    best[key.entry_id] = max(best.get(key.entry_id, 0.0), score)
            for entry_id, score in best.items():
                scores[entry_id] = scores.get(entry_id, 0.0) + weight * score
        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        return ranked[:limit]

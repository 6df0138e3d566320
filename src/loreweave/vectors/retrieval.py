"""What a turn retrieves (DESIGN §1.3): the one function behind a chat turn's prompt and the
search endpoint, so both always agree.

1. The query is the message and the last ``history_turns`` turns, each turn back weighing
   ``history_decay`` times the one after it.
2. Two rankings of the session's view: vectors (each entity by its best search key, both FAISS
   tiers) and BM25 over the documents; fused by reciprocal rank (weights and constant are
   settings).
3. Constant entries come first; then the entries whose keys the message (and the last
   ``scan_depth`` turns) name; then the fused ranking.  Disabled entries never appear.  Up to
   ``k`` entries besides the constant ones, within ``token_budget`` tokens of documents: one
   that does not fit is skipped (and reported) and the next one tried.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import select

from loreweave.config import RetrievalConfig
from loreweave.db.engine import Database
from loreweave.db.models import ChatSession, LoreEntry, NoteUpdateTask, SessionNote
from loreweave.db.repositories import is_visible
from loreweave.db.uow import UnitOfWork
from loreweave.llm.types import Embedder, Matrix, estimate_tokens
from loreweave.memory import observer as observers
from loreweave.memory.composite import observer_text, session_view
from loreweave.memory.observer import Observer
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.keywords import KeywordIndex
from loreweave.vectors.lexical import LexicalIndex
from loreweave.vectors.service import CompositeVectorService

log = logging.getLogger("loreweave.vectors")

Why = Literal["constant", "keyword", "vector", "bm25"]
CANDIDATES_PER_SLOT = 4  # each ranking offers this many entities per slot of k
EMBEDDING_CACHE = 4096  # messages' vectors kept for the next turns' queries


@dataclass(frozen=True)
class RetrievedEntry:
    lore_entry_id: uuid.UUID
    title: str
    entity_type: str
    text: str  # the composite document, as this session sees it
    score: float | None  # the fused score; None for a constant entry
    via: Why
    tokens: int
    known_to: str | None = None  # the text is what this observer knows of it (DESIGN §1.6)


@dataclass(frozen=True)
class Retrieval:
    entries: list[RetrievedEntry]
    skipped: list[RetrievedEntry]  # ranked, but over the token budget
    tokens: int
    observer: Observer | None = None  # whose view (None: the narrator's)


@dataclass(frozen=True)
class Query:
    """What is searched for, the message first, then earlier turns, latest first, each with its
    weight.  BM25 reads whole turns (``texts``); the vector is the weighted sum of the messages'
    vectors (``messages``), each embedded once, when it was the message of its turn (a reply
    is never embedded: a turn's overhead holds one embedding)."""

    texts: list[str]
    messages: list[str]
    weights: list[float]
    scan: list[str]  # the texts keyword activation scans


@dataclass(frozen=True)
class Embedded:
    """A query's vector, with the messages and weights it was made of."""

    messages: list[str]
    weights: list[float]
    vector: Matrix

    def fits(self, query: Query) -> bool:
        """Whether this is ``query``'s vector (its messages, equally weighted)."""
        return (query.messages, query.weights) == (self.messages, self.weights)


def turn_text(user_message: str, assistant_message: str) -> str:
    """An earlier turn as BM25 and keyword activation read it."""
    return f"{user_message}\n{assistant_message}"


# SillyTavern's generation types, as World Info's ``triggers`` name them
Trigger = Literal["normal", "continue", "impersonate", "swipe", "regenerate", "quiet"]


def triggered(entry: LoreEntry, trigger: Trigger | None) -> bool:
    """Whether the entry may go into a generation of this kind: World Info's ``triggers``
    (none: every kind); a regenerate is SillyTavern's swipe or regenerate alike."""
    kinds = entry.world_info("triggers")
    if trigger is None or not isinstance(kinds, list) or not kinds:
        return True
    if trigger in ("swipe", "regenerate"):
        return "swipe" in kinds or "regenerate" in kinds
    return trigger in kinds


class Retriever:
    def __init__(
        self,
        database: Database,
        embedder: Embedder,
        cache: IndexCache,
        vectors: CompositeVectorService,
        config: RetrievalConfig | None = None,
    ) -> None:
        self.database = database
        self.embedder = embedder
        self.cache = cache
        self.vectors = vectors
        self.config = config or RetrievalConfig()
        self.keywords = KeywordIndex() if self.config.keywords else None
        self.lexical = LexicalIndex() if self.config.bm25 else None
        self._embedded: OrderedDict[str, Matrix] = OrderedDict()
        self._embedded_lock = threading.Lock()

    # -- the query -----------------------------------------------------------------------------
    def query(
        self,
        uow: UnitOfWork,
        session_id: uuid.UUID,
        message: str,
        before: int | None,
        history: Sequence[tuple[str, str]] | None = None,
    ) -> Query:
        """The query for ``message``; the earlier turns are the session's (before turn
        ``before``), or ``history`` (:meth:`query_of`) when an app that keeps its own
        transcript gives them."""
        depth = self.depth
        if history is None:
            stored = uow.turns.recent(session_id, depth, before=before) if depth else []
            history = [(t.user_message, t.assistant_message) for t in stored]
        return self.query_of(message, history)

    def query_of(self, message: str, history: Sequence[tuple[str, str]]) -> Query:
        """The query for ``message`` after ``history``: (user message, reply) pairs, oldest
        first (no database read)."""
        config = self.config
        depth = self.depth
        turns = list(reversed(history[-depth:])) if depth else []  # latest first
        recent = turns[: config.history_turns]
        weights = [1.0] + [config.history_decay ** (i + 1) for i in range(len(recent))]
        texts = [message] + [turn_text(user, reply) for user, reply in recent]
        messages = [message] + [user or reply for user, reply in recent]
        kept = [i for i, w in enumerate(weights) if w > 0 and messages[i].strip()]
        return Query(
            [texts[i] for i in kept],
            [messages[i] for i in kept],
            [weights[i] for i in kept],
            [message] + [turn_text(user, reply) for user, reply in turns[: config.scan_depth]],
        )

    def embed(self, query: Query) -> Embedded:
        """The query's vector: the weighted sum of the messages' vectors, normalised; earlier
        messages' vectors are kept from their own turn (another process embeds them again, in
        the same call).  A provider call: made outside any transaction."""
        return Embedded(query.messages, query.weights, self._vector(query))

    def _vector(self, query: Query) -> Matrix:
        with self._embedded_lock:
            known = {t: self._embedded[t] for t in query.messages if t in self._embedded}
        missing = list(dict.fromkeys(t for t in query.messages if t not in known))
        fresh = dict(zip(missing, self.embedder.embed(missing), strict=True)) if missing else {}
        with self._embedded_lock:
            self._embedded.update(fresh)
            while len(self._embedded) > EMBEDDING_CACHE:
                self._embedded.popitem(last=False)
        vectors = {**known, **fresh}
        combined = np.zeros(self.embedder.dim, dtype=np.float32)
        for text, weight in zip(query.messages, query.weights, strict=True):
            combined += weight * np.asarray(vectors[text], dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(combined))
        return (combined / norm if norm > 0 else combined).reshape(1, -1)

    # -- retrieval -----------------------------------------------------------------------------
    def retrieve(
        self,
        session_id: uuid.UUID,
        message: str,
        *,
        k: int | None = None,
        token_budget: int | None = None,
        before: int | None = None,
        history: Sequence[tuple[str, str]] | None = None,
        trigger: Trigger | None = None,
        observer: str | None = None,
        inferred: bool = False,
    ) -> Retrieval:
        """What a turn of ``session_id`` with ``message`` (as turn ``before``, by default a new
        last turn; ``history``: see :meth:`query`) hands the chat model.  Never another
        session's notes or created entries.  ``trigger``: the kind of generation (World Info's
        ``triggers`` limit an entry to some); World Info's ``ignoreBudget`` entries go in over
        the token budget.  ``observer`` (a Character's title, alias or id, or USER): the
        entities as that character knows them (DESIGN §1.6; a note only where it knows every
        event of its entity); a name that is no such character is an error, unless it was
        ``inferred`` from a prompt (then the narrator's view)."""
        if history is None:
            with self.database.uow(read_only=True) as uow:
                query = self.query(uow, uow.sessions.require(session_id).id, message, before)
        else:
            query = self.query_of(message, history)
        # outside any transaction: a provider's embedding call holds no database connection
        embedded = self.embed(query)
        with self.database.uow(read_only=True) as uow:
            return self.retrieve_in(
                uow,
                session_id,
                query,
                embedded,
                k=k,
                token_budget=token_budget,
                trigger=trigger,
                observer=observer,
                inferred=inferred,
            )

    def retrieve_in(
        self,
        uow: UnitOfWork,
        session_id: uuid.UUID,
        query: Query,
        embedded: Embedded,
        *,
        k: int | None = None,
        token_budget: int | None = None,
        trigger: Trigger | None = None,
        observer: str | None = None,
        inferred: bool = False,
    ) -> Retrieval:
        """:meth:`retrieve` in the caller's unit of work, for a query embedded before it was
        opened (:meth:`embed`; ``embedded`` must fit ``query``)."""
        if not embedded.fits(query):
            raise ValueError("the vector was embedded for another query")
        config = self.config
        k = config.k if k is None else k
        budget = config.token_budget if token_budget is None else token_budget
        pool = max(CANDIDATES_PER_SLOT * k, 20)
        session = uow.sessions.require(session_id)
        viewer = observers.resolve(uow, session, observer, strict=not inferred)
        db = uow.session
        hits = self.cache.search(db, session.world_id, session.id, embedded.vector, pool)
        lexical = (
            self.lexical.search(
                db,
                session.world_id,
                session.id,
                list(zip(query.texts, query.weights, strict=True)),
                pool,
            )
            if self.lexical
            else []
        )
        fused = self._fuse([h.key.lore_entry_id for h in hits], [e for e, _ in lexical])
        activation = self.keywords.activate(db, session, query.scan) if self.keywords else None
        constant = activation.constant if activation else []
        named = activation.keyword if activation else []
        order: list[tuple[uuid.UUID, Why]] = [(e, "constant") for e in constant]
        order += [(e, "keyword") for e in named]
        order += [(e, why) for e, (_, why) in fused.items()]
        return self._select(uow, session, order, fused, k, budget, trigger, viewer)

    @property
    def depth(self) -> int:
        """How many earlier turns a query reads."""
        return max(self.config.history_turns, self.config.scan_depth)

    def search(
        self,
        session_id: uuid.UUID,
        query: str,
        k: int | None = None,
        *,
        before: int | None = None,
        history: Sequence[tuple[str, str]] | None = None,
        observer: str | None = None,
    ) -> list[RetrievedEntry]:
        """The entries of :meth:`retrieve`, in the order the prompt gives them."""
        return self.retrieve(
            session_id, query, k=k, before=before, history=history, observer=observer
        ).entries

    def _fuse(
        self, by_vector: Sequence[uuid.UUID], by_bm25: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[float, Why]]:
        """Reciprocal rank fusion; each entity says which ranking gave it more."""
        config = self.config
        parts: dict[uuid.UUID, dict[Why, float]] = {}
        for ranking, weight, why in (
            (by_vector, config.vector_weight, "vector"),
            (by_bm25, config.bm25_weight, "bm25"),
        ):
            if weight <= 0:
                continue  # a ranking weighted 0 is off: it offers no candidates either
            for rank, entry_id in enumerate(ranking, start=1):
                parts.setdefault(entry_id, {})[why] = weight / (config.rrf_k + rank)  # type: ignore[index]
        fused = {
            entry_id: (sum(scores.values()), max(scores, key=scores.__getitem__))
            for entry_id, scores in parts.items()
        }
        return dict(sorted(fused.items(), key=lambda item: item[1][0], reverse=True))

    def _select(
        self,
        uow: UnitOfWork,
        session: ChatSession,
        order: list[tuple[uuid.UUID, Why]],
        fused: dict[uuid.UUID, tuple[float, Why]],
        k: int,
        budget: int,
        trigger: Trigger | None = None,
        viewer: Observer | None = None,
    ) -> Retrieval:
        ids = list(dict.fromkeys(e for e, _ in order))
        entries: dict[uuid.UUID, LoreEntry | None] = {}
        notes: dict[uuid.UUID, SessionNote] = {}
        events: dict[uuid.UUID, list[NoteUpdateTask]] = {}
        met: dict[uuid.UUID, list[str]] = {}

        def load(entry_id: uuid.UUID) -> LoreEntry | None:
            """The entry if the session may use it; candidates are read a few at a time, in
            order, since most of the pool is never needed."""
            if entry_id not in entries:
                at = ids.index(entry_id)
                batch = [e for e in ids[at : at + k + 4] if e not in entries]
                found = {
                    e.id: e
                    for e in uow.session.scalars(select(LoreEntry).where(LoreEntry.id.in_(batch)))
                }
                notes.update(
                    (n.lore_entry_id, n)
                    for n in uow.session.scalars(
                        select(SessionNote).where(
                            SessionNote.session_id == session.id,
                            SessionNote.lore_entry_id.in_(batch),
                        )
                    )
                )
                if viewer is not None:
                    events.update(observers.events_by_entry(uow, session.id, batch))
                    met.update(observers.met_by(uow, session.id, batch))
                for e in batch:
                    entry = found.get(e)
                    usable = (
                        entry is not None
                        and is_visible(entry, session)
                        and entry.enabled
                        and triggered(entry, trigger)
                        and (
                            viewer is None
                            or observers.sees(viewer, entry, session.id, met.get(e, []))
                        )
                    )
                    entries[e] = entry if usable else None
            return entries[entry_id]

        chosen: list[RetrievedEntry] = []
        skipped: list[RetrievedEntry] = []
        seen: set[uuid.UUID] = set()
        used = ranked = 0
        for entry_id, why in order:
            if entry_id in seen:
                continue
            if why != "constant" and ranked >= k:
                break
            seen.add(entry_id)
            entry = load(entry_id)
            if entry is None:
                continue
            text, known_to = self._text(entry, session, notes, events, viewer)
            tokens = estimate_tokens(text)
            score = fused[entry_id][0] if entry_id in fused else None
            found = RetrievedEntry(
                entry.id, entry.title, entry.entity_type, text, score, why, tokens, known_to
            )
            if used + tokens > budget and entry.world_info("ignoreBudget") is not True:
                skipped.append(found)
                continue
            used += tokens
            chosen.append(found)
            ranked += why != "constant"
        return Retrieval(chosen, skipped, used, viewer)

    def _text(
        self,
        entry: LoreEntry,
        session: ChatSession,
        notes: dict[uuid.UUID, SessionNote],
        events: dict[uuid.UUID, list[NoteUpdateTask]],
        viewer: Observer | None,
    ) -> tuple[str, str | None]:
        """The entity as the prompt gives it: the session's composite document, or what the
        observer knows of it (the document too when the observer knows every event of the
        entity: then its note holds nothing the observer does not know), and whose view it is."""
        config = self.vectors.config
        of_entry = events.get(entry.id, [])
        if viewer is None or observers.knows_all(viewer, of_entry):
            return session_view(entry, notes.get(entry.id), session.id, config).text, None
        known = observers.known_events(viewer, of_entry, self.config.observer_event_chars)
        return observer_text(entry.content, known, viewer.name, config), viewer.name

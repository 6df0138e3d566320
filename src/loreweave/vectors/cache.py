"""FAISS caches of the database's vector rows, per process (DESIGN §2).

A world tier holds the base documents of a world; a small overlay per session holds its composite
documents.  Before a search, each tier applies the rows newer than its version (one indexed
query).  World tiers are persisted under the index directory and reloaded; a missing or corrupt
file is rebuilt from the database.  Overlays live in memory, the least recently used dropped
beyond ``max_overlays``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from loreweave.db.models import EntityVector
from loreweave.llm.types import Matrix
from loreweave.vectors.tier import CorruptIndex, TierHit, VectorTier

log = logging.getLogger("loreweave.vectors")

PERSIST_EVERY = 30.0  # seconds between saves of a world tier that changed
# rows fetched per entity wanted: an entity has several search keys (document, note, chunks)
KEYS_PER_ENTITY = 4


class IndexCache:
    def __init__(
        self,
        *,
        dim: int,
        model: str,
        index_dir: Path | None = None,
        max_overlays: int = 1024,
    ) -> None:
        self.dim = dim
        self.model = model
        self.index_dir = index_dir
        self.max_overlays = max_overlays
        self._worlds: dict[uuid.UUID, VectorTier] = {}
        self._overlays: OrderedDict[uuid.UUID, VectorTier] = OrderedDict()
        self._saved_at: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def _path(self, world_id: uuid.UUID) -> Path | None:
        return self.index_dir / f"world-{world_id}.faiss" if self.index_dir else None

    def _load_world(self, world_id: uuid.UUID) -> VectorTier:
        path = self._path(world_id)
        if path is not None and path.exists():
            try:
                return VectorTier.load(path, self.dim, self.model)
            except CorruptIndex as exc:
                log.warning("rebuilding the index of world %s from the database: %s", world_id, exc)
        return VectorTier(self.dim, self.model)

    def world_tier(self, world_id: uuid.UUID) -> VectorTier:
        with self._lock:
            tier = self._worlds.get(world_id)
            if tier is None:
                tier = self._worlds[world_id] = self._load_world(world_id)
            return tier

    def overlay_tier(self, session_id: uuid.UUID) -> VectorTier:
        with self._lock:
            tier = self._overlays.get(session_id)
            if tier is None:
                tier = self._overlays[session_id] = VectorTier(self.dim, self.model)
                while len(self._overlays) > self.max_overlays:
                    self._overlays.popitem(last=False)
            else:
                self._overlays.move_to_end(session_id)
            return tier

    # -- sync ----------------------------------------------------------------------------------
    def sync_world(self, db: Session, world_id: uuid.UUID) -> VectorTier:
        tier = self.world_tier(world_id)
        query = (
            select(EntityVector)
            .where(
                EntityVector.world_id == world_id,
                EntityVector.session_id.is_(None),
                EntityVector.version > tier.version,
            )
            .order_by(EntityVector.version)
        )
        if tier.apply(list(db.scalars(query))):
            self._maybe_persist(world_id, tier)
        return tier

    def sync_overlay(self, db: Session, session_id: uuid.UUID) -> VectorTier:
        tier = self.overlay_tier(session_id)
        query = (
            select(EntityVector)
            .where(EntityVector.session_id == session_id, EntityVector.version > tier.version)
            .order_by(EntityVector.version)
        )
        tier.apply(list(db.scalars(query)))
        return tier

    def search(
        self, db: Session, world_id: uuid.UUID, session_id: uuid.UUID, query: Matrix, k: int
    ) -> list[TierHit]:
        """The ``k`` best entities of a session's view, each by its best search key: its overlay
        first, base documents of entries the overlay does not override."""
        world = self.sync_world(db, world_id)
        overlay = self.sync_overlay(db, session_id)
        overridden = overlay.entry_ids()
        rows = KEYS_PER_ENTITY * k
        hits = overlay.search(query, rows)
        base = world.search(query, rows + KEYS_PER_ENTITY * len(overridden))
        hits += [hit for hit in base if hit.key.lore_entry_id not in overridden]
        best: dict[uuid.UUID, TierHit] = {}
        for hit in sorted(hits, key=lambda hit: hit.score, reverse=True):
            best.setdefault(hit.key.lore_entry_id, hit)
        return list(best.values())[:k]

    # -- persistence ---------------------------------------------------------------------------
    def _maybe_persist(self, world_id: uuid.UUID, tier: VectorTier) -> None:
        path = self._path(world_id)
        if path is None:
            return
        now = time.monotonic()
        if now - self._saved_at.get(world_id, 0.0) >= PERSIST_EVERY:
            self._saved_at[world_id] = now  # a failure is tried again a period later
            self._save(tier, path)

    def persist(self) -> None:
        """Save every world tier now (at shutdown, after a rebuild)."""
        with self._lock:
            worlds = list(self._worlds.items())
        for world_id, tier in worlds:
            path = self._path(world_id)
            if path is not None:
                self._save(tier, path)
                self._saved_at[world_id] = time.monotonic()

    @staticmethod
    def _save(tier: VectorTier, path: Path) -> None:
        """The index is a cache of the database: failing to save it never fails a turn."""
        try:
            tier.save(path)
        except OSError as exc:
            log.warning("could not save the index cache %s (%s); trying again later", path, exc)

    def drop(self) -> None:
        """Forget every cached tier and every persisted file (of any world, loaded here or
        not): the next search rebuilds from the database."""
        with self._lock:
            drop_persisted(self.index_dir)
            self._worlds.clear()
            self._overlays.clear()

    def memory_bytes(self) -> int:
        with self._lock:
            tiers = list(self._worlds.values()) + list(self._overlays.values())
        return sum(tier.memory_bytes() for tier in tiers)


def drop_persisted(index_dir: Path | None) -> int:
    """Delete the world caches persisted in ``index_dir`` (what ``loreweave index rebuild``
    leaves to be rebuilt from the database); returns how many files went."""
    if index_dir is None or not index_dir.is_dir():
        return 0
    files = [*index_dir.glob("world-*.faiss"), *index_dir.glob("world-*.json")]
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)

"""Lorebook-style keyword activation: an entry whose title or alias appears in the message is
included whatever the vector search says.  Names are matched as whole words, case-insensitively,
by looking the message's word n-grams up in a per-world table of names."""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loreweave.db.models import LoreEntry

_WORD = re.compile(r"[\w']+")
MAX_NAME_WORDS = 5
MIN_NAME_LENGTH = 3


def normalise_name(name: str) -> str:
    return " ".join(_WORD.findall(name.lower()))


def ngrams(text: str, longest: int = MAX_NAME_WORDS) -> set[str]:
    words = _WORD.findall(text.lower())
    return {
        " ".join(words[start : start + size])
        for size in range(1, longest + 1)
        for start in range(len(words) - size + 1)
    }


@dataclass
class _WorldNames:
    stamp: tuple[int, object]
    names: dict[str, list[tuple[uuid.UUID, uuid.UUID | None]]]
    checked_at: float


class KeywordIndex:
    """Per-world name tables, rebuilt when the world's entries change.  The change check (a count
    and a max over the world's entries) runs at most every ``refresh_seconds``: at 100k entries
    it costs ~30 ms, too much for every turn."""

    def __init__(self, refresh_seconds: float = 2.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._worlds: dict[uuid.UUID, _WorldNames] = {}
        self._lock = threading.Lock()

    def _names(self, db: Session, world_id: uuid.UUID) -> _WorldNames:
        with self._lock:
            cached = self._worlds.get(world_id)
        now = time.monotonic()
        if cached is not None and now - cached.checked_at < self.refresh_seconds:
            return cached
        stamp_row = db.execute(
            select(func.count(LoreEntry.id), func.max(LoreEntry.updated_at)).where(
                LoreEntry.world_id == world_id
            )
        ).one()
        stamp = (int(stamp_row[0]), stamp_row[1])
        if cached is not None and cached.stamp == stamp:
            cached.checked_at = now
            return cached
        names: dict[str, list[tuple[uuid.UUID, uuid.UUID | None]]] = {}
        rows = db.execute(
            select(
                LoreEntry.id, LoreEntry.title, LoreEntry.aliases, LoreEntry.origin_session_id
            ).where(LoreEntry.world_id == world_id)
        )
        for entry_id, title, aliases, origin in rows:
            for name in {normalise_name(n) for n in [title, *(aliases or [])]}:
                if len(name) >= MIN_NAME_LENGTH:
                    names.setdefault(name, []).append((entry_id, origin))
        built = _WorldNames(stamp, names, now)
        with self._lock:
            self._worlds[world_id] = built
        return built

    def matches(
        self, db: Session, world_id: uuid.UUID, session_id: uuid.UUID, message: str
    ) -> list[uuid.UUID]:
        """Entries visible to the session named in ``message``, in order of first mention."""
        table = self._names(db, world_id).names
        found: list[uuid.UUID] = []
        for gram in sorted(ngrams(message), key=message.lower().find):
            for entry_id, origin in table.get(gram, ()):
                if origin in (None, session_id) and entry_id not in found:
                    found.append(entry_id)
        return found

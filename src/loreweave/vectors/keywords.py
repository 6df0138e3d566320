"""Lorebook-style keyword activation, with SillyTavern World Info's semantics.

An entry's title and aliases are its keys: an entry whose key appears in the scanned text (the
message and the last few turns) is activated whatever the vector search says.  Keys match as
whole words, case-insensitively; punctuation is ignored and a possessive is its noun ("Korrin's
leg" names "Korrin").  When an entry has secondary keys, a key match counts only if they agree,
by the entry's logic: ``and_any`` (one of them appears), ``and_all`` (all of them), ``not_any``
(none of them), ``not_all`` (not all of them).  A ``constant`` entry is always activated; a
disabled one never.  Matching looks the text's word n-grams up in a per-world table of keys.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from loreweave.db.models import ChatSession, LoreEntry
from loreweave.db.repositories import can_see
from loreweave.memory.names import normalise_name, words

MAX_NAME_WORDS = 5
MIN_NAME_LENGTH = 3


def ngrams(text: str, longest: int = MAX_NAME_WORDS) -> dict[str, int]:
    """Every run of up to ``longest`` words of ``text``, with where it first starts."""
    found: dict[str, int] = {}
    tokens = words(text)
    for start in range(len(tokens)):
        for size in range(1, min(longest, len(tokens) - start) + 1):
            found.setdefault(" ".join(tokens[start : start + size]), start)
    return found


def secondary_agree(logic: str, present: Sequence[bool]) -> bool:
    """SillyTavern's ``selectiveLogic`` over which secondary keys the text holds."""
    if not present:
        return True
    if logic == "and_all":
        return all(present)
    if logic == "not_any":
        return not any(present)
    if logic == "not_all":
        return not all(present)
    return any(present)  # and_any


@dataclass(frozen=True)
class _Rule:
    origin: uuid.UUID | None
    proposed: bool
    secondary: tuple[str, ...]
    logic: str
    constant: bool
    enabled: bool


@dataclass
class _World:
    stamp: tuple[int, object]
    checked_at: float
    names: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    rules: dict[uuid.UUID, _Rule] = field(default_factory=dict)
    constants: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class Activation:
    constant: list[uuid.UUID]
    keyword: list[uuid.UUID]  # in order of first mention


class KeywordIndex:
    """Per-world key tables, rebuilt when the world's entries change.  The change check (a count
    and a max over the world's entries) runs at most every ``refresh_seconds``: at 100k entries
    it costs ~30 ms, too much for every turn."""

    def __init__(self, refresh_seconds: float = 2.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._worlds: dict[uuid.UUID, _World] = {}
        self._lock = threading.Lock()

    def _table(self, db: Session, world_id: uuid.UUID) -> _World:
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
        built = _World(stamp, now)
        rows = db.execute(
            select(
                LoreEntry.id,
                LoreEntry.title,
                LoreEntry.aliases,
                LoreEntry.origin_session_id,
                LoreEntry.proposed,
                LoreEntry.secondary_keys,
                LoreEntry.key_logic,
                LoreEntry.constant,
                LoreEntry.enabled,
            ).where(LoreEntry.world_id == world_id)
        )
        for entry_id, title, aliases, origin, proposed, secondary, logic, constant, enabled in rows:
            rule = _Rule(
                origin,
                bool(proposed),
                tuple(n for n in (normalise_name(s) for s in secondary or []) if n),
                logic,
                bool(constant),
                bool(enabled),
            )
            built.rules[entry_id] = rule
            if rule.constant and rule.enabled:
                built.constants.append(entry_id)
            for name in {normalise_name(n) for n in [title, *(aliases or [])]}:
                if len(name) >= MIN_NAME_LENGTH:
                    built.names.setdefault(name, []).append(entry_id)
        with self._lock:
            self._worlds[world_id] = built
        return built

    def activate(self, db: Session, session: ChatSession, texts: Sequence[str]) -> Activation:
        """The entries visible to ``session`` that are constant, or that ``texts`` (the message
        first, then earlier turns) name, subject to their secondary keys."""
        table = self._table(db, session.world_id)
        grams: dict[str, tuple[int, int]] = {}
        for which, text in enumerate(texts):
            for gram, start in ngrams(text).items():
                grams.setdefault(gram, (which, start))
        found: list[uuid.UUID] = []
        for gram in sorted(grams.keys() & table.names.keys(), key=grams.__getitem__):
            for entry_id in table.names[gram]:
                rule = table.rules[entry_id]
                if entry_id in found or not rule.enabled:
                    continue
                if not can_see(session, session.world_id, rule.origin, rule.proposed):
                    continue
                if secondary_agree(rule.logic, [key in grams for key in rule.secondary]):
                    found.append(entry_id)
        constant = [
            e
            for e in table.constants
            if can_see(session, session.world_id, table.rules[e].origin, table.rules[e].proposed)
        ]
        return Activation(constant, [e for e in found if e not in constant])

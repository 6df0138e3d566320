"""Who knows what (DESIGN §1.6): an observer's view of the world.

Notes are the narrator's omniscient view.  Every event (note update task) also carries
``known_by``, the Character entries and ``USER`` (the persona of the person playing) who
witnessed or learned it; empty is public.  For an observer O, the view of an entity is its base
lore plus the events of it that O knows, in turn order, the newest kept within a budget
(:func:`loreweave.memory.composite.observer_text` renders it); a session note, the narrator's,
appears in it only where O knows every event of that entity (then it holds nothing O does not
know), and building it makes no LLM call.  An entity the session created is in
O's view only if O met it (its creation's ``known_by``, empty: everyone present).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import String, cast, func, select

from loreweave.db.models import (
    USER,
    ChatSession,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    TaskStatus,
)
from loreweave.db.repositories import is_visible, visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.errors import InvalidInput
from loreweave.memory import review

CHARACTER = "character"
USER_NAMES = ("user", "{{user}}")  # how a caller names the persona of the person playing


def name_key(name: str) -> str:
    """How an observer's or a witness's name is compared: any case, any spacing."""
    return " ".join(name.split()).casefold()


def is_user(name: str) -> bool:
    """Whether ``name`` names the persona of the person playing."""
    return name_key(name) in (*USER_NAMES, USER.casefold())


@dataclass(frozen=True)
class Observer:
    """Whose view: ``witness`` is how ``known_by`` names it (an entry id, or ``USER``)."""

    witness: str
    name: str

    def knows(self, known_by: Sequence[str]) -> bool:
        """Whether this observer knows what ``known_by`` witnessed (empty: everyone)."""
        return not known_by or self.witness in known_by


def _character(uow: UnitOfWork, session: ChatSession, value: str) -> LoreEntry | None:
    """The Character ``value`` names (its id, its title or an alias, any case), read by an
    indexed-size query: a proxy asks on every request."""
    try:
        entry = uow.entries.get(uuid.UUID(value))
    except ValueError:
        entry = None
    if entry is None:
        wanted = name_key(value)
        characters = (
            select(LoreEntry)
            .where(visible_in(session), func.lower(LoreEntry.entity_type) == CHARACTER)
            .order_by(LoreEntry.created_at, LoreEntry.id)
        )
        entry = uow.session.scalars(characters.where(func.lower(LoreEntry.title) == wanted)).first()
        if entry is None:  # an alias: those whose aliases hold the text, then exactly
            near = characters.where(
                cast(LoreEntry.aliases, String).icontains(wanted, autoescape=True)
            )
            candidates = uow.session.scalars(near if wanted.isascii() else characters).all()
            entry = next(
                (
                    e
                    for e in candidates
                    if any(name_key(alias) == wanted for alias in e.aliases or [])
                ),
                None,
            )
    if entry is None or not is_visible(entry, session):
        return None
    return entry if entry.entity_type.casefold() == CHARACTER else None


def resolve(
    uow: UnitOfWork, session: ChatSession, value: str | None, *, strict: bool = True
) -> Observer | None:
    """The observer ``value`` names: ``USER`` (or "user"), a Character entry's id, or its title
    or an alias (any case) among the entries the session sees.  None: the narrator.  A name
    that is no such character is an :class:`InvalidInput` (``strict``) or the narrator."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if is_user(value):
        return Observer(USER, "User")
    entry = _character(uow, session, value)
    if entry is not None:
        return Observer(str(entry.id), entry.title)
    if strict:
        raise InvalidInput(
            f"observer {value!r} is no Character this session can see "
            "(give a character's title, alias or id, or USER)"
        )
    return None


def events_by_entry(
    uow: UnitOfWork, session_id: uuid.UUID, entry_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[NoteUpdateTask]]:
    """The session's events of these entries in turn order (a person's skip, and a change
    waiting for review, excluded): what
    views are built from, whether or not a rewrite has folded them into the note yet."""
    found: dict[uuid.UUID, list[NoteUpdateTask]] = {}
    ids = list(entry_ids)
    if not ids:
        return found
    rows = uow.session.scalars(
        select(NoteUpdateTask)
        .where(
            NoteUpdateTask.session_id == session_id,
            NoteUpdateTask.lore_entry_id.in_(ids),
            NoteUpdateTask.status != TaskStatus.SKIPPED.value,
        )
        .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at, NoteUpdateTask.id)
    )
    proposed = review.proposed_events(uow, session_id)
    for row in rows:
        if row.id not in proposed:  # waiting for a person's review: not in the memory yet
            found.setdefault(row.lore_entry_id, []).append(row)
    return found


def met_by(
    uow: UnitOfWork, session_id: uuid.UUID, entry_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Who met each entry the session created (its creation's ``known_by``)."""
    ids = list(entry_ids)
    if not ids:
        return {}
    rows = uow.session.execute(
        select(EntityCreationTask.created_lore_entry_id, EntityCreationTask.known_by).where(
            EntityCreationTask.session_id == session_id,
            EntityCreationTask.created_lore_entry_id.in_(ids),
            EntityCreationTask.outcome == "created",
        )
    )
    return {entry_id: list(known_by or []) for entry_id, known_by in rows if entry_id}


def sees(observer: Observer, entry: LoreEntry, session_id: uuid.UUID, met: Sequence[str]) -> bool:
    """Whether ``entry`` is in the observer's view at all: an entry the session created only
    if the observer met it (or everyone did); the observer always knows itself."""
    if str(entry.id) == observer.witness:
        return True
    if entry.origin_session_id != session_id:
        return True
    return observer.knows(met)


def knows_all(observer: Observer, events: Sequence[NoteUpdateTask]) -> bool:
    """Whether the observer knows every event of an entity: then the entity's session note,
    folded from those events and its lore, holds nothing the observer does not know."""
    return all(observer.knows(e.known_by or []) for e in events)


def known_events(
    observer: Observer, events: Sequence[NoteUpdateTask], budget_chars: int
) -> list[str]:
    """The summaries of ``events`` the observer knows, oldest first, the newest kept within
    ``budget_chars`` (always at least the newest one)."""
    known = [e.update_summary for e in events if observer.knows(e.known_by or [])]
    kept: list[str] = []
    used = 0
    for summary in reversed(known):
        if kept and used + len(summary) > budget_chars:
            break
        kept.append(summary)
        used += len(summary)
    return list(reversed(kept))


@dataclass(frozen=True)
class KnownEvent:
    turn_index: int
    summary: str
    status: str
    known_by: list[str]  # witnesses by name ("User" for USER); empty: public


@dataclass(frozen=True)
class Knowledge:
    """What an observer (None: the narrator) knows of one entity, event by event."""

    lore_entry_id: uuid.UUID
    title: str
    events: list[KnownEvent]


def knowledge(uow: UnitOfWork, session: ChatSession, viewer: Observer | None) -> list[Knowledge]:
    """Every entity of the session that has events, with the events ``viewer`` knows (all of
    them for the narrator) and who witnessed each: what the UI shows as someone's view."""
    entries = {e.id: e for e in uow.session.scalars(select(LoreEntry).where(visible_in(session)))}
    by_entry = events_by_entry(uow, session.id, entries)
    met = met_by(uow, session.id, entries) if viewer is not None else {}

    def name(witness: str) -> str:
        if witness == USER:
            return "User"
        entry = entries.get(uuid.UUID(witness))
        return entry.title if entry is not None else "(gone)"

    found = []
    for entry_id, rows in by_entry.items():
        entry = entries[entry_id]
        if viewer is not None and not sees(viewer, entry, session.id, met.get(entry_id, [])):
            continue
        known = [
            KnownEvent(r.turn_index, r.update_summary, r.status, [name(w) for w in r.known_by])
            for r in rows
            if viewer is None or viewer.knows(r.known_by or [])
        ]
        if known:
            found.append(Knowledge(entry_id, entry.title, known))
    return sorted(found, key=lambda k: (k.events[0].turn_index, k.title))


def characters(uow: UnitOfWork, session: ChatSession) -> list[LoreEntry]:
    """The Character entries the session sees: who may observe."""
    return list(
        uow.session.scalars(
            select(LoreEntry)
            .where(visible_in(session), func.lower(LoreEntry.entity_type) == CHARACTER)
            .order_by(LoreEntry.title, LoreEntry.id)
        )
    )

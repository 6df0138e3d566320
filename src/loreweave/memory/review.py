"""Review before it counts (DESIGN §1.7): in a world or session set to ``review: "manual"``, the
rewrite of a note is done but not applied — it waits as a :class:`NoteProposal` (not in the
notes, the vectors or the chat's context) until a person approves it (optionally with an edit,
which becomes the note) or rejects it.  So does an entry a creation made: it is stored
``proposed`` (seen by no one, no vector) with a proposal of its key; approved (or an edit of
it), it is live; rejected, its creation is skipped and it goes, with its events.

A proposal's events are finished (``done``, no ``applied_version``); the key's later events
wait behind it (the note-update claim passes over a key with a proposal).  Approved, the note is
written over the version the rewrite read (a proposal whose note changed meanwhile is done
again); rejected, its events are *skipped*, exactly as a person's skip of a failed event: later
events fold without them, so a session's memory equals a replay with those events skipped.
A proposed entry's events wait behind its proposal as a note's do, and the session's later
analyses wait for it (they must see the entity, or not); rejected, the creations merged into it
as duplicates are made again, as if it had never been: a replay that skips its creation.
Switching back to auto approves what waits, in order.  A transcript cut drops a session's note
proposals and gives their kept events back to the queue (a proposed entry stays, unless the cut
undoes its turn and so deletes it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from loreweave.db import lifecycle
from loreweave.db.models import (
    AUTO,
    MANUAL,
    EntityCreationTask,
    LoreEntry,
    NoteProposal,
    NoteUpdateTask,
    TaskStatus,
    utcnow,
)
from loreweave.db.uow import UnitOfWork
from loreweave.errors import InvalidInput, NotFound
from loreweave.memory.ports import UnitOfWorkFactory, VectorWriter

MODES = (AUTO, MANUAL)
REJECTED = "rejected in review by {by}"


def mode_of(uow: UnitOfWork, session_id: uuid.UUID) -> str:
    """The session's review mode: its own, else its world's."""
    session = uow.sessions.require(session_id)
    return session.review or uow.worlds.require(session.world_id).review


def hold(
    uow: UnitOfWork,
    session_id: uuid.UUID,
    entry_id: uuid.UUID,
    task_ids: Sequence[uuid.UUID],
    *,
    version: int,
    before: str,
    after: str,
) -> bool:
    """In a session under manual review, keep a rewrite as a proposal (in the caller's
    transaction, the one that finishes its events) and say so; False: apply it as usual."""
    if mode_of(uow, session_id) != MANUAL:
        return False
    turns = sorted({uow.session.get_one(NoteUpdateTask, t).turn_index for t in task_ids})
    uow.session.add(
        NoteProposal(
            session_id=session_id,
            lore_entry_id=entry_id,
            base_version=version,
            before=before,
            after=after,
            task_ids=[str(t) for t in task_ids],
            turns=turns,
        )
    )
    return True


def hold_entry(uow: UnitOfWork, entry: LoreEntry, creation: EntityCreationTask) -> bool:
    """In a session under manual review, keep a new entry (just added, in the caller's
    transaction) proposed — seen by no one, no vector — and say so; False: it is live."""
    if mode_of(uow, creation.session_id) != MANUAL:
        return False
    entry.proposed = True
    uow.session.flush()  # the proposal names it
    uow.session.add(
        NoteProposal(
            session_id=creation.session_id,
            lore_entry_id=entry.id,
            base_version=0,
            before="",
            after=entry.content,
            task_ids=[str(creation.id)],
            turns=[creation.turn_index],
        )
    )
    return True


def proposed_entry(uow: UnitOfWork, proposal: NoteProposal) -> LoreEntry | None:
    """The entry whose creation ``proposal`` is (None: the proposal is a note change)."""
    entry = uow.session.get(LoreEntry, proposal.lore_entry_id)
    return entry if entry is not None and entry.proposed else None


def creation_of(uow: UnitOfWork, proposal: NoteProposal) -> EntityCreationTask | None:
    """The creation task of an entry's proposal (None: gone)."""
    return uow.session.get(EntityCreationTask, uuid.UUID(proposal.task_ids[0]))


def proposals(uow: UnitOfWork, session_id: uuid.UUID) -> Sequence[NoteProposal]:
    """The session's proposals, oldest first."""
    query = select(NoteProposal).where(NoteProposal.session_id == session_id)
    return uow.session.scalars(query.order_by(NoteProposal.created_at, NoteProposal.id)).all()


def proposed_events(uow: UnitOfWork, session_id: uuid.UUID) -> set[uuid.UUID]:
    """The events of the session's proposals: not in the memory yet."""
    return {uuid.UUID(t) for p in proposals(uow, session_id) for t in p.task_ids}


def _events(uow: UnitOfWork, proposal: NoteProposal) -> list[NoteUpdateTask]:
    found = [uow.session.get(NoteUpdateTask, uuid.UUID(t)) for t in proposal.task_ids]
    return [t for t in found if t is not None]


def drop(uow: UnitOfWork, session_id: uuid.UUID, entry_id: uuid.UUID | None = None) -> None:
    """A transcript cut (or, with ``entry_id``, a set-aside event of that entity retried in its
    place): the note proposals go, their events are to do again (those of the turns a cut undoes
    are cancelled by the cut itself).  A proposed entry stays: a cut of its turn deletes it."""
    for proposal in proposals(uow, session_id):
        if entry_id is not None and proposal.lore_entry_id != entry_id:
            continue
        if proposed_entry(uow, proposal) is not None:
            continue
        for task in _events(uow, proposal):
            lifecycle.repend(task)
        uow.session.delete(proposal)
    uow.session.flush()


@dataclass(frozen=True)
class Decided:
    """What a person's decision did: the entries whose note changed (to re-embed)."""

    approved: int = 0
    rejected: int = 0
    redone: int = 0  # proposals whose note had changed: their events are rewritten again
    entries: frozenset[uuid.UUID] = frozenset()


class ReviewService:
    def __init__(self, uow: UnitOfWorkFactory, vectors: VectorWriter) -> None:
        self.uow = uow
        self.vectors = vectors

    def approve(
        self, session_id: uuid.UUID, proposal_id: uuid.UUID, after: str | None = None
    ) -> Decided:
        """The proposal becomes the note (``after``: a person's edit of it, instead); when the
        note changed since it was proposed, its events are rewritten again (``redone``)."""
        if after is not None and not after.strip():
            raise InvalidInput("the edited note is empty")
        with self.uow() as uow:
            uow.sessions.lock(session_id)
            decided = _apply(uow, _require(uow, session_id, proposal_id), after)
            uow.commit()
        self._sync(session_id, decided)
        return decided

    def reject(self, session_id: uuid.UUID, proposal_id: uuid.UUID, by: str) -> Decided:
        """The proposal's events are skipped: the note stays, later events fold without them;
        a proposed entry's creation is skipped and the entry goes (:func:`_discard`)."""
        with self.uow() as uow:
            uow.sessions.lock(session_id)
            proposal = _require(uow, session_id, proposal_id)
            entry = proposed_entry(uow, proposal)
            uow.session.delete(proposal)
            if entry is None:
                for task in _events(uow, proposal):
                    _skip(task, by)
            else:
                if (creation := creation_of(uow, proposal)) is not None:
                    _skip(creation, by)
                _discard(uow, entry)
            uow.commit()
        return Decided(rejected=1)

    def approve_turn(self, session_id: uuid.UUID, turn_index: int) -> Decided:
        """Every proposal holding an event of this turn, in order."""
        with self.uow() as uow:
            uow.sessions.lock(session_id)
            decided = _approve_all(uow, session_id, turn_index)
            uow.commit()
        self._sync(session_id, decided)
        return decided

    def set_session(self, session_id: uuid.UUID, mode: str | None) -> Decided:
        """A session's own mode (None: its world's); to auto, what waits is approved."""
        if mode is not None and mode not in MODES:
            raise InvalidInput(f"review is one of {', '.join(MODES)}")
        with self.uow() as uow:
            uow.sessions.lock(session_id).review = mode
            uow.session.flush()
            decided = Decided()
            if mode_of(uow, session_id) == AUTO:
                decided = _approve_all(uow, session_id)
            uow.commit()
        self._sync(session_id, decided)
        return decided

    def set_world(self, world_id: uuid.UUID, mode: str) -> list[tuple[uuid.UUID, Decided]]:
        """A world's mode; to auto, what waits in its sessions that follow it is approved."""
        if mode not in MODES:
            raise InvalidInput(f"review is one of {', '.join(MODES)}")
        with self.uow() as uow:
            uow.worlds.require(world_id).review = mode
            done = []
            if mode == AUTO:
                for session in uow.sessions.in_world(world_id):
                    if session.review is None:
                        done.append((session.id, _approve_all(uow, session.id)))
            uow.commit()
        for session_id, decided in done:
            self._sync(session_id, decided)
        return done

    def _sync(self, session_id: uuid.UUID, decided: Decided) -> None:
        for entry_id in sorted(decided.entries):
            self.vectors.sync_entry(entry_id, session_id)


def _require(uow: UnitOfWork, session_id: uuid.UUID, proposal_id: uuid.UUID) -> NoteProposal:
    proposal = uow.session.get(NoteProposal, proposal_id)
    if proposal is None or proposal.session_id != session_id:
        raise NotFound("proposed change", proposal_id)
    return proposal


def _approve_all(uow: UnitOfWork, session_id: uuid.UUID, turn: int | None = None) -> Decided:
    approved, redone = 0, 0
    entries: set[uuid.UUID] = set()
    for proposal in proposals(uow, session_id):
        if turn is not None and turn not in proposal.turns:
            continue
        one = _apply(uow, proposal, None)
        approved, redone = approved + one.approved, redone + one.redone
        entries |= one.entries
    return Decided(approved=approved, redone=redone, entries=frozenset(entries))


def _skip(task: lifecycle.JobRow, by: str) -> None:
    task.status = TaskStatus.SKIPPED.value
    task.error_message = REJECTED.format(by=by)
    task.processed_at = utcnow()


def _discard(uow: UnitOfWork, entry: LoreEntry) -> None:
    """A rejected entry goes with its events (its creation's follow-ups, the duplicates merged
    into it); the creations merged into it are made again, as if it had never been."""
    made = select(EntityCreationTask).where(EntityCreationTask.created_lore_entry_id == entry.id)
    for creation in uow.session.scalars(made):
        if creation.outcome == "merged":
            lifecycle.repend(creation)
        creation.outcome, creation.created_lore_entry_id = None, None
    uow.session.flush()
    uow.entries.delete(entry)
    uow.session.flush()


def _approve_entry(
    uow: UnitOfWork, proposal: NoteProposal, entry: LoreEntry, edited: str | None
) -> Decided:
    """The proposed entry is live (``edited``: with a person's text, as a person's edit)."""
    uow.session.delete(proposal)
    entry.proposed = False
    if edited is not None:
        entry.content, entry.edited_by_person = edited.strip(), True
    uow.session.flush()
    return Decided(approved=1, entries=frozenset({entry.id}))


def _apply(uow: UnitOfWork, proposal: NoteProposal, edited: str | None) -> Decided:
    """Write the proposal over the note version it was made from; when the note changed since
    (a person's edit or rollback), its events are given back to the queue instead.  A proposed
    entry becomes live."""
    entry = proposed_entry(uow, proposal)
    if entry is not None:
        return _approve_entry(uow, proposal, entry, edited)
    session_id, entry_id = proposal.session_id, proposal.lore_entry_id
    note = uow.notes.for_entry(session_id, entry_id, lock=True)
    events = _events(uow, proposal)
    uow.session.delete(proposal)
    if (note.version if note else 0) != proposal.base_version:
        for task in events:
            lifecycle.repend(task)
        uow.session.flush()
        return Decided(redone=1)
    last = max([*proposal.turns, (note.last_updated_turn or 0) if note else 0])
    text = proposal.after if edited is None else edited.strip()
    reason = "rewrite" if edited is None else "edit"
    written = uow.notes.write(session_id, entry_id, text, turn=last, reason=reason)
    for task in events:
        task.applied_version = written.version
    uow.session.flush()
    return Decided(approved=1, entries=frozenset({entry_id}))

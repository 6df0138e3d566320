"""What a turn changed (DESIGN §1.7), as data, read from provenance without an LLM call.

Every memory change carries its turn: an event (note update task) the turn it serves and the
note version it was folded into, a creation its turn and the entry it made, a turn's analysis
the updates it rejected.  So a turn's changes are: per entity, the note's text before and after
this turn's events were folded in; each entry created; each update or creation rejected, with
its reason; each event or creation set aside (failed) or skipped by a person.  An event still
on its way is no change yet: the turn's ``state`` stays ``pending`` until none is.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from loreweave.db.models import (
    ON_ITS_WAY,
    USER,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    SessionNote,
    TaskStatus,
)
from loreweave.db.uow import UnitOfWork
from loreweave.errors import NotFound
from loreweave.memory import review

APPLIED, PROPOSED, REJECTED, FAILED = "applied", "proposed", "rejected", "failed"
NOT_A_REJECTION = "kept but flagged"  # an analysis remark about an update it kept


@dataclass(frozen=True)
class Change:
    """One change of a turn.  ``before``/``after``: a note's text around this turn's events
    (None: no note); a created entry's lore as ``after``; for an event or creation that was not
    applied (rejected, set aside, skipped), ``after`` is what it would have said."""

    id: str
    kind: str  # note | entry | rejected
    entry_id: uuid.UUID | None
    title: str | None
    before: str | None
    after: str | None
    status: str  # applied | proposed | rejected | failed
    reason: str | None = None
    known_by: list[str] = field(default_factory=list)  # witnesses by name; empty: public


@dataclass(frozen=True)
class TurnChanges:
    turn: int
    state: str  # pending | done
    changes: list[Change]


def text_at(note: SessionNote | None, history: Sequence[str | None], version: int) -> str | None:
    """A note's text at ``version`` (0: no note yet), ``history`` its revisions' texts by
    version (index = version - 1)."""
    if note is None or version <= 0:
        return None
    if version == note.version:
        return note.note_content
    return history[version - 1] if version <= len(history) else None


class Names:
    """Entry titles by id, read once; how witnesses are shown."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.titles: dict[uuid.UUID, str] = {}

    def title(self, entry_id: uuid.UUID | None) -> str | None:
        if entry_id is None:
            return None
        if entry_id not in self.titles:
            entry = self.uow.session.get(LoreEntry, entry_id)
            self.titles[entry_id] = entry.title if entry is not None else "(gone)"
        return self.titles[entry_id]

    def witnesses(self, known_by: Sequence[str]) -> list[str]:
        names: list[str] = []
        for witness in known_by:
            name = "User" if witness == USER else self.title(_uuid(witness)) or "(gone)"
            if name not in names:
                names.append(name)
        return names


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _require_turn(uow: UnitOfWork, session_id: uuid.UUID, turn_index: int) -> ChatTurn:
    uow.sessions.require(session_id)
    turn = uow.session.scalars(
        select(ChatTurn).where(ChatTurn.session_id == session_id, ChatTurn.turn_index == turn_index)
    ).one_or_none()
    if turn is None:
        raise NotFound("turn", f"{session_id}/{turn_index}")
    return turn


def turn_changes(uow: UnitOfWork, session_id: uuid.UUID, turn_index: int) -> TurnChanges:
    """What turn ``turn_index`` of the session changed in its memory (NotFound: no such turn)."""
    turn = _require_turn(uow, session_id, turn_index)
    events = uow.session.scalars(
        select(NoteUpdateTask)
        .where(NoteUpdateTask.session_id == session_id, NoteUpdateTask.turn_index == turn_index)
        .order_by(NoteUpdateTask.created_at, NoteUpdateTask.id)
    ).all()
    creations = uow.session.scalars(
        select(EntityCreationTask)
        .where(
            EntityCreationTask.session_id == session_id,
            EntityCreationTask.turn_index == turn_index,
        )
        .order_by(EntityCreationTask.created_at, EntityCreationTask.id)
    ).all()
    names = Names(uow)
    changes = [
        *_note_changes(uow, names, events),
        *_proposed(uow, names, session_id, turn_index),
        *_creation_changes(names, creations),
        *_analysis_changes(turn, creations),
    ]
    statuses = [turn.processing_status, *(e.status for e in events), *(c.status for c in creations)]
    state = "pending" if any(status in ON_ITS_WAY for status in statuses) else "done"
    return TurnChanges(turn_index, state, changes)


def _note_changes(uow: UnitOfWork, names: Names, events: Sequence[NoteUpdateTask]) -> list[Change]:
    by_entry: dict[uuid.UUID, list[NoteUpdateTask]] = {}
    for event in events:
        by_entry.setdefault(event.lore_entry_id, []).append(event)
    changes: list[Change] = []
    for entry_id, entry_events in by_entry.items():
        title = names.title(entry_id)
        applied = [e for e in entry_events if e.applied_version is not None]
        if applied:
            changes.append(_folded(uow, names, entry_id, title, applied))
        for event in entry_events:
            if event.applied_version is None and event.status in (
                TaskStatus.FAILED.value,
                TaskStatus.SKIPPED.value,
            ):
                changes.append(_not_applied(names, event, "note", entry_id, title))
    return changes


def _proposed(uow: UnitOfWork, names: Names, session_id: uuid.UUID, turn: int) -> list[Change]:
    """The note changes holding an event of this turn, and the entries it created, that wait
    for a person's review."""
    changes = []
    for proposal in review.proposals(uow, session_id):
        if turn not in proposal.turns:
            continue
        entry = review.proposed_entry(uow, proposal)
        if entry is not None:
            creation = review.creation_of(uow, proposal)
            known = [creation.known_by or []] if creation is not None else []
        else:
            events = [uow.session.get(NoteUpdateTask, uuid.UUID(t)) for t in proposal.task_ids]
            known = [e.known_by or [] for e in events if e is not None]
        witnesses = [] if any(not k for k in known) else [w for k in known for w in k]
        changes.append(
            Change(
                id=str(proposal.id),
                kind="note" if entry is None else "entry",
                entry_id=proposal.lore_entry_id,
                title=names.title(proposal.lore_entry_id),
                before=proposal.before or None,
                after=proposal.after if entry is None else entry.content,
                status=PROPOSED,
                known_by=names.witnesses(witnesses),
            )
        )
    return changes


def _folded(
    uow: UnitOfWork,
    names: Names,
    entry_id: uuid.UUID,
    title: str | None,
    applied: Sequence[NoteUpdateTask],
) -> Change:
    """The note around the versions these events were folded into."""
    session_id = applied[0].session_id
    note = uow.notes.for_entry(session_id, entry_id)
    history: list[str | None] = []
    if note is not None:
        by_version = {r.version: r.note_content for r in uow.notes.revisions(note.id)}
        history = [by_version.get(v) for v in range(1, note.version)]
    first = min(e.applied_version or 0 for e in applied)
    last = max(e.applied_version or 0 for e in applied)
    witnesses = [w for e in applied for w in (e.known_by or [])]
    public = any(not e.known_by for e in applied)
    return Change(
        id=str(applied[0].id),
        kind="note",
        entry_id=entry_id,
        title=title,
        before=text_at(note, history, first - 1),
        after=text_at(note, history, last),
        status=APPLIED,
        known_by=[] if public else names.witnesses(witnesses),
    )


def _not_applied(
    names: Names,
    job: NoteUpdateTask | EntityCreationTask,
    kind: str,
    entry_id: uuid.UUID | None,
    title: str | None,
) -> Change:
    skipped = job.status == TaskStatus.SKIPPED.value
    what = job.update_summary if isinstance(job, NoteUpdateTask) else job.creation_summary
    return Change(
        id=str(job.id),
        kind=kind,
        entry_id=entry_id,
        title=title,
        before=None,
        after=what,
        status=REJECTED if skipped else FAILED,
        reason=job.error_message,
        known_by=names.witnesses(job.known_by or []),
    )


def _creation_changes(names: Names, creations: Sequence[EntityCreationTask]) -> list[Change]:
    changes: list[Change] = []
    for task in creations:
        if task.outcome == "created" and task.created_lore_entry_id is not None:
            entry = names.uow.session.get(LoreEntry, task.created_lore_entry_id)
            if entry is None or entry.proposed:
                continue  # removed since (by a person), or waiting for review (``_proposed``)
            changes.append(
                Change(
                    id=str(task.id),
                    kind="entry",
                    entry_id=entry.id,
                    title=entry.title,
                    before=None,
                    after=entry.content,
                    status=APPLIED,
                    known_by=names.witnesses(task.known_by or []),
                )
            )
        elif task.outcome == "rejected":
            changes.append(
                Change(
                    id=str(task.id),
                    kind="rejected",
                    entry_id=None,
                    title=None,
                    before=None,
                    after=task.creation_summary,
                    status=REJECTED,
                    reason=task.error_message,
                )
            )
        elif task.status in (TaskStatus.FAILED.value, TaskStatus.SKIPPED.value):
            changes.append(_not_applied(names, task, "entry", None, None))
        # "merged": its event is one of the entry's note updates, listed with the notes
    return changes


def _analysis_changes(turn: ChatTurn, creations: Sequence[EntityCreationTask]) -> list[Change]:
    """What the turn's analysis rejected (its recorded reasons), or its failure."""
    said = {c.error_message for c in creations if c.outcome == "rejected"}
    failed = turn.processing_status in (TaskStatus.FAILED.value, TaskStatus.SKIPPED.value)
    changes = []
    for i, line in enumerate((turn.processing_errors or "").splitlines()):
        if not line.strip() or line in said or (NOT_A_REJECTION in line and not failed):
            continue
        changes.append(
            Change(
                id=str(uuid.uuid5(turn.id, f"analysis-{i}")),
                kind="rejected",
                entry_id=None,
                title=None,
                before=None,
                after=None,
                status=FAILED if turn.processing_status == TaskStatus.FAILED.value else REJECTED,
                reason=line,
            )
        )
    return changes

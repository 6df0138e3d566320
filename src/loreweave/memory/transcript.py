"""The transcript owns the memory (DESIGN §1.4): delete, edit and fork turns, with exact undo.

Every memory change carries the turn that caused it: a note update task its turn and the note
version it was folded into (``applied_version``), a created entry its ``origin_turn_index``, every
job its turn.  Since events are applied strictly in turn order, "the memory before turn *c*" is
exact: each note's text at the version before the first one that folded an event of a turn ≥ c,
plus the events of earlier turns folded at or after that version, which become pending again.

One primitive, :meth:`TranscriptService.cut`, takes a session's memory back to before turn *c*
inside the caller's transaction; deleting turns, editing one (then analysing again from there)
and regenerating a reply are built on it, and forking copies the same "memory as of" into a new
session without an LLM call.  Work in flight for the turns undone is discarded: its rows are
gone or pending again, so a late answer finds its claim lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from loreweave.db import lifecycle
from loreweave.db.dialect import is_postgresql
from loreweave.db.lifecycle import JobTables
from loreweave.db.models import (
    UNFINISHED,
    USER,
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteProposal,
    NoteUpdateTask,
    SessionNote,
    SessionNoteRevision,
    TaskStatus,
    utcnow,
)
from loreweave.db.uow import UnitOfWork
from loreweave.errors import Conflict, InvalidInput, NotFound
from loreweave.memory import review
from loreweave.memory.ports import UnitOfWorkFactory, VectorWriter


@dataclass
class Reverted:
    """What taking a session's memory back to before a turn changed (the API's answer)."""

    from_turn: int
    turns_removed: list[int] = field(default_factory=list)
    turns_to_analyse: list[int] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    entries_removed: list[dict[str, Any]] = field(default_factory=list)
    entries_kept: list[dict[str, Any]] = field(default_factory=list)
    jobs_cancelled: int = 0
    jobs_released: int = 0  # kept jobs that shared a cancelled claim, claimable at once
    touched: set[uuid.UUID] = field(default_factory=set)  # entries whose vectors to sync


@dataclass(frozen=True)
class NoteAsOf:
    """One note as it was before turn *c*: ``version`` 0 means no note yet."""

    version: int
    text: str
    last_turn: int | None
    repend: list[NoteUpdateTask]  # events of earlier turns folded at or after the cut


def note_as_of(
    history: Sequence[SessionNoteRevision], tasks: Sequence[NoteUpdateTask], cut: int
) -> NoteAsOf | None:
    """A note before turn ``cut``, from its history and its key's tasks — None when no event of
    a turn ≥ cut was folded into it."""
    return note_without(history, tasks, [t for t in tasks if t.turn_index >= cut])


def note_without(
    history: Sequence[SessionNoteRevision],
    tasks: Sequence[NoteUpdateTask],
    undone: Sequence[NoteUpdateTask],
) -> NoteAsOf | None:
    """A note as it was before the first of the ``undone`` events was folded in — None when
    none was.  ``repend``: the other events folded at or after that version."""
    folded = [t.applied_version for t in undone if t.applied_version]
    if not folded:
        return None
    first = min(folded)
    undone_ids = {t.id for t in undone}
    repend = [t for t in tasks if t.id not in undone_ids and (t.applied_version or 0) >= first]
    if first == 1:
        return NoteAsOf(0, "", None, repend)
    earlier = next(r for r in history if r.version == first - 1)
    return NoteAsOf(first - 1, earlier.note_content, earlier.last_updated_turn, repend)


def _in_order(task: NoteUpdateTask) -> tuple[int, Any]:
    return (task.turn_index, task.created_at)


def _write_back(uow: UnitOfWork, note: SessionNote, before: NoteAsOf, report: Reverted) -> None:
    """The note back to ``before``; the events folded since it go back to the queue."""
    for task in before.repend:
        lifecycle.repend(task)
        task.applied_version = None
    entry_id = note.lore_entry_id
    title = uow.entries.require(entry_id).title
    report.touched.add(entry_id)
    if before.version == 0:
        uow.session.delete(note)
        report.notes.append({"lore_entry_id": str(entry_id), "title": title, "note": None})
        return
    written = uow.notes.write(
        note.session_id, entry_id, before.text, turn=before.last_turn, reason="revert"
    )
    report.notes.append(
        {
            "lore_entry_id": str(entry_id),
            "title": title,
            "note": before.text,
            "version": written.version,
            "as_of_version": before.version,
        }
    )


def lock_session(uow: UnitOfWork, session_id: uuid.UUID, job_tables: JobTables) -> ChatSession:
    """Lock the session's jobs, then the session (PostgreSQL), in the order the workers take
    them (job rows before the session and note rows), so a cut never deadlocks with them."""
    if is_postgresql(uow.session):
        for model in job_tables:
            uow.session.execute(
                select(model.id).where(model.session_id == session_id).with_for_update()
            )
    return uow.sessions.lock(session_id)


def refold(uow: UnitOfWork, task: NoteUpdateTask) -> Reverted:
    """Before a set-aside (failed) event is retried, in ``uow``'s transaction: its note goes
    back to the version before the events folded since it, and those are pending again,
    so the retried event is applied in its place and they after it (as a cut re-pends)."""
    report = Reverted(task.turn_index)
    review.drop(uow, task.session_id, task.lore_entry_id)  # a proposal of later events: after it
    note = uow.notes.for_entry(task.session_id, task.lore_entry_id)
    if note is None:
        return report
    tasks = uow.session.scalars(
        select(NoteUpdateTask)
        .where(
            NoteUpdateTask.session_id == task.session_id,
            NoteUpdateTask.lore_entry_id == task.lore_entry_id,
        )
        .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
    ).all()
    since = [t for t in tasks if t.id != task.id and _in_order(t) > _in_order(task)]
    before = note_without(uow.notes.revisions(note.id), tasks, since)
    if before is not None:
        for later in since:
            if later.applied_version is not None:
                lifecycle.repend(later)
                later.applied_version = None
        _write_back(uow, note, before, report)
    uow.session.flush()
    return report


class TranscriptService:
    def __init__(
        self, uow: UnitOfWorkFactory, vectors: VectorWriter, job_tables: JobTables
    ) -> None:
        """``job_tables``: the tables of every job kind (``chat_turns`` among them), whose jobs
        of the turns a cut undoes are cancelled."""
        self.uow = uow
        self.vectors = vectors
        self.job_tables = job_tables

    # -- the primitive -------------------------------------------------------------------------
    def lock(self, uow: UnitOfWork, session_id: uuid.UUID) -> ChatSession:
        return lock_session(uow, session_id, self.job_tables)

    def cut(
        self, uow: UnitOfWork, session_id: uuid.UUID, from_turn: int, *, drop_turns: bool
    ) -> Reverted:
        """Take the session's memory back to before turn ``from_turn``, in ``uow``'s transaction;
        the turns from ``from_turn`` on are removed (``drop_turns``) or analysed again."""
        report = Reverted(from_turn)
        db = uow.session
        claims = lifecycle.claims_in(db, session_id, self.job_tables)
        review.drop(uow, session_id)  # proposed changes are made again over the reverted notes
        doomed = self._created_entries(uow, session_id, from_turn, report)
        tasks = db.scalars(
            select(NoteUpdateTask)
            .where(NoteUpdateTask.session_id == session_id)
            .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
        ).all()
        for note in uow.notes.in_session(session_id):
            if note.lore_entry_id in doomed:
                continue
            key_tasks = [t for t in tasks if t.lore_entry_id == note.lore_entry_id]
            self._revert_note(uow, note, key_tasks, from_turn, report)
        for creation in db.scalars(
            select(EntityCreationTask).where(
                EntityCreationTask.session_id == session_id,
                EntityCreationTask.turn_index < from_turn,
                EntityCreationTask.status.in_(UNFINISHED),
            )
        ):
            kept = [f for f in creation.followups if f["turn_index"] < from_turn]
            if len(kept) != len(creation.followups):  # a batched analysis's later turns
                creation.followups = kept
                report.jobs_cancelled += 1
        for model in self.job_tables:
            if model is not ChatTurn:  # the turns themselves go, or are analysed again, below
                report.jobs_cancelled += lifecycle.cancel(db, model, session_id, from_turn)
        for entry_id in doomed:
            self._delete_entry(uow, entry_id)
        turns = db.scalars(
            select(ChatTurn)
            .where(ChatTurn.session_id == session_id, ChatTurn.turn_index >= from_turn)
            .order_by(ChatTurn.turn_index)
        ).all()
        for turn in turns:
            if drop_turns:
                report.turns_removed.append(turn.turn_index)
                db.delete(turn)
            else:
                report.turns_to_analyse.append(turn.turn_index)
                lifecycle.repend(turn)
        # what the undone part's workers held beside it is claimable now, not at lease expiry
        report.jobs_released = lifecycle.release_broken_claims(db, session_id, claims)
        return report

    def _created_entries(
        self, uow: UnitOfWork, session_id: uuid.UUID, cut: int, report: Reverted
    ) -> set[uuid.UUID]:
        """Entries the undone turns created: to delete, unless promoted or edited by a person."""
        query = select(LoreEntry).where(
            LoreEntry.is_dynamically_generated.is_(True),
            LoreEntry.origin_turn_index >= cut,
            LoreEntry.id.in_(
                select(EntityCreationTask.created_lore_entry_id).where(
                    EntityCreationTask.session_id == session_id,
                    EntityCreationTask.outcome == "created",
                )
            )
            | (LoreEntry.origin_session_id == session_id),
        )
        doomed = set()
        for entry in uow.session.scalars(query):
            described = {"id": str(entry.id), "title": entry.title}
            if entry.origin_session_id is None:
                report.entries_kept.append({**described, "reason": "promoted to world lore"})
            elif entry.edited_by_person:
                report.entries_kept.append({**described, "reason": "edited by a person"})
            else:
                report.entries_removed.append(described)
                doomed.add(entry.id)
        return doomed

    def _revert_note(
        self,
        uow: UnitOfWork,
        note: SessionNote,
        tasks: Sequence[NoteUpdateTask],
        cut: int,
        report: Reverted,
    ) -> None:
        unfinished_later = any(t.turn_index >= cut and t.applied_version is None for t in tasks)
        before = note_as_of(uow.notes.revisions(note.id), tasks, cut)
        if before is None and not unfinished_later:
            return  # no event of the undone turns in this note, none on its way
        for task in tasks:  # a batch in flight may mix kept and undone events: do it again
            if task.turn_index < cut and task.status == TaskStatus.PROCESSING.value:
                lifecycle.repend(task)
        if before is not None:
            _write_back(uow, note, before, report)

    def _delete_entry(self, uow: UnitOfWork, entry_id: uuid.UUID) -> None:
        self.vectors.forget_entry(uow, entry_id)
        entry = uow.entries.get(entry_id)
        if entry is not None:
            uow.entries.delete(entry)

    def sync(self, session_id: uuid.UUID, report: Reverted) -> None:
        for entry_id in sorted(report.touched):
            self.vectors.sync_entry(entry_id, session_id)

    # -- the operations ------------------------------------------------------------------------
    def delete_turns(self, session_id: uuid.UUID, turn_index: int) -> Reverted:
        """Remove turn ``turn_index`` and every later one, and their memory changes."""
        with self.uow() as uow:
            self.lock(uow, session_id)
            self._require_turn(uow, session_id, turn_index)
            report = self.cut(uow, session_id, turn_index, drop_turns=True)
            uow.commit()
        self.sync(session_id, report)
        return report

    def edit_turn(
        self,
        session_id: uuid.UUID,
        turn_index: int,
        *,
        user_message: str | None = None,
        assistant_message: str | None = None,
        alternative: int | None = None,
    ) -> tuple[ChatTurn, Reverted]:
        """Change a turn's text (or pick one of its earlier replies); its memory and the later
        turns' is undone, and those turns are analysed again, in order."""
        if alternative is not None and assistant_message is not None:
            raise InvalidInput("give assistant_message or alternative, not both")
        with self.uow() as uow:
            self.lock(uow, session_id)
            turn = self._require_turn(uow, session_id, turn_index)
            if alternative is not None:
                if not 0 <= alternative < len(turn.alternatives):
                    raise InvalidInput(
                        f"turn {turn_index} has {len(turn.alternatives)} alternatives"
                    )
                chosen = turn.alternatives[alternative]
                turn.alternatives = [
                    turn.assistant_message if i == alternative else text
                    for i, text in enumerate(turn.alternatives)
                ]
                turn.assistant_message = chosen
            if user_message is not None:
                turn.user_message = user_message
            if assistant_message is not None:
                turn.assistant_message = assistant_message
            report = self.cut(uow, session_id, turn_index, drop_turns=False)
            uow.commit()
        self.sync(session_id, report)
        return turn, report

    def replace_reply(
        self,
        session_id: uuid.UUID,
        turn_index: int,
        expected: str,
        reply: str,
        used_entry_ids: list[str],
    ) -> tuple[ChatTurn, Reverted]:
        """A regenerated reply for the last turn: the old one kept as an alternative."""
        with self.uow() as uow:
            self.lock(uow, session_id)
            turn = self._require_turn(uow, session_id, turn_index)
            last = uow.turns.next_index(session_id) == turn_index + 1
            if not last or turn.assistant_message != expected:
                raise Conflict(f"turn {turn_index} changed while its reply was regenerated")
            turn.alternatives = [*turn.alternatives, turn.assistant_message]
            turn.assistant_message = reply
            turn.used_entry_ids = used_entry_ids
            report = self.cut(uow, session_id, turn_index, drop_turns=False)
            uow.commit()
        self.sync(session_id, report)
        return turn, report

    @staticmethod
    def _require_turn(uow: UnitOfWork, session_id: uuid.UUID, turn_index: int) -> ChatTurn:
        turn = uow.session.scalars(
            select(ChatTurn).where(
                ChatTurn.session_id == session_id, ChatTurn.turn_index == turn_index
            )
        ).one_or_none()
        if turn is None:
            raise NotFound("turn", f"{session_id}/{turn_index}")
        return turn

    # -- fork ----------------------------------------------------------------------------------
    def fork(self, session_id: uuid.UUID, at_turn: int, title: str | None = None) -> ChatSession:
        """A new session with turns 0…at_turn and exactly the memory the original had after
        ``at_turn`` (work still due for those turns is due in the fork too); no LLM call."""
        with self.uow() as uow:
            original = self.lock(uow, session_id)
            self._require_turn(uow, session_id, at_turn)
            copy = _Copy(uow, original, at_turn + 1, title)
            copy.run()
            uow.commit()
        for entry_id in copy.synced:
            self.vectors.sync_entry(entry_id, copy.fork.id)
        return copy.fork

    # -- whole sessions and worlds -------------------------------------------------------------
    def delete_session(self, session_id: uuid.UUID) -> None:
        """A session and everything that belongs to it: turns, notes, jobs, created entries."""
        with self.uow() as uow:
            session = self.lock(uow, session_id)
            created = uow.session.scalars(
                select(LoreEntry.id).where(LoreEntry.origin_session_id == session_id)
            ).all()
            for entry_id in created:
                self._delete_entry(uow, entry_id)
            uow.sessions.delete(session)
            uow.commit()

    def delete_world(self, world_id: uuid.UUID, *, cascade: bool = False) -> None:
        with self.uow() as uow:
            world = uow.worlds.require(world_id)
            if uow.sessions.in_world(world_id) and not cascade:
                raise Conflict(
                    f"world {world_id} has sessions: delete them first, or pass cascade=true"
                )
            uow.worlds.delete(world)
            uow.commit()


class _Copy:
    """Copies a session's transcript and memory before turn ``cut`` into a new session."""

    def __init__(self, uow: UnitOfWork, original: ChatSession, cut: int, title: str | None) -> None:
        self.uow, self.original, self.cut = uow, original, cut
        self.fork = uow.sessions.add(
            ChatSession(
                world_id=original.world_id,
                caller=original.caller,  # the proxy's fork stays its caller's chat
                review=original.review,  # what waits for review in it waits in the fork too
                title=title or f"{original.title or 'session'} (fork at turn {cut - 1})",
                last_turn_at=utcnow(),  # a fork is played now
                forked_from_id=original.id,
                forked_at_turn=cut - 1,
            )
        )
        self.entry_map: dict[uuid.UUID, uuid.UUID] = {}
        self.creation_map: dict[uuid.UUID, uuid.UUID] = {}
        self.applied: dict[uuid.UUID, int | None] = {}  # a task's version in the fork's note
        self.synced: list[uuid.UUID] = []

    def run(self) -> None:
        self._turns()
        self._entries()
        self._creations()
        self._proposed_entries()
        self._notes()

    def _rows(self, model: Any) -> Sequence[Any]:
        return self.uow.session.scalars(
            select(model)
            .where(model.session_id == self.original.id, model.turn_index < self.cut)
            .order_by(model.turn_index, model.created_at)
        ).all()

    def _turns(self) -> None:
        for turn in self._rows(ChatTurn):
            state = lifecycle.carried(turn)
            self.uow.session.add(
                ChatTurn(
                    session_id=self.fork.id,
                    turn_index=turn.turn_index,
                    user_message=turn.user_message,
                    assistant_message=turn.assistant_message,
                    alternatives=list(turn.alternatives),
                    used_entry_ids=list(turn.used_entry_ids),
                    prompt_lore=dict(turn.prompt_lore),
                    speaker=turn.speaker,
                    processing_status=state["status"],
                    processing_errors=state["error_message"],
                    last_processed_at=state["processed_at"],
                    retry_count=state["retry_count"],
                    next_attempt_at=state["next_attempt_at"],
                    created_at=state["created_at"],
                )
            )

    def _entries(self) -> None:
        created = self.uow.session.scalars(
            select(LoreEntry).where(
                LoreEntry.origin_session_id == self.original.id,
                LoreEntry.origin_turn_index < self.cut,
            )
        ).all()
        for entry in created:
            copy = self.uow.entries.add(
                LoreEntry(
                    world_id=entry.world_id,
                    title=entry.title,
                    entity_type=entry.entity_type,
                    content=entry.content,
                    tags=list(entry.tags),
                    aliases=list(entry.aliases),
                    is_dynamically_generated=True,
                    origin_session_id=self.fork.id,
                    origin_turn_index=entry.origin_turn_index,
                    proposed=entry.proposed,
                    edited_by_person=entry.edited_by_person,
                    extra=dict(entry.extra),
                )
            )
            self.entry_map[entry.id] = copy.id
            self.synced.append(copy.id)

    def _entry(self, entry_id: uuid.UUID | None) -> uuid.UUID | None:
        return None if entry_id is None else self.entry_map.get(entry_id, entry_id)

    def _witnesses(self, known_by: Sequence[str]) -> list[str]:
        """Witnesses as the fork names them (the entries it copied have new ids)."""
        return [w if w == USER else str(self._entry(uuid.UUID(w))) for w in known_by]

    def _creations(self) -> None:
        for task in self._rows(EntityCreationTask):
            self.creation_map[task.id] = uuid.uuid4()
            self.uow.session.add(
                EntityCreationTask(
                    id=self.creation_map[task.id],
                    session_id=self.fork.id,
                    turn_index=task.turn_index,
                    entity_type=task.entity_type,
                    creation_summary=task.creation_summary,
                    name=task.name,
                    created_lore_entry_id=self._entry(task.created_lore_entry_id),
                    outcome=task.outcome,
                    followups=[
                        {**f, "known_by": self._witnesses(f.get("known_by", []))}
                        for f in task.followups
                        if f["turn_index"] < self.cut
                    ],
                    known_by=self._witnesses(task.known_by),
                    **lifecycle.carried(task),
                )
            )

    def _proposed_entries(self) -> None:
        """The copies of entries waiting for review wait in the fork too (a note change that
        waits is made again there: its events are to do)."""
        self.uow.session.flush()
        for proposal in review.proposals(self.uow, self.original.id):
            if proposal.lore_entry_id not in self.entry_map:
                continue  # a note's, or an entry a later turn created
            tasks = [self.creation_map.get(uuid.UUID(t)) for t in proposal.task_ids]
            if review.proposed_entry(self.uow, proposal) is None or None in tasks:
                continue
            self.uow.session.add(
                NoteProposal(
                    session_id=self.fork.id,
                    lore_entry_id=self.entry_map[proposal.lore_entry_id],
                    base_version=0,
                    before=proposal.before,
                    after=proposal.after,
                    task_ids=[str(t) for t in tasks],
                    turns=list(proposal.turns),
                )
            )

    def _notes(self) -> None:
        tasks = self._rows(NoteUpdateTask)
        all_tasks = self.uow.session.scalars(
            select(NoteUpdateTask).where(NoteUpdateTask.session_id == self.original.id)
        ).all()
        for note in self.uow.notes.in_session(self.original.id):
            entry = self.uow.entries.require(note.lore_entry_id)
            if entry.origin_session_id == self.original.id and entry.id not in self.entry_map:
                continue  # created by a later turn: the fork never had it
            key = [t for t in all_tasks if t.lore_entry_id == note.lore_entry_id]
            self._note(note, self.entry_map.get(entry.id, entry.id), key)
        for task in tasks:
            entry_id = self.entry_map.get(task.lore_entry_id, task.lore_entry_id)
            state = lifecycle.carried(task)
            applied = self.applied.get(task.id)
            if state["status"] == TaskStatus.DONE.value and applied is None:
                state.update(status=TaskStatus.PENDING.value, retry_count=0, processed_at=None)
            self.uow.session.add(
                NoteUpdateTask(
                    session_id=self.fork.id,
                    lore_entry_id=entry_id,
                    turn_index=task.turn_index,
                    update_summary=task.update_summary,
                    applied_version=applied,
                    known_by=self._witnesses(task.known_by),
                    **state,
                )
            )
        self.uow.session.flush()

    def _note(
        self, note: SessionNote, entry_id: uuid.UUID, tasks: Sequence[NoteUpdateTask]
    ) -> None:
        history = self.uow.notes.revisions(note.id)
        before = note_as_of(history, tasks, self.cut)
        version = note.version if before is None else before.version
        for task in tasks:
            keep = task.applied_version is not None and task.applied_version <= version
            self.applied[task.id] = task.applied_version if keep else None
        self.synced.append(entry_id)
        if version == 0:
            return
        text = note.note_content if before is None else before.text
        last = note.last_updated_turn if before is None else before.last_turn
        copy = self.uow.notes.add(
            SessionNote(
                session_id=self.fork.id,
                lore_entry_id=entry_id,
                note_content=text,
                last_updated_turn=last,
                version=version,
            )
        )
        for revision in history:
            if revision.version < version:
                self.uow.session.add(
                    SessionNoteRevision(
                        note_id=copy.id,
                        version=revision.version,
                        note_content=revision.note_content,
                        last_updated_turn=revision.last_updated_turn,
                        reason=revision.reason,
                        created_at=revision.created_at,
                    )
                )

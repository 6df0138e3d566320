"""What the memory did, in lines for a person: each note as it now reads, each entity created,
each analysis problem in plain words.  ``loreweave demo`` prints them as the workers finish;
``loreweave chat`` prints each turn's changes (:mod:`loreweave.memory.changes`), one line each,
once the workers have finished the turn."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from sqlalchemy import select

from loreweave.db.models import EntityCreationTask, NoteUpdateTask, TaskStatus, TurnStatus
from loreweave.db.uow import UnitOfWork
from loreweave.memory.changes import Change, turn_changes
from loreweave.memory.ports import UnitOfWorkFactory

# why an entry was in a turn's prompt, in plain words
WHY = {"keyword": "named", "constant": "always", "vector": "related", "bm25": "related"}


@dataclass
class Watch:
    """What has been reported already."""

    tasks: set[uuid.UUID] = field(default_factory=set)
    turns: set[int] = field(default_factory=set)

    @classmethod
    def from_now(cls, uow: UnitOfWorkFactory, session_id: uuid.UUID) -> Watch:
        """Everything already finished counts as reported (a session continued)."""
        watch = cls()
        report(uow, session_id, watch, Console(quiet=True))
        return watch


def report(
    uow_factory: UnitOfWorkFactory, session_id: uuid.UUID, watch: Watch, console: Console
) -> int:
    """Print what finished since last time; return how many jobs are still unfinished."""
    unfinished = 0
    with uow_factory(read_only=True) as uow:
        for turn in uow.turns.recent(session_id, 1000):
            if turn.processing_status in (TurnStatus.PENDING, TurnStatus.PROCESSING):
                unfinished += 1
            elif turn.turn_index not in watch.turns:
                watch.turns.add(turn.turn_index)
                for line in (turn.processing_errors or "").splitlines():
                    console.print(f"   [red]✗ ignored[/] {plain(line)}", highlight=False)
        tasks: list[NoteUpdateTask | EntityCreationTask] = [
            *uow.session.scalars(
                select(NoteUpdateTask).where(NoteUpdateTask.session_id == session_id)
            ),
            *uow.session.scalars(
                select(EntityCreationTask).where(EntityCreationTask.session_id == session_id)
            ),
        ]
        for task in sorted(tasks, key=lambda t: t.processed_at or t.created_at):
            if task.status in (TaskStatus.PENDING, TaskStatus.PROCESSING):
                unfinished += 1
            elif task.id not in watch.tasks:
                watch.tasks.add(task.id)
                console.print("   " + describe(uow, task))
    return unfinished


def describe(uow: UnitOfWork, task: NoteUpdateTask | EntityCreationTask) -> str:
    if task.status == TaskStatus.FAILED:
        return f"[red]✗ failed[/] {task.error_message}"
    if isinstance(task, NoteUpdateTask):
        entry = uow.entries.get(task.lore_entry_id)
        title = entry.title if entry else "?"
        note = note_at(uow, task.session_id, task.lore_entry_id, task.applied_version)
        return f"[green]✓ {title}'s note now says:[/] {note}"
    entry = uow.entries.get(task.created_lore_entry_id) if task.created_lore_entry_id else None
    title = entry.title if entry else "?"
    if task.outcome == "merged":
        return f"[cyan]↺ duplicate of {title}[/]: becomes a note update of the existing entry"
    if task.outcome == "rejected":  # not grounded in the story: its reason
        return f"[yellow]✗ not created:[/] {task.error_message}"
    return f"[green]✓ new in this story:[/] {title} ({task.entity_type})"


def note_at(
    uow: UnitOfWork, session_id: uuid.UUID, entry_id: uuid.UUID, version: int | None
) -> str:
    """The note's text at ``version`` (later rewrites may have replaced it since)."""
    note = uow.notes.for_entry(session_id, entry_id)
    if note is None:
        return "(removed since)"
    if version is None or note.version == version:
        return str(note.note_content)
    older = [r for r in uow.notes.revisions(note.id) if r.version == version]
    return str(older[0].note_content) if older else str(note.note_content)


def plain(problem: str) -> str:
    """An analysis problem without the pipeline's jargon."""
    found = re.search(
        r"unknown entity '(\w+)' dropped \(not an id shown to the analysis\): (.*)", problem
    )
    if found:
        return f"the analysis pointed at an entity that does not exist: {found.group(2)}"
    return problem


# -- a turn's changes, one line each (``loreweave chat``) -----------------------------------------


def change_line(change: Change) -> str:
    """One change of a turn (:mod:`loreweave.memory.changes`) in a line for a person."""
    title, after = escape(change.title or "?"), escape(change.after or "")
    reason = escape(plain(change.reason or ""))
    if change.status == "failed":
        what = title if change.kind == "note" else "a new entity"
        return f"[red]✗ failed[/] {what}: {reason}"
    if change.kind == "rejected":
        return f"[yellow]✗ ignored[/] {reason}"
    if change.status == "rejected":
        return f"[yellow]✗ skipped[/] {title}: {after}"
    if change.status == "proposed":
        return f"[cyan]? proposed[/] {title}: {after}"
    if change.kind == "entry":
        return f"[green]✓ new in this story:[/] {title}"
    return f"[green]✓ {title}'s note now says:[/] {after}"


@dataclass
class TurnWatch:
    """The turns whose changes have been printed."""

    turns: set[int] = field(default_factory=set)

    @classmethod
    def from_now(cls, uow: UnitOfWorkFactory, session_id: uuid.UUID) -> TurnWatch:
        """Every turn whose changes are done already counts as printed (a session continued)."""
        watch = cls()
        report_turns(uow, session_id, watch, Console(quiet=True))
        return watch


def report_turns(
    uow_factory: UnitOfWorkFactory, session_id: uuid.UUID, watch: TurnWatch, console: Console
) -> int:
    """Print, one line per change, what each turn whose jobs are done changed since last time;
    return how many turns are still on their way."""
    waiting = 0
    with uow_factory(read_only=True) as uow:
        for turn in uow.turns.recent(session_id, 1000):
            if turn.turn_index in watch.turns:
                continue
            found = turn_changes(uow, session_id, turn.turn_index)
            if found.state == "pending":
                waiting += 1
                continue
            watch.turns.add(turn.turn_index)
            for change in found.changes:
                console.print("   " + change_line(change), highlight=False)
    return waiting

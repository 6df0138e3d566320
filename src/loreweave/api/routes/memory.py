"""Seeing and steering the memory (DESIGN §1.7): what a turn changed, review (a world's or a
session's mode, approving and rejecting proposed changes), a world's canon drift, writing a
session's note into canon, and a lore entry's revisions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from loreweave.api.deps import LW, Lore, Review
from loreweave.api.schemas import (
    ApproveIn,
    CanonIn,
    CanonOut,
    ChangeOut,
    DecidedOut,
    DriftNoteOut,
    DriftOut,
    EntryOut,
    LoreRevisionOut,
    SessionOut,
    SessionReviewIn,
    TurnChangesOut,
    WorldOut,
    WorldReviewIn,
)
from loreweave.errors import Conflict, InvalidInput, NotFound
from loreweave.memory import canon as canons
from loreweave.memory.changes import turn_changes
from loreweave.memory.review import Decided

router = APIRouter(tags=["memory"])


def changes_path(session_id: uuid.UUID, turn_index: int) -> str:
    """Where a turn's changes are read (the proxy names the previous turn's in a header)."""
    return f"/api/sessions/{session_id}/turns/{turn_index}/changes"


@router.get("/api/sessions/{session_id}/turns/{turn_index}/changes")
def changes(session_id: uuid.UUID, turn_index: int, lw: LW) -> TurnChangesOut:
    """What turn ``turn_index`` changed in the session's memory: each note's text before and
    after this turn's events, each entry created, each update rejected (with its reason), each
    event set aside; ``state`` is ``pending`` while the turn's jobs are on their way."""
    with lw.database.uow(read_only=True) as uow:
        found = turn_changes(uow, session_id, turn_index)
    return TurnChangesOut(
        turn=found.turn,
        state="pending" if found.state == "pending" else "done",
        changes=[ChangeOut.model_validate(c, from_attributes=True) for c in found.changes],
    )


# -- review ---------------------------------------------------------------------------------------
def _decided(lw: LW, decided: Decided) -> DecidedOut:
    lw.wake_workers()  # the key's later events waited behind what was decided
    return DecidedOut(approved=decided.approved, rejected=decided.rejected, redone=decided.redone)


@router.patch("/api/sessions/{session_id}")
def set_session_review(
    session_id: uuid.UUID, body: SessionReviewIn, lw: LW, review: Review
) -> SessionOut:
    """``{"review": "manual"}``: this session's note changes and created entries wait for a
    person (``"auto"``: they count at once, and what waits is approved, in order; ``null``: as
    its world says)."""
    _decided(lw, review.set_session(session_id, body.review))
    with lw.database.uow(read_only=True) as uow:
        return SessionOut.model_validate(uow.sessions.require(session_id))


@router.patch("/api/worlds/{world_id}")
def set_world_review(world_id: uuid.UUID, body: WorldReviewIn, lw: LW, review: Review) -> WorldOut:
    """``{"review": "manual"|"auto"}`` for the world's sessions that do not say otherwise."""
    review.set_world(world_id, body.review)
    lw.wake_workers()
    with lw.database.uow(read_only=True) as uow:
        return WorldOut.model_validate(uow.worlds.require(world_id))


@router.post("/api/sessions/{session_id}/changes/{change_id}/approve")
def approve_change(
    session_id: uuid.UUID,
    change_id: uuid.UUID,
    lw: LW,
    review: Review,
    body: ApproveIn | None = None,
) -> DecidedOut:
    """A proposed change becomes the note, or a proposed entry is live (``{"after": …}``: a
    person's edit of it instead).  409 when the note changed since it was proposed: its events
    are rewritten again."""
    decided = _decided(lw, review.approve(session_id, change_id, body.after if body else None))
    if decided.redone:
        raise Conflict("the note changed since this change was proposed: it is made again")
    return decided


@router.post("/api/sessions/{session_id}/changes/{change_id}/reject")
def reject_change(
    session_id: uuid.UUID, change_id: uuid.UUID, lw: LW, review: Review
) -> DecidedOut:
    """A proposed change is dropped: its events are skipped (the note goes on without them);
    a proposed entry's creation is skipped and the entry goes."""
    return _decided(lw, review.reject(session_id, change_id, by="the HTTP API"))


@router.post("/api/sessions/{session_id}/turns/{turn_index}/changes/approve")
def approve_turn(session_id: uuid.UUID, turn_index: int, lw: LW, review: Review) -> DecidedOut:
    """Every proposed change holding an event of this turn, in order."""
    return _decided(lw, review.approve_turn(session_id, turn_index))


# -- canon drift ----------------------------------------------------------------------------------
@router.get("/api/worlds/{world_id}/drift")
def drift(world_id: uuid.UUID, lw: LW) -> list[DriftOut]:
    """Per lore entry, the sessions whose note departs from its lore: the note, its size and the
    turns whose events it holds (since it was last written into canon)."""
    with lw.database.uow(read_only=True) as uow:
        found = canons.drift(uow, world_id)
    return [
        DriftOut(
            lore_entry_id=d.lore_entry_id,
            title=d.title,
            lore=d.lore,
            sessions=[
                DriftNoteOut(
                    session_id=n.session_id,
                    session_title=n.session_title,
                    note_content=n.text,
                    size=len(n.text),
                    version=n.version,
                    turns=n.turns,
                )
                for n in d.notes
            ],
        )
        for d in found
    ]


@router.post("/api/sessions/{session_id}/notes/{lore_entry_id}/canon")
def write_canon(
    session_id: uuid.UUID,
    lore_entry_id: uuid.UUID,
    body: CanonIn,
    lw: LW,
    propose: bool = False,
) -> CanonOut:
    """Write ``content`` (a person's merge of this session's note into the lore) as the entry's
    lore; the lore it replaces is kept as a revision (undo: restore it), and the session's note
    restarts from the events not yet in canon.  ``?propose=true`` writes nothing: it answers
    the rewrite model's merge proposal, for the person to edit and send."""
    if propose:
        return _proposal(session_id, lore_entry_id, lw)
    if body.content is None:
        raise InvalidInput("give content (the merged text), or ask ?propose=true")
    entry, note, version = lw.lore.canon(session_id, lore_entry_id, body.content)
    return CanonOut(
        lore_entry_id=entry.id,
        lore=entry.content,
        lore_revision=version,
        note_content=note.note_content,
    )


def _proposal(session_id: uuid.UUID, entry_id: uuid.UUID, lw: LW) -> CanonOut:
    with lw.database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        entry = uow.entries.require_visible(entry_id, session)
        note = uow.notes.for_entry(session_id, entry_id)
        if note is None or not note.note_content:
            raise NotFound("session note", f"{session_id}/{entry_id}")
        text = note.note_content
    proposal = canons.propose(
        lw.providers.chat,
        lw.settings.llm_config,
        entry,
        text,
        target_words=lw.settings.pipeline_config.note_target_words,
    )
    return CanonOut(lore_entry_id=entry.id, lore=entry.content, proposal=proposal)


@router.get("/api/lore-entries/{entry_id}/revisions")
def lore_revisions(entry_id: uuid.UUID, lore: Lore) -> list[LoreRevisionOut]:
    """The entry's earlier lore texts, oldest first, each with what replaced it."""
    return [LoreRevisionOut.model_validate(r) for r in lore.revisions(entry_id)]


@router.post("/api/lore-entries/{entry_id}/revisions/{version}/restore")
def restore_lore(entry_id: uuid.UUID, version: int, lore: Lore) -> EntryOut:
    """Make an earlier lore text current again (undo an edit or a canon); the text it replaces
    is kept as a revision too."""
    return EntryOut.model_validate(lore.restore(entry_id, version))

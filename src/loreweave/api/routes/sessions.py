"""A chat session: its turns (plain or streamed), notes, revisions, rollbacks and retrieval."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Generator, Iterable, Sequence
from contextlib import closing
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from loreweave.api.deps import LW, Lore
from loreweave.api.errors import error_status
from loreweave.api.schemas import (
    Clean,
    CompositeOut,
    ContextEntry,
    ContextIn,
    ContextOut,
    EventsOut,
    ForkIn,
    KnowledgeOut,
    KnownEventOut,
    MissingEvent,
    NoteAsOfOut,
    NoteIn,
    NoteOut,
    ObserverOut,
    RevisionOut,
    RollbackIn,
    SearchHit,
    SessionOut,
    TurnChanged,
    TurnEdit,
    TurnIn,
    TurnOut,
    TurnView,
    UsedEntry,
)
from loreweave.api.schemas import Reverted as RevertedOut
from loreweave.api.streaming import in_threads
from loreweave.app.chat import StreamEvent, TurnResult, lore_block
from loreweave.app.follow import AppMessage, to_turns
from loreweave.db.models import USER, ChatTurn, NoteUpdateTask, SessionNote, TaskStatus, utcnow
from loreweave.errors import InvalidInput, NotFound
from loreweave.memory import history
from loreweave.memory import observer as observers
from loreweave.memory.transcript import Reverted
from loreweave.vectors.retrieval import RetrievedEntry

router = APIRouter(tags=["sessions"])
log = logging.getLogger("loreweave.api")


def _turn_out(result: TurnResult) -> TurnOut:
    return TurnOut(
        turn_index=result.turn_index,
        reply=result.reply,
        overhead_ms=result.overhead_seconds * 1000,
        timings_ms={name: seconds * 1000 for name, seconds in result.timings.items()},
        used_entries=[
            UsedEntry(
                lore_entry_id=e.lore_entry_id,
                title=e.title,
                entity_type=e.entity_type,
                score=e.score,
                via=e.via,
            )
            for e in result.used_entries
        ],
    )


def _note_out(note: SessionNote, title: str, missing: Sequence[NoteUpdateTask] = ()) -> NoteOut:
    return NoteOut(
        lore_entry_id=note.lore_entry_id,
        title=title,
        note_content=note.note_content,
        version=note.version,
        last_updated_turn=note.last_updated_turn,
        updated_at=note.updated_at,
        missing_events=[
            MissingEvent(
                id=t.id,
                turn_index=t.turn_index,
                update_summary=t.update_summary,
                error_message=t.error_message,
            )
            for t in missing
            if t.lore_entry_id == note.lore_entry_id
        ],
    )


@router.get("/api/sessions/{session_id}")
def get_session(session_id: uuid.UUID, lw: LW) -> SessionOut:
    with lw.database.uow(read_only=True) as uow:
        return SessionOut.model_validate(uow.sessions.require(session_id))


@router.post("/api/sessions/{session_id}/turns", response_model=TurnOut)
def play_turn(
    session_id: uuid.UUID,
    body: TurnIn,
    lw: LW,
    stream: bool = False,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> TurnOut | StreamingResponse:
    """Play one turn.  ``?stream=true`` answers with server-sent events: ``delta`` events with
    pieces of the reply, then one ``done`` event with the recorded turn.  With ``reply``, the
    turn another app played is recorded and analysed; no chat call is made.  With an
    ``Idempotency-Key`` header, the same key again (a retry after a cut connection) answers
    the turn recorded the first time, recording nothing (409 if it came with another message)."""
    key = idempotency_key
    if body.reply is not None:
        if stream:
            raise InvalidInput("a recorded turn (with a reply) is not streamed")
        recorded = lw.chat.record(
            session_id, body.message, body.reply, key=key, observer=body.observer
        )
        return _turn_out(recorded)
    if not stream:
        result = lw.chat.turn(session_id, body.message, key=key, observer=body.observer)
        lw.metrics.observe_turn(result.overhead_seconds)
        return _turn_out(result)
    # raises 404/422 before streaming
    events = lw.chat.turn_stream(session_id, body.message, key=key, observer=body.observer)

    def sse(events: Generator[StreamEvent, None, None]) -> Generator[str, None, None]:
        """The events as server-sent events; closed early (the client went away), the turn is
        recorded as far as it went."""
        with closing(events):
            try:
                for event in events:
                    if event.kind == "delta":
                        yield f"event: delta\ndata: {json.dumps({'text': event.text})}\n\n"
                    elif event.result is not None:
                        lw.metrics.observe_turn(event.result.overhead_seconds)
                        payload = _turn_out(event.result).model_dump_json()
                        yield f"event: done\ndata: {payload}\n\n"
            except Exception as exc:  # the headers are sent: the stream itself must say it failed
                status, message = error_status(exc)
                if status >= 500:
                    log.exception("streamed turn in session %s failed", session_id)
                error = {"status": status, "detail": message}
                yield f"event: error\ndata: {json.dumps(error)}\n\n"

    return StreamingResponse(in_threads(sse(events)), media_type="text/event-stream")


@router.get("/api/sessions/{session_id}/turns")
def list_turns(
    session_id: uuid.UUID, lw: LW, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[TurnView]:
    with lw.database.uow(read_only=True) as uow:
        uow.sessions.require(session_id)
        return [TurnView.model_validate(t) for t in uow.turns.recent(session_id, limit)]


def _reverted(report: Reverted) -> RevertedOut:
    return RevertedOut.model_validate(report, from_attributes=True)


def _changed(lw: LW, turn: ChatTurn, report: Reverted) -> TurnChanged:
    lw.wake_workers()  # turns to analyse again; tasks to redo
    return TurnChanged(turn=TurnView.model_validate(turn), reverted=_reverted(report))


@router.delete("/api/sessions/{session_id}/turns/{turn_index}")
def delete_turns(session_id: uuid.UUID, turn_index: int, lw: LW) -> RevertedOut:
    """Remove this turn and every later one; the session's memory becomes exactly what it was
    after the turn before (entries those turns created are deleted unless promoted or edited by
    a person: then kept, and said so).  Work in flight for them is discarded."""
    report = lw.transcript.delete_turns(session_id, turn_index)
    lw.wake_workers()
    return _reverted(report)


@router.patch("/api/sessions/{session_id}/turns/{turn_index}")
def edit_turn(session_id: uuid.UUID, turn_index: int, body: TurnEdit, lw: LW) -> TurnChanged:
    """Edit a turn's text, or pick one of its earlier replies (``alternative``): the memory
    reverts to before this turn, and this turn and the later ones are analysed again."""
    if body.model_dump(exclude_none=True) == {}:
        raise InvalidInput("give user_message, assistant_message or alternative")
    turn, report = lw.transcript.edit_turn(
        session_id,
        turn_index,
        user_message=body.user_message,
        assistant_message=body.assistant_message,
        alternative=body.alternative,
    )
    return _changed(lw, turn, report)


@router.post("/api/sessions/{session_id}/turns/{turn_index}/regenerate")
def regenerate(session_id: uuid.UUID, turn_index: int, lw: LW) -> TurnChanged:
    """A new reply for the last turn (409 for another): the old reply is kept as an
    alternative, its memory changes undone, the new one analysed."""
    turn, report = lw.chat.regenerate(session_id, turn_index)
    return _changed(lw, turn, report)


@router.post("/api/sessions/{session_id}/fork", status_code=201)
def fork(session_id: uuid.UUID, body: ForkIn, lw: LW) -> SessionOut:
    """A new session with turns 0…at_turn and exactly the memory this one had after at_turn;
    no LLM call.  This session is unaffected."""
    forked = lw.transcript.fork(session_id, body.at_turn, body.title)
    lw.wake_workers()
    return SessionOut.model_validate(forked)


@router.post("/api/sessions/{session_id}/archive")
def archive_session(session_id: uuid.UUID, lw: LW, archived: bool = True) -> SessionOut:
    """Set a session aside (an abandoned side of a branch): no proxied request is matched
    against it any more; its turns and memory are kept.  ``archived=false`` brings it back."""
    with lw.database.uow() as uow:
        session = uow.sessions.require(session_id)
        session.archived_at = utcnow() if archived else None
        uow.commit()
        return SessionOut.model_validate(session)


@router.delete("/api/sessions/{session_id}", status_code=204)
def delete_session(session_id: uuid.UUID, lw: LW) -> Response:
    """The session and everything that belongs to it (turns, notes, jobs, created entries)."""
    lw.transcript.delete_session(session_id)
    return Response(status_code=204)


@router.get("/api/sessions/{session_id}/notes", response_model=None)
def list_notes(
    session_id: uuid.UUID,
    lw: LW,
    as_of_turn: Annotated[int | None, Query(ge=0)] = None,
    observer: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> list[NoteOut] | list[NoteAsOfOut]:
    """The session's notes now; with ``as_of_turn``, as they were after that turn, and with
    ``observer`` (a Character's title, alias or id, or USER) what that one knew then (as of the
    last turn when no turn is given), each with its events: no LLM call."""
    if as_of_turn is not None or observer is not None:
        return _notes_as_of(session_id, lw, as_of_turn, observer)
    with lw.database.uow(read_only=True) as uow:
        uow.sessions.require(session_id)
        missing = uow.session.scalars(
            select(NoteUpdateTask)
            .where(
                NoteUpdateTask.session_id == session_id,
                NoteUpdateTask.status == TaskStatus.FAILED.value,
            )
            .order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
        ).all()
        return [
            _note_out(note, uow.entries.require(note.lore_entry_id).title, missing)
            for note in uow.notes.in_session(session_id)
        ]


def _notes_as_of(
    session_id: uuid.UUID, lw: LW, turn: int | None, observer: str | None
) -> list[NoteAsOfOut]:
    with lw.database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        if turn is None:
            turn = max(uow.turns.next_index(session_id) - 1, 0)
        viewer = observers.resolve(uow, session, observer)
        found = history.notes_as_of(uow, session, turn, viewer)
    return [
        NoteAsOfOut(
            lore_entry_id=n.lore_entry_id,
            title=n.title,
            note_content=n.text,
            version=n.version,
            last_updated_turn=n.last_turn,
            as_of_turn=turn,
            events=_known_events(n.events),
        )
        for n in found
    ]


@router.get("/api/sessions/{session_id}/notes/{lore_entry_id}/revisions")
def list_revisions(session_id: uuid.UUID, lore_entry_id: uuid.UUID, lw: LW) -> list[RevisionOut]:
    with lw.database.uow(read_only=True) as uow:
        note = uow.notes.for_entry(session_id, lore_entry_id)
        if note is None:
            raise NotFound("session note", f"{session_id}/{lore_entry_id}")
        return [RevisionOut.model_validate(r) for r in uow.notes.revisions(note.id)]


@router.post("/api/sessions/{session_id}/notes/{lore_entry_id}/rollback")
def rollback_note(
    session_id: uuid.UUID, lore_entry_id: uuid.UUID, body: RollbackIn, lore: Lore
) -> NoteOut:
    note = lore.rollback_note(session_id, lore_entry_id, body.version)
    return _note_out(note, lore.get(lore_entry_id).title)


@router.put("/api/sessions/{session_id}/notes/{lore_entry_id}")
def edit_note(session_id: uuid.UUID, lore_entry_id: uuid.UUID, body: NoteIn, lore: Lore) -> NoteOut:
    """A person's edit of a note (a new version; the previous text kept as a revision).  A
    rewrite already waiting on the LLM will rewrite over this text, never over the old one."""
    note = lore.edit_note(session_id, lore_entry_id, body.note_content)
    return _note_out(note, lore.get(lore_entry_id).title)


@router.get("/api/sessions/{session_id}/search")
def search(
    session_id: uuid.UUID,
    lw: LW,
    q: Annotated[str, Query(min_length=1, max_length=2_000), Clean],
    k: Annotated[int | None, Query(ge=1, le=50)] = None,
) -> list[SearchHit]:
    """Exactly what a chat turn with message ``q`` would hand the chat model now, in order: the
    session's recent turns in the query, constant and keyword-activated entries first, then the
    fused vector and BM25 ranking, within the token budget (``k``: the setting unless given)."""
    return [
        SearchHit(
            lore_entry_id=hit.lore_entry_id,
            title=hit.title,
            entity_type=hit.entity_type,
            score=hit.score,
            via=hit.via,
            text=hit.text,
            tokens=hit.tokens,
        )
        for hit in lw.retriever.search(session_id, q, k)
    ]


@router.post("/api/sessions/{session_id}/context")
def context(session_id: uuid.UUID, body: ContextIn, lw: LW) -> ContextOut:
    """The lore block for ``message``, for an app that builds its own prompt: exactly what
    loreweave's own turn would give its chat model (the same retrieval and budget), with why
    each entry is there and what did not fit."""
    history = (
        to_turns([AppMessage(m.role, m.content) for m in body.history])
        if body.history is not None
        else None
    )
    found = lw.retriever.retrieve(
        session_id,
        body.message,
        k=body.k,
        token_budget=body.token_budget,
        history=history,
        observer=body.observer,
    )

    def entry(hit: RetrievedEntry) -> ContextEntry:
        return ContextEntry(
            lore_entry_id=hit.lore_entry_id,
            title=hit.title,
            entity_type=hit.entity_type,
            why=hit.via,
            score=hit.score,
            tokens=hit.tokens,
        )

    return ContextOut(
        text=lore_block(found.entries, lw.chat.names),
        entries=[entry(h) for h in found.entries],
        tokens=found.tokens,
        skipped=[entry(h) for h in found.skipped],
        observer=found.observer.name if found.observer else None,
    )


@router.get("/api/sessions/{session_id}/events")
def session_events(
    session_id: uuid.UUID,
    lw: LW,
    observer: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> EventsOut:
    """Who knows what (DESIGN §1.6): each entity's events with their witnesses, all of them
    (the narrator), or only those ``observer`` (a Character's title, alias or id, or USER)
    knows; an entity the session created appears only to those who met it."""
    with lw.database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        viewer = observers.resolve(uow, session, observer)
        found = observers.knowledge(uow, session, viewer)
        who = [ObserverOut(id=str(e.id), name=e.title) for e in observers.characters(uow, session)]
    return EventsOut(
        observer=viewer.name if viewer else None,
        observers=[*who, ObserverOut(id=USER, name="User")],
        entities=[
            KnowledgeOut(
                lore_entry_id=k.lore_entry_id,
                title=k.title,
                events=_known_events(k.events),
            )
            for k in found
        ],
    )


@router.get("/api/composite-documents/{lore_entry_id}/{session_id}")
def composite_document(lore_entry_id: uuid.UUID, session_id: uuid.UUID, lw: LW) -> CompositeOut:
    """The entity as this session sees it (404 if the session cannot see it)."""
    with lw.database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        entry = uow.entries.require_visible(lore_entry_id, session)
        document = lw.vectors.document(uow, entry, session.id)
        note = uow.notes.for_entry(session.id, entry.id)
    return CompositeOut(
        lore_entry_id=entry.id, session_id=session.id, text=document.text, has_note=note is not None
    )


def _known_events(events: Iterable[Any]) -> list[KnownEventOut]:
    """An entity's events as the API shows them, with their turn and witnesses."""
    return [
        KnownEventOut(
            turn_index=e.turn_index,
            update_summary=e.summary,
            status=e.status,
            known_by=e.known_by,
        )
        for e in events
    ]

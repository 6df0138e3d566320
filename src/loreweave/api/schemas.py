"""Request and response bodies of the HTTP API: every input validated at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from loreweave.validation import unsafe_reason


def _clean(value: str) -> str:
    reason = unsafe_reason(value)
    if reason is not None:
        raise ValueError(reason)
    return value


# for query parameters: the request bodies are checked whole by _In
Clean = AfterValidator(_clean)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Kind = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Content = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Labels = Annotated[list[Label], Field(max_length=50)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_unsafe_text(self) -> _In:
        """No NUL and no lone surrogate anywhere in a request body."""
        for name in type(self).model_fields:
            for value in _strings(getattr(self, name)):
                if (reason := unsafe_reason(value)) is not None:
                    raise ValueError(f"{name} {reason}")
        return self


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WorldIn(_In):
    name: Name
    description: Annotated[str, StringConstraints(max_length=5_000)] = ""


class WorldOut(_Out):
    id: uuid.UUID
    name: str
    description: str
    created_at: datetime
    review: str = "auto"  # "manual": its sessions' memory changes wait for a person


class Placement(BaseModel):
    """Where SillyTavern puts the entry in its prompt (kept for export; loreweave's own prompt
    orders entries by relevance)."""

    model_config = ConfigDict(extra="forbid")
    order: Annotated[int, Field(ge=-100_000, le=100_000)] | None = None
    position: Annotated[int, Field(ge=0, le=7)] | None = None  # 0 before the character … 7 outlet
    depth: Annotated[int, Field(ge=0, le=10_000)] | None = None
    probability: Annotated[int, Field(ge=0, le=100)] | None = None


# how secondary keys filter a key match (SillyTavern's selectiveLogic)
KeyLogic = Literal["and_any", "and_all", "not_any", "not_all"]


class EntryIn(_In):
    title: Name
    entity_type: Kind = "Other"
    content: Content
    tags: Labels = []
    aliases: Labels = []
    secondary_keys: Labels = []
    key_logic: KeyLogic = "and_any"
    constant: bool = False
    enabled: bool = True
    placement: Placement = Placement()


class EntryPatch(_In):
    title: Name | None = None
    entity_type: Kind | None = None
    content: Content | None = None
    tags: Labels | None = None
    aliases: Labels | None = None
    secondary_keys: Labels | None = None
    key_logic: KeyLogic | None = None
    constant: bool | None = None
    enabled: bool | None = None
    placement: Placement | None = None


class EntryOut(_Out):
    id: uuid.UUID
    world_id: uuid.UUID
    title: str
    entity_type: str
    content: str
    tags: list[str]
    aliases: list[str]
    secondary_keys: list[str]
    key_logic: str
    constant: bool
    enabled: bool
    placement: dict[str, int]
    is_dynamically_generated: bool
    origin_session_id: uuid.UUID | None
    origin_turn_index: int | None  # the turn whose analysis created it
    edited_by_person: bool
    created_at: datetime
    updated_at: datetime


class SessionIn(_In):
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class SessionOut(_Out):
    id: uuid.UUID
    world_id: uuid.UUID
    title: str
    created_at: datetime
    forked_from_id: uuid.UUID | None = None  # a fork: the session it was copied from
    forked_at_turn: int | None = None  # … with that session's turns up to this one
    last_matched_at: datetime | None = None  # a proxied request's last view of it
    archived_at: datetime | None = None  # set aside by a person: no request matches it
    # an abandoned side of a branch: the related session a request has matched since
    abandoned_for: uuid.UUID | None = None
    review: str | None = None  # "manual" | "auto"; None: its world's


Message = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8_000)]
Reply = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]


# whose view of the world (DESIGN §1.6): a Character's title, alias or id, or USER
Observer = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TurnIn(_In):
    message: Message
    # a turn another app played: recorded and analysed, no chat call made
    reply: Annotated[str, StringConstraints(max_length=32_000)] | None = None
    # a played turn: the lore as this character knows it; a recorded one: who speaks the reply
    observer: Observer | None = None


class HistoryMessage(_In):
    role: Literal["user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=32_000)]


class ContextIn(_In):
    message: Message
    # the app's recent messages, oldest first; by default the session's recorded turns
    history: Annotated[list[HistoryMessage], Field(max_length=200)] | None = None
    token_budget: Annotated[int, Field(ge=50, le=200_000)] | None = None
    k: Annotated[int, Field(ge=1, le=50)] | None = None
    # the lore as this character knows it (none: the narrator's omniscient view)
    observer: Observer | None = None


class ContextEntry(BaseModel):
    lore_entry_id: uuid.UUID
    title: str
    entity_type: str
    why: str  # constant | keyword | vector | bm25
    score: float | None
    tokens: int


class ContextOut(BaseModel):
    text: str  # the lore block for a system prompt (session notes take priority)
    entries: list[ContextEntry]
    tokens: int
    skipped: list[ContextEntry]  # ranked, but over the token budget
    observer: str | None = None  # whose view the text is (None: the narrator's)


class UsedEntry(BaseModel):
    lore_entry_id: uuid.UUID
    title: str
    entity_type: str
    score: float | None
    via: str


class TurnOut(BaseModel):
    turn_index: int
    reply: str
    used_entries: list[UsedEntry]
    overhead_ms: float  # the service's own time: everything but the main LLM call
    timings_ms: dict[str, float]  # retrieval, prompt, llm, persist


class TurnView(_Out):
    id: uuid.UUID
    turn_index: int
    user_message: str
    assistant_message: str
    speaker: str | None = None  # who spoke the reply: a group chat's member (None: the narrator)
    alternatives: list[str]  # earlier replies; PATCH {"alternative": i} picks one
    used_entry_ids: list[str]
    prompt_lore: dict[
        str, Any
    ]  # {text: the lore block, entries: [{id, title, why, score, tokens}]}
    processing_status: str
    processing_errors: str | None
    created_at: datetime


class MissingEvent(BaseModel):
    """An event of the note that failed for good and was set aside: the note goes on without
    it until it is retried (then folded in its place) or skipped."""

    id: uuid.UUID
    turn_index: int
    update_summary: str
    error_message: str | None


class NoteOut(BaseModel):
    lore_entry_id: uuid.UUID
    title: str
    note_content: str
    version: int
    last_updated_turn: int | None
    updated_at: datetime
    missing_events: list[MissingEvent] = []


class KnownEventOut(BaseModel):
    turn_index: int
    update_summary: str
    status: str
    known_by: list[str]  # witnesses by name; empty: public


class KnowledgeOut(BaseModel):
    lore_entry_id: uuid.UUID
    title: str
    events: list[KnownEventOut]


class ObserverOut(BaseModel):
    id: str  # an entry id, or USER
    name: str


class EventsOut(BaseModel):
    """Who knows what (DESIGN §1.6): each entity's events as ``observer`` knows them (None:
    the narrator, every event), and who may observe."""

    observer: str | None
    observers: list[ObserverOut]
    entities: list[KnowledgeOut]


class RevisionOut(_Out):
    version: int
    note_content: str
    last_updated_turn: int | None
    reason: str
    created_at: datetime


class RollbackIn(_In):
    version: Annotated[int, Field(ge=1)]


class TurnEdit(_In):
    user_message: Message | None = None
    assistant_message: Reply | None = None
    alternative: Annotated[int, Field(ge=0)] | None = None


class Reverted(BaseModel):
    """What undoing turns changed in the session's memory."""

    from_turn: int
    turns_removed: list[int]
    turns_to_analyse: list[int]
    notes: list[dict[str, Any]]  # reverted notes: their text now (None: removed)
    entries_removed: list[dict[str, Any]]
    entries_kept: list[dict[str, Any]]  # with the reason they were kept
    jobs_cancelled: int
    jobs_released: int = 0  # jobs that shared a cancelled claim: claimable at once


class TurnChanged(BaseModel):
    turn: TurnView
    reverted: Reverted


class ForkIn(_In):
    at_turn: Annotated[int, Field(ge=0)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class NoteIn(_In):
    note_content: Content


class SearchHit(BaseModel):
    lore_entry_id: uuid.UUID
    title: str
    entity_type: str
    score: float | None  # reciprocal-rank-fusion score; None for a constant entry
    via: str  # constant | keyword | vector | bm25: why it is there
    text: str
    tokens: int


class CompositeOut(BaseModel):
    lore_entry_id: uuid.UUID
    session_id: uuid.UUID
    text: str
    has_note: bool


QueueStatus = dict[str, Any]


# -- seeing and steering the memory (DESIGN §1.7) ------------------------------------------------


class ChangeOut(BaseModel):
    """One memory change of a turn: a note's text ``before`` and ``after`` this turn's events
    (``kind`` note), an entry created (``entry``: its lore as ``after``), an update or creation
    the pipeline rejected (``rejected``, with its ``reason``); an event set aside (``failed``)
    or skipped by a person (``rejected``) has what it would have said as ``after``."""

    id: str
    kind: Literal["note", "entry", "rejected"]
    entry_id: uuid.UUID | None
    title: str | None
    before: str | None
    after: str | None
    status: Literal["applied", "proposed", "rejected", "failed"]
    reason: str | None
    known_by: list[str]  # witnesses by name; empty: public


class TurnChangesOut(BaseModel):
    turn: int
    state: Literal["pending", "done"]  # pending while the turn's jobs are on their way
    changes: list[ChangeOut]


class NoteAsOfOut(BaseModel):
    """A note as it was after turn ``as_of_turn`` (for an observer: what that one knew of the
    entity then, with the events it knew, each with its turn and who else knew it)."""

    lore_entry_id: uuid.UUID
    title: str
    note_content: str
    version: int  # the note's version then (0: the observer's view holds no note of it)
    last_updated_turn: int | None
    as_of_turn: int
    events: list[KnownEventOut]


class DriftNoteOut(BaseModel):
    session_id: uuid.UUID
    session_title: str
    note_content: str
    size: int  # characters
    version: int
    turns: list[int]  # the turns whose events the note holds (since its last canon)


class DriftOut(BaseModel):
    """A lore entry and the sessions whose note departs from it."""

    lore_entry_id: uuid.UUID
    title: str
    lore: str
    sessions: list[DriftNoteOut]


class CanonIn(_In):
    content: Content | None = None  # the merged text: required unless a proposal is asked


class CanonOut(BaseModel):
    """The entry's lore now (``proposal``: a merge the rewrite model proposes, nothing written),
    and the lore revision that keeps what it replaced."""

    lore_entry_id: uuid.UUID
    lore: str
    proposal: str | None = None
    lore_revision: int | None = None
    note_content: str | None = None  # the session's note after the canon (None: none)


class LoreRevisionOut(_Out):
    version: int
    content: str
    reason: str
    session_id: uuid.UUID | None
    created_at: datetime


class WorldReviewIn(_In):
    review: Literal["manual", "auto"]


class SessionReviewIn(_In):
    review: Literal["manual", "auto"] | None  # None: as its world says


class ApproveIn(_In):
    after: Content | None = None  # a person's edit: the note (the new entry's text) instead


class DecidedOut(BaseModel):
    """What a review decision did: changes approved, rejected, and redone (the note changed
    since they were proposed: their events are rewritten again, to be reviewed anew)."""

    approved: int
    rejected: int
    redone: int

"""The relational schema: the database is the truth (DESIGN §2).

Worlds hold lore entries and chat sessions; a session holds turns and one note per entry it has
touched; every rewrite of a note keeps the previous text as a revision.  The two task tables are
the queues' truth (DESIGN §3), and ``entity_vectors`` holds every embedding FAISS caches.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
    true,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, synonym, validates

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on every database (SQLite keeps
    no zone: it stores the UTC wall time and gets the zone back here)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


# The persona of the person playing, as a witness of an event (DESIGN §1.6): stored in
# ``known_by`` beside Character entry ids.
USER = "USER"


class TaskStatus(enum.StrEnum):
    """Life of every job (a turn's analysis, a note update, an entity creation):
    pending → processing → done | pending (retry) | failed → pending (manual retry) | skipped.

    ``failed`` is unfinished but set aside: a failed note update or creation does not hold the
    later jobs of its key (they go on; a retry re-applies it in order), a failed analysis holds
    its session's later analyses until a person retries or skips it.  ``done`` and ``skipped``
    are finished."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


# A turn's analysis (the spec's ``processing_status``) lives the same life as a task.
TurnStatus = TaskStatus
UNFINISHED = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value, TaskStatus.FAILED.value)
ON_ITS_WAY = (TaskStatus.PENDING.value, TaskStatus.PROCESSING.value)  # unfinished, not set aside


AUTO, MANUAL = "auto", "manual"  # review modes (DESIGN §1.7)

WORLD_INFO = "sillytavern_world_info"  # LoreEntry.extra's key for World Info fields


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class World(Timestamped, Base):
    __tablename__ = "worlds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    # the name as worlds are told apart (and found by name): one world per name, in any case
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # An imported lorebook's own fields (World Info's name, scan_depth, token_budget…), by
    # format, kept for a faithful export.
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=sql_text("'{}'"))
    # how its sessions' memory changes count (DESIGN §1.7): "auto" at once, "manual" once a
    # person approves them (a session may say otherwise)
    review: Mapped[str] = mapped_column(String(10), default=AUTO, server_default=AUTO)

    entries: Mapped[list[LoreEntry]] = relationship(
        back_populates="world", cascade="all, delete-orphan", passive_deletes=True
    )
    sessions: Mapped[list[ChatSession]] = relationship(
        back_populates="world", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("name")
    def _keyed(self, _key: str, name: str) -> str:
        self.name_key = world_key(name)
        return name


def world_key(name: str) -> str:
    """How world names are compared: stripped, whitespace collapsed, case folded."""
    return " ".join(name.split()).casefold()


class LoreEntry(Timestamped, Base):
    """Canonical, static truth about one entity; shared by every session of its world.

    An entry created by the pipeline is ``is_dynamically_generated`` and carries the session that
    created it in ``origin_session_id``: it is visible to that session only, until promoted.
    """

    __tablename__ = "lore_entries"
    __table_args__ = (Index("ix_lore_entries_world_origin", "world_id", "origin_session_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    world_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("worlds.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(50), default="Other")
    content: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    aliases: Mapped[list[str]] = mapped_column(default=list)
    # Lorebook activation (SillyTavern World Info semantics): the title and aliases are the
    # keys; when secondary keys are set, ``key_logic`` says how they filter a key match.
    # A constant entry is always retrieved; a disabled one never.
    secondary_keys: Mapped[list[str]] = mapped_column(default=list, server_default=sql_text("'[]'"))
    key_logic: Mapped[str] = mapped_column(String(10), default="and_any", server_default="and_any")
    constant: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # where SillyTavern puts the entry in its prompt, kept for export and editing: order,
    # position (0 before the character … 7 outlet), depth, probability (%)
    placement: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=sql_text("'{}'"))
    is_dynamically_generated: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    origin_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE"), default=None
    )
    # provenance: the turn whose analysis created it (kept when promoted)
    origin_turn_index: Mapped[int | None] = mapped_column(Integer, default=None)
    # made by a creation in a session under manual review (DESIGN §1.7): seen by no one, no
    # vector, until a person approves it (its change waits as a NoteProposal of the entry)
    proposed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # a person changed it: undoing its turn keeps it
    edited_by_person: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Fields of imported formats, by format (WORLD_INFO…), kept for a faithful export; the few
    # loreweave honours are read through :meth:`world_info`.
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    world: Mapped[World] = relationship(back_populates="entries")

    def world_info(self, field: str, default: Any = None) -> Any:
        """A SillyTavern World Info field the entry was imported with (``ignoreBudget``,
        ``triggers``, ``outletName``…), or ``default``."""
        fields = (self.extra or {}).get(WORLD_INFO)
        return fields.get(field, default) if isinstance(fields, dict) else default


class LoreEntryRevision(Base):
    """The text a lore entry had before a person changed it (an edit, a session's note written
    into canon, a restore): its history, and what an undo restores."""

    __tablename__ = "lore_entry_revisions"
    __table_args__ = (UniqueConstraint("lore_entry_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    lore_entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lore_entries.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)  # 1, 2… per entry
    content: Mapped[str] = mapped_column(Text)
    # what replaced it: "edit", "canon" (a session's note merged into the lore), "restore"
    reason: Mapped[str] = mapped_column(String(20), default="edit")
    # the session whose note was written into canon
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatSession(Timestamped, Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("ix_chat_sessions_world_caller", "world_id", "caller"),
        Index("ix_chat_sessions_forked_from", "forked_from_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    world_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("worlds.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200), default="")
    # who sent the proxy's requests (a hash of the API key, the OpenAI ``user`` field and the
    # X-Loreweave-Chat header): the proxy matches a request only against its caller's chats;
    # None for a session made through the REST API, or by a caller who named nothing
    caller: Mapped[str | None] = mapped_column(String(64), default=None)
    # when its latest turn arrived: a session played now goes before an old backlog
    last_turn_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    # a fork: the session it was copied from (None once that one is deleted) and its last turn
    forked_from_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="SET NULL", name="fk_chat_sessions_forked_from"),
        default=None,
    )
    forked_at_turn: Mapped[int | None] = mapped_column(Integer, default=None)
    # when a proxied request last was a view of it (the side of a branch an app still shows)
    last_matched_at: Mapped[datetime | None] = mapped_column(default=None)
    # set aside by a person: no request is matched against it any more; its memory is kept
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    # "auto" | "manual" (DESIGN §1.7); None: its world's
    review: Mapped[str | None] = mapped_column(String(10), default=None)

    world: Mapped[World] = relationship(back_populates="sessions")


class ChatTurn(Base):
    """One exchange.  Its pending ``processing_status`` is the analysis job: written in the same
    transaction as the turn (a transactional outbox), it cannot be lost."""

    __tablename__ = "chat_turns"
    __table_args__ = (
        UniqueConstraint("session_id", "turn_index"),
        UniqueConstraint(
            "session_id", "idempotency_key", name="uq_chat_turns_session_idempotency_key"
        ),
        Index("ix_chat_turns_claim", "processing_status", "next_attempt_at"),
        Index("ix_chat_turns_session_status", "session_id", "processing_status", "turn_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE")
    )
    turn_index: Mapped[int] = mapped_column(Integer)
    user_message: Mapped[str] = mapped_column(Text)
    assistant_message: Mapped[str] = mapped_column(Text)
    used_entry_ids: Mapped[list[str]] = mapped_column(default=list)
    # what the chat prompt was given: {"text": the lore block, "entries": [{id, title, why,
    # score, tokens}]} -- the UI's prompt inspector; empty for a turn played elsewhere
    prompt_lore: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=sql_text("'{}'")
    )
    # earlier replies to this message (regenerated or swapped out), oldest first
    alternatives: Mapped[list[str]] = mapped_column(default=list, server_default=sql_text("'[]'"))
    # who spoke the reply, when it is not the one narrator: a member of a group chat ("Mira");
    # the reply is stored without the "Mira: " an app puts before it
    speaker: Mapped[str | None] = mapped_column(String(100), default=None)
    # the client's Idempotency-Key: the same key again in this session is this turn, not a new one
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    processing_status: Mapped[str] = mapped_column(
        String(20), default=TurnStatus.PENDING, server_default=TurnStatus.PENDING.value
    )
    last_processed_at: Mapped[datetime | None] = mapped_column(default=None)
    processing_errors: Mapped[str | None] = mapped_column(Text, default=None)
    # failed attempts, as on the task tables
    retry_count: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    worker_id: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The job life-cycle's names for the spec's columns (queue/jobs.py treats every job alike).
    status: Mapped[str] = synonym("processing_status")
    error_message: Mapped[str | None] = synonym("processing_errors")
    processed_at: Mapped[datetime | None] = synonym("last_processed_at")


class SessionNote(Timestamped, Base):
    """Session-specific, evolving truth about one entry: the game master's notepad."""

    __tablename__ = "session_notes"
    __table_args__ = (UniqueConstraint("session_id", "lore_entry_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE")
    )
    lore_entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lore_entries.id", ondelete="CASCADE"), index=True
    )
    note_content: Mapped[str] = mapped_column(Text)
    last_updated_turn: Mapped[int | None] = mapped_column(Integer, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=sql_text("1"))


class SessionNoteRevision(Base):
    """The text a note had before one of its rewrites: backup, audit trail, rollback source."""

    __tablename__ = "session_note_revisions"
    __table_args__ = (UniqueConstraint("note_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    note_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session_notes.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    note_content: Mapped[str] = mapped_column(Text)
    last_updated_turn: Mapped[int | None] = mapped_column(Integer, default=None)
    reason: Mapped[str] = mapped_column(String(20), default="rewrite")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NoteProposal(Base):
    """A change waiting for a person (manual review, DESIGN §1.7) of one (session, entry) key:
    the rewrite of some events, done but not applied — its events are finished (``done``, no
    ``applied_version``) — or, when its entry is ``proposed``, the entry's creation (its one
    task id that of the creation).  The key's later events wait behind it.  Approved, it becomes
    the note (the entry); rejected, its events (the creation) are skipped."""

    __tablename__ = "note_proposals"
    __table_args__ = (UniqueConstraint("session_id", "lore_entry_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE")
    )
    lore_entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lore_entries.id", ondelete="CASCADE"), index=True
    )
    base_version: Mapped[int] = mapped_column(Integer)  # the note version rewritten (0: none)
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    task_ids: Mapped[list[str]] = mapped_column(JSON(), default=list)  # its events
    turns: Mapped[list[int]] = mapped_column(JSON(), default=list)  # the turns they serve
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobColumns:
    """The job columns of a task table (both of the spec's, and a job kind added since):
    the spec's status, turn and retries, plus leases and back-off.  A table of jobs adds its
    ``id``, its ``session_id`` and what its jobs are about."""

    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.PENDING)
    turn_index: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    retry_count: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    worker_id: Mapped[str | None] = mapped_column(String(100), default=None)


class NoteUpdateTask(JobColumns, Base):
    __tablename__ = "note_update_tasks"
    __table_args__ = (
        Index("ix_note_update_tasks_claim", "status", "next_attempt_at"),
        Index("ix_note_update_tasks_key", "session_id", "lore_entry_id", "status", "turn_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    lore_entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lore_entries.id", ondelete="CASCADE")
    )
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE")
    )
    update_summary: Mapped[str] = mapped_column(Text)
    # The note version this event was folded into: an event is applied exactly once.
    applied_version: Mapped[int | None] = mapped_column(Integer, default=None)
    # Who witnessed or learned it (DESIGN §1.6): Character entry ids and "USER" (the persona of
    # the person playing); empty: public, everyone present knows it.
    known_by: Mapped[list[str]] = mapped_column(JSON(), default=list)


class EntityCreationTask(JobColumns, Base):
    __tablename__ = "entity_creation_tasks"
    __table_args__ = (
        Index("ix_entity_creation_tasks_claim", "status", "next_attempt_at"),
        Index("ix_entity_creation_tasks_session", "session_id", "status", "turn_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    entity_type: Mapped[str] = mapped_column(String(50))
    creation_summary: Mapped[str] = mapped_column(Text)
    # the newcomer's name as its turn writes it (checked there by the analysis): the new
    # entry's title; None (tasks written before it): the creation LLM names it
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE")
    )
    created_lore_entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lore_entries.id", ondelete="SET NULL"), default=None
    )
    # "created" a new entry, "merged" into an existing one as a note update, or "rejected":
    # not grounded in the story (its name in none of the turns its analysis saw; the reason in
    # error_message).
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    # changes of the new entity in later turns of the same batched analysis, applied as its note
    # updates once it exists: [{"turn_index": n, "update_summary": "...", "known_by": [...]}]
    followups: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    # who met the newcomer (as NoteUpdateTask.known_by); empty: everyone present
    known_by: Mapped[list[str]] = mapped_column(JSON(), default=list)


class EntityVector(Base):
    """The embedding of one document: an entry's base document (``session_id`` NULL, world tier)
    or its composite document in one session (session overlay).

    ``version`` grows with every write across the whole table (see :class:`SyncCounter`), so a
    process holding FAISS caches applies exactly the rows newer than what it has seen.  Deleting
    keeps a tombstone (``is_deleted``) so caches learn about it the same way.
    """

    __tablename__ = "entity_vectors"
    __table_args__ = (
        Index(
            "uq_entity_vectors_base",
            "lore_entry_id",
            "part",
            unique=True,
            sqlite_where=sql_text("session_id IS NULL"),
            postgresql_where=sql_text("session_id IS NULL"),
        ),
        Index(
            "uq_entity_vectors_overlay",
            "lore_entry_id",
            "session_id",
            "part",
            unique=True,
            sqlite_where=sql_text("session_id IS NOT NULL"),
            postgresql_where=sql_text("session_id IS NOT NULL"),
        ),
        Index("ix_entity_vectors_world_version", "world_id", "version"),
        Index("ix_entity_vectors_session_version", "session_id", "version"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    world_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("worlds.id", ondelete="CASCADE"))
    # No foreign key: a deleted entry's vector stays as a tombstone, so caches learn of it.
    lore_entry_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE"), default=None
    )
    # which search key of the document (see memory/composite.py): ``document``, ``note``, …
    part: Mapped[str] = mapped_column(String(32), default="document", server_default="document")
    text: Mapped[str] = mapped_column(Text)  # the key's text
    text_hash: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(BigInteger)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertState(Base):
    """One alert condition, shared by every process of a deployment: a process that observes
    the condition refreshes ``last_seen_at``; the transitions (firing, resolved) happen under
    the row's lock, so one process sends each message."""

    __tablename__ = "alerts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))  # firing | resolved
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_notified_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class RequestKey(Base):
    """An Idempotency-Key held by the request answering it, until its turn is recorded or it
    failed: the same key sent again meanwhile waits for that answer instead of calling the chat
    model a second time.  ``scope``: whose keys (a session's; a proxy caller's, in a world);
    ``expires_at``: a holder that died frees its key then."""

    __tablename__ = "request_keys"

    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()


class SyncCounter(Base):
    """Named monotonic counters.  Incrementing one locks its row until commit, so the versions
    that commit are handed out in commit order: a reader never skips a version."""

    __tablename__ = "sync_counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)

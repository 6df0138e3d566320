"""Job kinds (DESIGN §3): what a kind is, the registry of a process's kinds, and what every
kind's jobs go through — claim, the claim's fence, a person's retry and skip, the sweep of
expired leases.  What each step does to a row is :mod:`loreweave.db.lifecycle`'s; the spec's
three kinds are defined in :mod:`loreweave.queue.kinds`.

Every job row — a turn's analysis (``chat_turns``), a note update, an entity creation, any kind
added since — has the same life: ``pending → processing → done``, back to ``pending`` with
back-off after a failed attempt, ``failed`` after ``max_retries`` failed attempts (or at once for
an error no retry can fix), and from ``failed`` a person retries it (``pending``) or skips it
(``skipped``).  A claim holds a lease; an attempt that crashes or whose lease expires counts as a
failed attempt.

A kind is one object (:class:`JobKind`): its table, its claim (how its ready jobs are found, in
the order its key needs), what handles a claimed job, its settings, and how its jobs read to a
person.  A process's kinds are a :class:`Kinds` registry, built once by the composition root and
read by the pipeline, the status, the metrics and the alerts alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from loreweave.config import QueueConfig, Settings
from loreweave.db import lifecycle
from loreweave.db.dialect import is_postgresql
from loreweave.db.lifecycle import JobTables
from loreweave.db.models import ON_ITS_WAY, ChatSession, TaskStatus, utcnow
from loreweave.db.uow import UnitOfWork
from loreweave.errors import (
    AuthenticationFailed,
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    RequestRejected,
)
from loreweave.llm.types import ChatModel
from loreweave.memory.ports import Job, Outcome, QueueName, UnitOfWorkFactory, VectorWriter
from loreweave.memory.transcript import Reverted

T = TypeVar("T")
C = TypeVar("C", bound=QueueConfig)

Handler = Callable[[Job[Any]], Outcome]


@dataclass(frozen=True)
class Scope:
    """Which sessions a claim serves: those played now (a turn since ``since``) or the others;
    ``since`` None serves every session."""

    live: bool
    since: datetime | None = None

    def where(self, model: Any) -> ColumnElement[bool]:
        if self.since is None:
            return true()
        played = select(ChatSession.id).where(ChatSession.last_turn_at >= self.since)
        column: ColumnElement[Any] = model.session_id
        return column.in_(played) if self.live else column.not_in(played)


ANY_SESSION = Scope(live=True)


@dataclass(frozen=True)
class Claim:
    """What one claim asks for: jobs ready at ``now`` in ``scope``'s sessions; ``wide``: the
    other workers are busy, so a kind that batches across its keys may (a rewrite of several
    entities in one call) — while some are idle, one key each lets them work in parallel."""

    now: datetime
    scope: Scope = ANY_SESSION
    wide: bool = True


@dataclass(frozen=True)
class Parts:
    """What a kind's handler is built from: one set per process, from the composition root."""

    uow: UnitOfWorkFactory
    chat_model: ChatModel
    vectors: VectorWriter
    settings: Settings


def _one_row(first: Any, row: Any) -> bool:
    return bool(row.id == first.id)


def _nothing(_row: Any) -> dict[str, Any]:
    return {}


def _nothing_to_take_back(_uow: UnitOfWork, _row: Any, _tables: JobTables) -> Reverted | None:
    return None


def _never(_settings: Settings) -> bool:
    return False


@dataclass(frozen=True)
class JobKind(Generic[C]):
    """One kind of job, whole: its table, its claim, its handler, its settings."""

    name: QueueName  # its queue: in the settings' priority order, the API, metrics and alerts
    model: type[Any]  # its table: the job columns (db.models.JobColumns) and its own
    label: str  # for messages: "note update task"
    # the ready rows a claim takes: the head of a key (nothing earlier of its key on its way),
    # then what may share its call; locked FOR UPDATE SKIP LOCKED on PostgreSQL
    candidates: Callable[[Session, Claim, C], list[Any]]
    handler: Callable[[Parts], Handler]  # what processes a claimed job (built once a process)
    settings: Callable[[Settings], C]  # retries, back-off, batch size, lease, workers
    backlog_target: float = 30.0  # seconds: an older pending job raises the backlog alert
    # which rows of a failed call share the failure of its first: the events of one entry
    # folded into one rewrite do; another turn, entity or creation of a batch goes back untried
    same_key: Callable[[Any, Any], bool] = _one_row
    # its rows' own fields as the API, the UI and the alerts show them (``summary``: what the
    # job is about, in a line)
    describe: Callable[[Any], dict[str, Any]] = _nothing
    # what a job failed for good holds back, as the failed-job alert says it
    when_failed: str = "set aside: later jobs go on without them until they are retried or skipped"
    # what a person's retry does first, in its transaction (given the job tables, to lock in
    # the workers' order): the notes it took back, whose vectors to sync, or None
    on_retry: Callable[[UnitOfWork, Any, JobTables], Reverted | None] = _nothing_to_take_back
    # whether a claim always takes what may share its call (a wide claim), not only while
    # every worker of the pool is busy: for jobs that seldom make a call at all
    always_wide: Callable[[Settings], bool] = _never


def configured(name: str, model: type[C]) -> Callable[[Settings], C]:
    """The settings of a kind beyond the spec's three: ``dual_queue_config.queues[name]``,
    validated by the kind's own settings ``model`` (defaults where nothing is set)."""

    def read(settings: Settings) -> C:
        try:
            return model.model_validate(settings.dual_queue_config.queues.get(name, {}))
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise ConfigurationError(
                f"dual_queue_config.queues.{name}.{where}: {problem['msg']}"
            ) from None

    return read


class Kinds:
    """The job kinds of a process, in their default priority order (the settings'
    ``priority_config.queue_order`` goes first)."""

    def __init__(self, kinds: Iterable[JobKind[Any]]) -> None:
        self._kinds: dict[QueueName, JobKind[Any]] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"two job kinds are named {kind.name!r}")
            self._kinds[kind.name] = kind

    def __iter__(self) -> Iterator[JobKind[Any]]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    def plus(self, *kinds: JobKind[Any]) -> Kinds:
        """These kinds and ``kinds`` (a kind added by an application or a test)."""
        return Kinds([*self, *kinds])

    @property
    def names(self) -> tuple[QueueName, ...]:
        return tuple(self._kinds)

    @property
    def models(self) -> tuple[type[Any], ...]:
        return tuple(kind.model for kind in self)

    def named(self, name: str) -> JobKind[Any]:
        try:
            return self._kinds[name]
        except KeyError:
            raise InvalidInput(f"unknown queue {name!r}; one of {', '.join(self.names)}") from None

    def find(self, db: Session, job_id: uuid.UUID) -> tuple[JobKind[Any], Any]:
        """The job with this id, whatever its kind (ids are UUIDs, unique across tables)."""
        for kind in self:
            row = db.get(kind.model, job_id)
            if row is not None:
                return kind, row
        raise NotFound("job", job_id)

    def order(self, settings: Settings) -> list[QueueName]:
        """The queues by priority: ``priority_config.queue_order``, then the kinds it does not
        name in registry order.  A name that is no kind, or settings under
        ``dual_queue_config.queues`` for no kind, is a :class:`ConfigurationError`."""
        named = list(settings.priority_config.queue_order)
        for where, names in (
            ("priority_config.queue_order", named),
            ("dual_queue_config.queues", list(settings.dual_queue_config.queues)),
        ):
            unknown = [name for name in names if name not in self._kinds]
            if unknown:
                raise ConfigurationError(
                    f"{where} names {', '.join(map(repr, unknown))}: no job kind of that name "
                    f"(the kinds: {', '.join(self.names)})"
                )
        return named + [name for name in self.names if name not in named]


# -- claims ---------------------------------------------------------------------------------------
def locking(db: Session, query: Select[T], model: Any) -> Select[T]:
    """``query`` locking the rows it reads, skipping those another claim holds (PostgreSQL;
    SQLite serialises writers)."""
    if is_postgresql(db):
        return query.with_for_update(skip_locked=True, of=model)
    return query


def ready(model: Any, now: datetime) -> ColumnElement[bool]:
    return and_(model.status == TaskStatus.PENDING.value, model.next_attempt_at <= now)


def is_ready(row: Any, now: datetime) -> bool:
    return bool(row.status == TaskStatus.PENDING.value and row.next_attempt_at <= now)


def earlier(other: Any, model: Any) -> ColumnElement[bool]:
    """``other`` comes before ``model`` in a session's order: an earlier turn, or the same turn
    and written before."""
    return or_(
        other.turn_index < model.turn_index,
        and_(other.turn_index == model.turn_index, other.created_at < model.created_at),
    )


@cache  # statements are immutable: built once (an alias costs more to build than to run)
def _heads_its_session(model: Any, held_by: tuple[str, ...]) -> ColumnElement[bool]:
    """No job of ``model``'s session before it with a status in ``held_by``."""
    other = aliased(model)
    return ~exists().where(
        other.session_id == model.session_id,
        other.status.in_(list(held_by)),
        earlier(other, model),
    )


def session_head(
    model: Any,
    db: Session,
    claim: Claim,
    *,
    held_by: Iterable[str] = ON_ITS_WAY,
    also: Iterable[ColumnElement[bool]] = (),
) -> Any | None:
    """The oldest ready job of ``model`` that heads its session: no job of the same session
    before it whose status is in ``held_by`` (by default on its way: pending, processing), and
    every condition of ``also``.  The claim of a kind whose jobs run one at a time per session,
    in turn order (the analyses' and the entity creations' heads; a kind added since)."""
    query = (
        select(model)
        .where(
            ready(model, claim.now),
            claim.scope.where(model),
            _heads_its_session(model, tuple(held_by)),
            *also,
        )
        .order_by(model.next_attempt_at)
        .limit(1)
    )
    return db.scalars(locking(db, query, model)).first()


def claim(
    db: Session,
    kind: JobKind[C],
    worker_id: str,
    config: C,
    scope: Scope = ANY_SESSION,
    *,
    wide: bool = True,
) -> list[Any]:
    """Lease the next ready job(s) of ``kind`` in ``scope``'s sessions to ``worker_id``; []
    when none is ready."""
    rows = kind.candidates(db, Claim(utcnow(), scope, wide), config)
    lifecycle.lease(rows, lifecycle.claim_token(worker_id), config.lease_seconds)
    db.flush()
    return rows


CUT = "was cut by a transcript change (its turn deleted or edited)"
LEASE_LOST = "lost its lease"


def lost(db: Session, kind: JobKind[Any], claimed: Sequence[Any], token: str) -> str | None:
    """None if every job ``claimed`` is still held by the claim ``token`` (locks them on
    PostgreSQL); else what became of the claim: :data:`CUT` when its jobs are gone or were
    handed back untried (a transcript cut cancels or releases them), :data:`LEASE_LOST` when
    its lease expired (an attempt counted) or another worker holds one."""
    model = kind.model
    query = select(model.id, model.status, model.worker_id, model.retry_count).where(
        model.id.in_([row.id for row in claimed])
    )
    if is_postgresql(db):
        query = query.with_for_update()
    now = {row.id: row for row in db.execute(query)}
    processing = TaskStatus.PROCESSING.value
    held = [r for r in now.values() if r.status == processing and r.worker_id == token]
    if len(held) == len(claimed):
        return None
    for row in claimed:
        state = now.get(row.id)
        if state is None or state.worker_id == token:
            continue  # cancelled with its turn, or still ours
        if state.worker_id is not None or state.retry_count != row.retry_count:
            return LEASE_LOST
    return CUT


def is_final(exc: BaseException) -> bool:
    """Errors that another attempt cannot fix: a bad key, a rejected request, a vanished row.
    Anything else (outages, rate limits, unusable LLM output, a crash) is worth another try."""
    return isinstance(exc, (AuthenticationFailed, RequestRejected, NotFound, InvalidInput))


# -- a person's retry and skip --------------------------------------------------------------------
def _require_failed(db: Session, kind: JobKind[Any], job_id: uuid.UUID, action: str) -> Any:
    row = db.get(kind.model, job_id)
    if row is None:
        raise NotFound(kind.label, job_id)
    if row.status != TaskStatus.FAILED.value:
        raise Conflict(f"{kind.label} {job_id} is {row.status}; only failed jobs can be {action}")
    return row


def retry(db: Session, kind: JobKind[Any], job_id: uuid.UUID) -> Any:
    """A person's retry: a failed job becomes pending now, with a fresh count."""
    row = _require_failed(db, kind, job_id, "retried")
    lifecycle.release([row])  # the last error stays shown until the next attempt ends
    row.retry_count = 0
    db.flush()
    return row


def skip(db: Session, kind: JobKind[Any], job_id: uuid.UUID, by: str = "a person") -> Any:
    """A person's skip: a failed job is given up, recorded, and stops blocking its key."""
    row = _require_failed(db, kind, job_id, "skipped")
    row.status = TaskStatus.SKIPPED.value
    row.processed_at = utcnow()
    reason = f"skipped by {by}; last error: {row.error_message or '-'}"
    row.error_message = reason[: lifecycle.ERROR_LIMIT]
    db.flush()
    return row


# -- upkeep ---------------------------------------------------------------------------------------
def sweep(db: Session, kinds: Kinds, settings: Settings) -> int:
    """Expired leases (a worker died or hung) count as failed attempts: back to pending, or
    ``failed`` after ``max_retries``.  Returns how many jobs were swept."""
    now = utcnow()
    count = 0
    for kind in kinds:
        model, config = kind.model, kind.settings(settings)
        failed_for_good = model.retry_count + 1 >= config.max_retries
        result = db.execute(
            update(model)
            .where(model.status == TaskStatus.PROCESSING.value, model.locked_until < now)
            .values(
                {
                    model.status: case(
                        (failed_for_good, TaskStatus.FAILED.value),
                        else_=TaskStatus.PENDING.value,
                    ),
                    model.processed_at: case((failed_for_good, now), else_=None),
                    model.retry_count: model.retry_count + 1,
                    model.error_message: "lease expired: the worker stopped or hung before "
                    "finishing",
                    model.worker_id: None,
                    model.locked_until: None,
                    model.next_attempt_at: now,
                }
            )
            .execution_options(synchronize_session=False)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


def ready_kinds(db: Session, kinds: Iterable[JobKind[Any]]) -> list[JobKind[Any]]:
    """The kinds with some job pending and due, in the order given (a cheap read before a
    claim: a claim then looks for its job only where one may be)."""
    now = utcnow()
    return [
        kind
        for kind in kinds
        if db.scalar(select(kind.model.id).where(ready(kind.model, now)).limit(1)) is not None
    ]


def ready_counts(db: Session, kinds: Kinds) -> dict[QueueName, int]:
    """How many jobs of each queue are pending and due (to re-announce lost messages)."""
    now = utcnow()
    return {
        kind.name: int(
            db.scalar(select(func.count()).select_from(kind.model).where(ready(kind.model, now)))
            or 0
        )
        for kind in kinds
    }

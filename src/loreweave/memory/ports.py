"""What the memory core needs from the outside, as protocols: a unit-of-work factory, a vector
writer and the claimed job it works on; and the names of its three job kinds' queues.
``memory/`` never imports the queue machinery, the engine or a concrete provider; the queue
layer and the composition root supply these."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from loreweave.config import CompositeDocumentConfig
from loreweave.db.uow import UnitOfWork
from loreweave.llm.types import Matrix
from loreweave.memory.composite import CompositeDocument
from loreweave.memory.queues import (
    ANALYSIS_QUEUE,
    ENTITY_CREATION_QUEUE,
    NOTE_UPDATE_QUEUE,
    QueueName,
)

__all__ = [
    "ANALYSIS_QUEUE",
    "ENTITY_CREATION_QUEUE",
    "NOTE_UPDATE_QUEUE",
    "Job",
    "Outcome",
    "QueueName",
    "UnitOfWorkFactory",
    "VectorWriter",
]

R = TypeVar("R", covariant=True)


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork: ...


class VectorWriter(Protocol):
    config: CompositeDocumentConfig

    def embed(self, documents: Sequence[CompositeDocument]) -> Matrix: ...

    def per_document(
        self, documents: Sequence[CompositeDocument], matrix: Matrix | None
    ) -> list[Matrix]: ...

    def write(
        self, uow: UnitOfWork, documents: Sequence[CompositeDocument], matrix: Matrix
    ) -> None: ...

    def sync_entry(self, entry_id: uuid.UUID, session_id: uuid.UUID | None = None) -> object: ...

    def forget_entry(self, uow: UnitOfWork, entry_id: uuid.UUID) -> None:
        """Inside ``uow``: the entry's vectors are to go (tombstoned), with the entry."""
        ...


class Job(Protocol, Generic[R]):
    """A claimed job: the rows it holds (detached snapshots, in order), and how its result is
    saved.  ``finishing()`` opens the one transaction that saves the result: it checks the
    claim is still held (else raises :class:`~loreweave.errors.LeaseLost`), marks the rows
    done, and commits when the block ends without an exception."""

    @property
    def rows(self) -> Sequence[R]: ...

    @property
    def attempt(self) -> int: ...

    def finishing(self) -> AbstractContextManager[UnitOfWork]: ...

    def release(self, uow: UnitOfWork, ids: Sequence[uuid.UUID]) -> None:
        """Inside ``finishing()``: give these rows back to the queue untried."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What a job did (for the log), and which queues may now have work."""

    summary: str
    wake: dict[QueueName, int] = field(default_factory=dict)

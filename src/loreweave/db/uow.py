"""Unit of work: one transaction per use case, committed or rolled back as a whole."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from loreweave.db.repositories import (
    ChatSessionRepository,
    ChatTurnRepository,
    LoreEntryRepository,
    SessionNoteRepository,
    WorldRepository,
)

# An execution option: the SQLite engine begins such transactions DEFERRED, not IMMEDIATE.
READ_ONLY = "loreweave_read_only"


class UnitOfWork:
    """``with UnitOfWork(factory) as uow: ...; uow.commit()`` — leaving without commit rolls back.

    Services take a unit of work as a parameter, so a caller decides what one transaction holds.
    """

    session: Session
    worlds: WorldRepository
    entries: LoreEntryRepository
    sessions: ChatSessionRepository
    turns: ChatTurnRepository
    notes: SessionNoteRepository

    def __init__(self, session_factory: sessionmaker[Session], *, read_only: bool = False) -> None:
        self._factory = session_factory
        self.read_only = read_only

    def __enter__(self) -> Self:
        self.session = self._factory()
        if self.read_only:
            self.session.connection(execution_options={READ_ONLY: True})
        self.worlds = WorldRepository(self.session)
        self.entries = LoreEntryRepository(self.session)
        self.sessions = ChatSessionRepository(self.session)
        self.turns = ChatTurnRepository(self.session)
        self.notes = SessionNoteRepository(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed, and leaves loaded objects readable
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

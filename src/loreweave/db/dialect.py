"""Which database a session talks to: the one place that asks."""

from __future__ import annotations

from sqlalchemy.orm import Session


def is_postgresql(db: Session) -> bool:
    """Whether ``db`` talks to PostgreSQL (row locks, ``SKIP LOCKED``, advisory locks)."""
    return db.get_bind().dialect.name == "postgresql"

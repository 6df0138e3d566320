"""loreweave's errors as HTTP statuses: one table for the JSON answers and the SSE streams."""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError

from loreweave.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    LoreweaveError,
    NotFound,
    ProviderError,
)

STATUS = (
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (InvalidInput, 422),
    (DatabaseUnavailable, 503),
    (ProviderError, 502),
)


def error_status(exc: BaseException) -> tuple[int, str]:
    """The status and the message a client is told; anything unexpected is a 500 whose details
    stay in the log."""
    if isinstance(exc, LoreweaveError):
        return next((code for kind, code in STATUS if isinstance(exc, kind)), 400), str(exc)
    if isinstance(exc, OperationalError | InterfaceError):
        return 503, "the database is unavailable; try again shortly"
    return 500, "internal error: the turn was not recorded"

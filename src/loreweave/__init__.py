"""loreweave: a living world memory for AI storytelling and roleplay chat apps.

The public names are imported when first asked for, so ``import loreweave`` (and the command
line's start) stays light."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loreweave.bootstrap import build
    from loreweave.config import Settings, load_settings
    from loreweave.db import Database, UnitOfWork
    from loreweave.errors import (
        ConfigurationError,
        Conflict,
        DatabaseError,
        DatabaseUnavailable,
        InvalidInput,
        LoreweaveError,
        NotFound,
        SchemaOutOfDate,
    )

__version__ = "0.1.0"

_HOMES = {
    "build": "loreweave.bootstrap",
    "Settings": "loreweave.config",
    "load_settings": "loreweave.config",
    "Database": "loreweave.db",
    "UnitOfWork": "loreweave.db",
    **dict.fromkeys(
        (
            "ConfigurationError",
            "Conflict",
            "DatabaseError",
            "DatabaseUnavailable",
            "InvalidInput",
            "LoreweaveError",
            "NotFound",
            "SchemaOutOfDate",
        ),
        "loreweave.errors",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'loreweave' has no attribute {name!r}")
    return getattr(import_module(home), name)


__all__ = [
    "ConfigurationError",
    "Conflict",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "InvalidInput",
    "LoreweaveError",
    "NotFound",
    "SchemaOutOfDate",
    "Settings",
    "UnitOfWork",
    "__version__",
    "build",
    "load_settings",
]

"""loreweave: a living world memory for AI storytelling and roleplay chat apps."""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from loreweave.bootstrap import build

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``build`` is imported when first asked for: ``import loreweave`` stays light."""
    if name == "build":
        from loreweave.bootstrap import build

        return build
    raise AttributeError(f"module 'loreweave' has no attribute {name!r}")


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

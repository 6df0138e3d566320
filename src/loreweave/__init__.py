"""loreweave: a living world memory for AI storytelling and roleplay chat apps."""

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
    "load_settings",
]

"""The public surface is curated: a change to it must change this test too."""

from __future__ import annotations

import loreweave

PUBLIC = {
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
}


def test_public_names() -> None:
    assert set(loreweave.__all__) == PUBLIC
    for name in loreweave.__all__:
        assert hasattr(loreweave, name), name


def test_errors_share_one_base() -> None:
    for name in loreweave.__all__:
        obj = getattr(loreweave, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, loreweave.LoreweaveError)

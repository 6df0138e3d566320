"""How a count reads to a person: "1 entry", "4 entries"."""

from __future__ import annotations

IRREGULAR = {"entry": "entries", "entity": "entities", "alias": "aliases", "is": "are"}


def counted(n: int, singular: str) -> str:
    """``n`` and the word, singular for exactly one: ``counted(1, "entry") == "1 entry"``."""
    return f"{n} {singular if n == 1 else IRREGULAR.get(singular, singular + 's')}"

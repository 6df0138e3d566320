"""The imports under way in this server process, each under the token its request named
(``POST …/import?progress=TOKEN``): how many of its entries are embedded, for the browser UI to
show while the import's one request is pending (``GET …/imports/TOKEN``)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request

Key = tuple[uuid.UUID, str]


class Imports:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._under_way: dict[Key, tuple[int, int]] = {}

    @contextmanager
    def tracked(
        self, world_id: uuid.UUID, token: str | None
    ) -> Iterator[Callable[[int, int], None] | None]:
        """A ``(done, total)`` callback recording the import's progress under ``token`` (None
        without a token), forgotten when the import ends."""
        if token is None:
            yield None
            return
        key = (world_id, token)

        def moved(done: int, total: int) -> None:
            with self._lock:
                self._under_way[key] = (done, total)

        try:
            yield moved
        finally:
            with self._lock:
                self._under_way.pop(key, None)

    def read(self, world_id: uuid.UUID, token: str) -> tuple[int, int] | None:
        """(entries embedded, entries to embed) of an import under way, or None."""
        with self._lock:
            return self._under_way.get((world_id, token))


def get_imports(request: Request) -> Imports:
    imports: Imports = request.app.state.imports
    return imports


ImportsUnderWay = Annotated[Imports, Depends(get_imports)]

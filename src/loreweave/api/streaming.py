"""Streamed answers made by generators of text: each piece is made in a worker thread (it may
wait on a provider or the database), and when the client goes away mid-stream the generator is
closed in a worker thread too, so what it does then (record the reply as far as it went) never
blocks the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

import anyio
import anyio.to_thread
from starlette.concurrency import iterate_in_threadpool


async def in_threads(pieces: Generator[str, None, None]) -> AsyncIterator[str]:
    try:
        async for piece in iterate_in_threadpool(pieces):
            yield piece
    finally:  # done, failed, or the client went away: a closed generator finishes its work
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(pieces.close)

"""The command line's progress bar for its long commands (an import, an index rebuild): rich's,
on stderr so that stdout stays the command's answer, and only on a terminal unless asked."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Report = Callable[[int, int], None]  # (done, total)


@contextmanager
def progress_bar(description: str, *, show: bool | None = None) -> Iterator[Report | None]:
    """A ``(done, total)`` callback that moves a bar, or None when no bar is shown: ``show``
    None shows it when stderr is a terminal."""
    if not (sys.stderr.isatty() if show is None else show):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)

"""``loreweave chat``: play a session in the terminal, with the workers running alongside.

The reply streams in as the model writes it; what each turn changed in the memory (a note as it
now reads, an entity created, an update ignored), one line per change, is printed once the
workers have finished the turn; a continued session opens with
a recap of its last turns.  Lines starting with ``/`` are commands, never story turns."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from loreweave.app.feed import TurnWatch, report_turns
from loreweave.bootstrap import Loreweave, build
from loreweave.config import Settings
from loreweave.errors import InvalidInput, LoreweaveError
from loreweave.wording import counted

HELP = """/help    this list
/notes   the session's notes: what the story has changed so far
/quit    leave (Ctrl-D too)
Anything else is your next line in the story."""
RECAP_TURNS = 3
POLL_SECONDS = 0.5
SETTLE_SECONDS = 60.0
# the terminal chat's sessions are its own: a proxied request (of an app with no key, say the
# same first line) is never taken for a regenerate or an edit of them
CALLER = "terminal"


def open_session(
    lw: Loreweave, world_id: uuid.UUID, session_id: uuid.UUID | None
) -> tuple[uuid.UUID, bool]:
    """The session to play, and whether it is a new one."""
    with lw.database.uow(read_only=True) as uow:
        world = uow.worlds.require(world_id)
        if session_id is not None:
            session = uow.sessions.require(session_id)
            if session.world_id != world.id:
                raise InvalidInput(f"session {session_id} is not in world {world_id}")
            return session.id, False
    return lw.chat.start_session(world_id, "Terminal", caller=CALLER).id, True


def show_notes(lw: Loreweave, session_id: uuid.UUID, console: Console) -> None:
    table = Table("entity", "version", "note")
    with lw.database.uow(read_only=True) as uow:
        for note in uow.notes.in_session(session_id):
            entry = uow.entries.require(note.lore_entry_id)
            table.add_row(entry.title, str(note.version), note.note_content)
    if table.row_count:
        console.print(table)
    else:
        console.print("no notes yet: the story has not changed anything")


def recap(lw: Loreweave, session_id: uuid.UUID, console: Console) -> None:
    with lw.database.uow(read_only=True) as uow:
        turns = uow.turns.recent(session_id, RECAP_TURNS)
        total = uow.turns.next_index(session_id)
        notes = len(uow.notes.in_session(session_id))
    if not turns:
        return
    console.print(
        f"[bold]So far[/] ({counted(total, 'turn')}, {counted(notes, 'note')}; "
        f"the last {len(turns)}):"
    )
    for turn in turns:
        if turn.user_message:
            console.print(f"  You: {turn.user_message}", markup=False, highlight=False)
        if turn.assistant_message:
            console.print(f"  Narrator: {turn.assistant_message}", markup=False, highlight=False)


class Feed:
    """Prints what each turn changed as the workers finish it, until stopped."""

    def __init__(self, lw: Loreweave, session_id: uuid.UUID, console: Console) -> None:
        self.lw, self.session_id, self.console = lw, session_id, console
        self.watch = TurnWatch.from_now(lw.database.uow, session_id)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="chat-feed", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            self.flush()

    def settle(self, patience: float = SETTLE_SECONDS) -> None:
        """Before leaving: let this process's workers finish the session's memory updates
        (what is left waits in the database for the next worker)."""
        self.stop.set()
        self.thread.join(5)
        deadline = time.monotonic() + patience
        if self.flush():
            self.console.print("finishing the memory updates… (Ctrl-C leaves now)")
        while self.flush() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS / 5)

    def flush(self) -> int:
        """Print the changes of the turns finished; how many turns are still on their way."""
        # the database away for a moment: the next poll reports what finished
        with contextlib.suppress(SQLAlchemyError, LoreweaveError):
            return report_turns(self.lw.database.uow, self.session_id, self.watch, self.console)
        return 0


def play(lw: Loreweave, session_id: uuid.UUID, message: str, console: Console) -> None:
    console.print("[bold]Narrator:[/] ", end="")
    for event in lw.chat.turn_stream(session_id, message):
        if event.kind == "delta":
            console.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
    console.print()


def handle(lw: Loreweave, session_id: uuid.UUID, line: str, console: Console) -> bool:
    """One line typed; False to leave."""
    if line in ("/quit", "/exit"):
        return False
    if line == "/help":
        console.print(HELP, markup=False, highlight=False)
    elif line == "/notes":
        show_notes(lw, session_id, console)
    elif line.startswith("/"):
        console.print(
            f"unknown command {line.split()[0]}: /help lists the commands "
            "(a line starting with / is never sent to the story)",
            markup=False,
        )
    elif line:
        try:
            play(lw, session_id, line, console)
        except LoreweaveError as exc:
            console.print(f"\n[red]error:[/] {exc}")
    return True


def run_chat(
    settings: Settings, console: Console, world_id: uuid.UUID, session_id: uuid.UUID | None
) -> None:
    lw = build(settings)
    feed: Feed | None = None
    try:
        session_id, new = open_session(lw, world_id, session_id)
        if settings.queue_backend == "local":
            lw.start_local_workers()
        state = "new" if new else "continued"
        console.print(f"session {session_id} ({state}); /help lists the commands")
        if not new:
            recap(lw, session_id, console)
        feed = Feed(lw, session_id, console)
        feed.thread.start()
        while True:
            try:
                line = console.input("[bold]You:[/] ").strip()
            except EOFError:
                break
            if not handle(lw, session_id, line, console):
                break
        if settings.queue_backend == "local":
            feed.settle()
    finally:
        if feed is not None:
            feed.stop.set()
            feed.thread.join(5)
        lw.close()

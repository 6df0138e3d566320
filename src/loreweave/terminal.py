"""``loreweave chat``: play a session in the terminal, with the workers running alongside."""

from __future__ import annotations

import uuid

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from loreweave.bootstrap import Loreweave, build
from loreweave.config import Settings
from loreweave.db.models import ChatSession
from loreweave.errors import InvalidInput, LoreweaveError

HELP = "/notes shows the session's notes, /quit (or Ctrl-D) leaves."


def open_session(lw: Loreweave, world_id: uuid.UUID, session_id: uuid.UUID | None) -> uuid.UUID:
    with lw.database.uow() as uow:
        world = uow.worlds.require(world_id)
        if session_id is not None:
            session = uow.sessions.require(session_id)
            if session.world_id != world.id:
                raise InvalidInput(f"session {session_id} is not in world {world_id}")
            return session.id
        session = uow.sessions.add(ChatSession(world_id=world.id, title="Terminal"))
        uow.commit()
        return session.id


def show_notes(lw: Loreweave, session_id: uuid.UUID, console: Console) -> None:
    table = Table("entity", "version", "note")
    with lw.database.uow(read_only=True) as uow:
        for note in uow.notes.in_session(session_id):
            entry = uow.entries.require(note.lore_entry_id)
            table.add_row(entry.title, str(note.version), note.note_content)
    console.print(table)


def run_chat(
    settings: Settings, console: Console, world_id: uuid.UUID, session_id: uuid.UUID | None
) -> None:
    lw = build(settings)
    try:
        session_id = open_session(lw, world_id, session_id)
        if settings.queue_backend == "local":
            lw.start_local_workers()
        console.print(f"session {session_id}. {HELP}")
        while True:
            try:
                message = console.input("[bold]You:[/] ").strip()
            except EOFError:
                break
            if message in ("/quit", "/exit"):
                break
            if message == "/notes":
                show_notes(lw, session_id, console)
                continue
            if not message:
                continue
            try:
                reply = ""
                for event in lw.chat.turn_stream(session_id, message):
                    if event.kind == "delta":
                        reply += event.text
                console.print(Panel(reply, title="Narrator"))
            except LoreweaveError as exc:
                console.print(f"[red]error:[/] {exc}")
    finally:
        lw.close()

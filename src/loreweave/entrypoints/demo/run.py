"""``loreweave demo``: play the bundled story on the embedded default and show the memory at work.

With ``MISTRAL_API_KEY`` set the LLM is Mistral; otherwise (or with ``LOREWEAVE_LLM_PROVIDER=
scripted``) the bundled cassette answers, offline.  Everything else is the embedded default: the
configured SQLite file, local worker threads, FAISS and the local embedder.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import select

from loreweave.app.feed import WHY, Watch, report
from loreweave.bootstrap import Loreweave, build
from loreweave.config import Settings
from loreweave.db.models import (
    LoreEntry,
)
from loreweave.entrypoints.demo import bundled
from loreweave.wording import counted

WAIT_SECONDS = 300.0


def demo_settings(settings: Settings, console: Console) -> Settings:
    """The embedded default, with the story's recorded cassette when no Mistral key is set or
    the scripted provider has no cassette of its own."""
    changes: dict[str, Any] = {"queue_backend": "local"}
    story = {"llm_provider": "scripted", "scripted_cassette": bundled("cassette.json")}
    if settings.llm_provider == "mistral" and settings.mistral_api_key is None:
        changes.update(story)
        console.print(
            "[yellow]No MISTRAL_API_KEY set: the LLM is the demo's recorded scripted cassette "
            "(offline). Set MISTRAL_API_KEY to play the story with Mistral.[/]"
        )
    elif settings.llm_provider == "scripted" and settings.scripted_cassette is None:
        changes.update(story)  # not the placeholder cassette `serve` plays: it changes nothing
        console.print("[yellow]LLM: the demo's recorded scripted cassette (offline).[/]")
    else:
        console.print(f"LLM: {settings.llm_provider}")
    return settings.model_copy(update=changes)


def setup(lw: Loreweave, story: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID, str]:
    """The story's world, named apart from earlier runs' ("Hollow Hill (2)"), and a session."""
    lore = lw.lore
    base = story["world"]["name"]
    names = (base, *(f"{base} ({i})" for i in range(2, 10_000)))
    name = next(n for n in names if lore.world_named(n) is None)  # names are unique
    world = lore.create_world(name, story["world"].get("description", ""))
    session = lw.chat.start_session(world.id, "Demo")
    for entry in story["entries"]:
        lore.create(world.id, **entry)
    return world.id, session.id, name


def wait(lw: Loreweave, session_id: uuid.UUID, watch: Watch, console: Console) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while report(lw.database.uow, session_id, watch, console):
        if time.monotonic() > deadline:
            console.print("[red]the workers did not finish in time; see `loreweave tasks list`[/]")
            return
        time.sleep(0.1)


def summary(lw: Loreweave, world_id: uuid.UUID, session_id: uuid.UUID, console: Console) -> None:
    notes = Table("entity", "version", "session note", title="Session notes", show_lines=True)
    with lw.database.uow(read_only=True) as uow:
        for note in uow.notes.in_session(session_id):
            entry = uow.entries.require(note.lore_entry_id)
            notes.add_row(entry.title, str(note.version), note.note_content)
        created = uow.session.scalars(
            select(LoreEntry).where(LoreEntry.origin_session_id == session_id)
        ).all()
        turns = len(uow.turns.recent(session_id, 1000))
    console.print(notes)
    for entry in created:
        console.print(Panel(entry.content, title=f"created: {entry.title} ({entry.entity_type})"))
    calls = sum(v for (_, _, what), v in lw.providers.stats.snapshot().items() if what == "calls")
    scripted_calls = len(getattr(lw.providers.chat, "calls", []))
    console.print(
        f"{counted(turns, 'turn')}, {counted(len(created), 'entity')} created, "
        f"{counted(calls or scripted_calls, 'LLM call')}. Database: {lw.database.url} "
        f"(world {world_id}, session {session_id})."
    )


def next_steps(name: str, *, offline: bool) -> str:
    """What to run after the demo, as it pastes: offline, with the scripted provider (its
    placeholder cassette), as the README's quick start does."""
    prefix = "LOREWEAVE_LLM_PROVIDER=scripted " if offline else ""
    steps = (
        f"\nNext: [bold]{prefix}loreweave serve[/] and open http://127.0.0.1:8000/ to browse "
        f"this world ({name}) and its notes; [bold]{prefix}loreweave chat --world "
        f"{json.dumps(name)}[/] to play on in the terminal"
    )
    if offline:
        return steps + (
            " (offline, the replies are placeholders: set MISTRAL_API_KEY, or see the README's "
            "local models, and leave out LOREWEAVE_LLM_PROVIDER=scripted for a real narrator)."
        )
    return steps + "."


def run_demo(settings: Settings, console: Console) -> None:
    settings = demo_settings(settings, console)
    story = json.loads(bundled("story.json").read_text(encoding="utf-8"))
    lw = build(settings)
    try:
        lw.start_local_workers()
        world_id, session_id, name = setup(lw, story)
        console.print(Panel(story["world"]["description"], title=name))
        watch = Watch()
        for index, message in enumerate(story["turns"]):
            console.rule(f"turn {index}")
            console.print(f"[bold]You:[/] {message}")
            result = lw.chat.turn(session_id, message)
            console.print(Panel(result.reply, title="Narrator"))
            used = ", ".join(f"{e.title} ({WHY[e.via]})" for e in result.used_entries)
            console.print(f"   [dim]the narrator was reminded of: {used or 'nothing'}[/]")
            wait(lw, session_id, watch, console)
        console.rule("the world's memory now")
        summary(lw, world_id, session_id, console)
        console.print(next_steps(name, offline=settings.llm_provider == "scripted"))
    finally:
        lw.close()

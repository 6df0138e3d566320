"""The ``loreweave`` command line.  Errors are one line on stderr and a non-zero exit code."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from typer.core import TyperGroup

from loreweave import __version__
from loreweave.errors import ConfigurationError, Conflict, InvalidInput, LoreweaveError
from loreweave.memory.queues import ANALYSIS_QUEUE, ENTITY_CREATION_QUEUE, NOTE_UPDATE_QUEUE
from loreweave.wording import counted

if TYPE_CHECKING:
    from loreweave.config import Settings
    from loreweave.container import Store
    from loreweave.db import Database
    from loreweave.interop.files import ExportFormat

# the commands in the order a newcomer meets them: try it, serve it, feed it lore, then run it
ORDER = (
    "demo",
    "serve",
    "chat",
    "import",
    "export",
    "worlds",
    "sessions",
    "worker",
    "tasks",
    "index",
    "db",
    "doctor",
    "version",
)


class _Ordered(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:  # typer vendors its own click
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


# plain help (click's): a flag reads "--strict / --no-strict", not "<bool>"
app = typer.Typer(
    name="loreweave",
    help="A living world memory for AI storytelling and roleplay chat apps.",
    cls=_Ordered,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="Database schema migrations.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")
tasks_app = typer.Typer(
    help="The queues' jobs: list, retry and skip.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(tasks_app, name="tasks")
index_app = typer.Typer(
    help="Vector rows and FAISS caches: verify and rebuild.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(index_app, name="index")

console = Console()
err_console = Console(stderr=True)


class State:
    """What the top-level options decided, shared with the sub-commands."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from loreweave.config import load_settings

            self._settings = load_settings(self.config_file)
        return self._settings


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (default: $LOREWEAVE_CONFIG)."),
    ] = None,
) -> None:
    ctx.obj = State(config)


def _state(ctx: typer.Context) -> State:
    state = ctx.find_root().obj
    assert isinstance(state, State)
    return state


def _database(ctx: typer.Context) -> Database:
    """The database alone, its connection checked (the schema commands; the listings)."""
    from loreweave.bootstrap import open_database

    return open_database(_state(ctx).settings)


@contextmanager
def _store(ctx: typer.Context) -> Iterator[Store]:
    """The stored world, built by the composition root (no chat model), closed after."""
    from loreweave.bootstrap import build_store

    store = build_store(_state(ctx).settings)
    try:
        yield store
    finally:
        store.close()


@app.command()
def version() -> None:
    """Print the loreweave version."""
    console.print(f"loreweave {__version__}")


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from loreweave.db import migrate

    database = _database(ctx)
    migrate.upgrade(database.engine, revision)
    current = migrate.current_revision(database.engine)
    console.print(f"database {database.url} is at revision {current}")


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision, or 'base'.")] = "-1",
) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from loreweave.db import migrate

    database = _database(ctx)
    migrate.downgrade(database.engine, revision)
    current = migrate.current_revision(database.engine)
    console.print(f"database {database.url} is at revision {current or 'base (empty)'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the database's revision and the newest this code knows."""
    from loreweave.db import migrate

    database = _database(ctx)
    current = migrate.current_revision(database.engine)
    head = migrate.head_revision(database.engine)
    state = "up to date" if current == head else "behind: run `loreweave db upgrade`"
    console.print(f"database {database.url}: revision {current or 'none'} (head {head}, {state})")


def _configure_logging(settings: Settings) -> None:
    logging.getLogger().setLevel(settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )


@app.command()
def worker(
    ctx: typer.Context,
    backend: Annotated[
        str | None,
        typer.Option(help="local (threads here) or celery; default: LOREWEAVE_QUEUE_BACKEND."),
    ] = None,
) -> None:
    """Run the memory pipeline's workers until interrupted (Ctrl-C)."""
    settings = _state(ctx).settings
    if backend is not None:
        if backend not in ("local", "celery"):
            raise ConfigurationError(f"--backend must be local or celery, not {backend!r}")
        settings = settings.model_copy(update={"queue_backend": backend})
    _configure_logging(settings)
    from loreweave.entrypoints.workers import run_workers

    run_workers(settings, console, _state(ctx).config_file)


@app.command()
def demo(ctx: typer.Context) -> None:
    """Play a short bundled story and watch the world's memory evolve (offline by default)."""
    from loreweave.entrypoints.demo.run import run_demo

    settings = _state(ctx).settings
    run_demo(settings, console)


@app.command()
def chat(
    ctx: typer.Context,
    world: Annotated[str, typer.Option(help="The world: its name, id or id prefix.")],
    session: Annotated[
        str | None,
        typer.Option(help="Continue this session (title, id or id prefix; default: new)."),
    ] = None,
) -> None:
    """Play a session in the terminal; the workers update the memory as you go."""
    from loreweave.entrypoints.terminal import run_chat

    settings = _state(ctx).settings
    database = _database(ctx)
    database.ensure_schema()
    world_id, session_id = _find(database, world, session)
    database.dispose()
    run_chat(settings, console, world_id, session_id)


def _find(
    database: Database, world: str, session: str | None
) -> tuple[uuid.UUID, uuid.UUID | None]:
    """A world (and a session of it) as a person names them."""
    from loreweave.app.lookup import find_session, find_world

    with database.uow(read_only=True) as uow:
        world_id = find_world(uow, world).id
        session_id = find_session(uow, session, world_id).id if session else None
    return world_id, session_id


@app.command()
def worlds(ctx: typer.Context) -> None:
    """List the worlds: id, name, entries, sessions."""
    from rich.table import Table

    from loreweave.app.lookup import session_counts

    database = _database(ctx)
    database.ensure_schema()
    table = Table("id", "name", "entries", "sessions")
    with database.uow(read_only=True) as uow:
        sessions = session_counts(uow)
        for world in uow.worlds.list():
            entries = len(uow.entries.in_world(world.id))
            table.add_row(str(world.id), world.name, str(entries), str(sessions.get(world.id, 0)))
    console.print(table)


@app.command()
def sessions(
    ctx: typer.Context,
    world: Annotated[
        str | None, typer.Option(help="Only this world's (name, id or id prefix).")
    ] = None,
    abandoned: Annotated[
        bool,
        typer.Option(
            "--abandoned",
            help="Only the abandoned sides of branches: forks (or their origins) that no request "
            "has matched since a related session was.",
        ),
    ] = False,
    archive: Annotated[
        bool, typer.Option("--archive", help="With --abandoned: archive them (memory kept).")
    ] = False,
    delete: Annotated[
        bool, typer.Option("--delete", help="With --abandoned: delete them and their memory.")
    ] = False,
) -> None:
    """List the sessions: id, world, title, turns, side (active, abandoned, archived)."""
    from rich.table import Table

    from loreweave.app import branches
    from loreweave.app.lookup import find_world
    from loreweave.db.models import utcnow

    if (archive or delete) and not abandoned:
        raise InvalidInput("--archive and --delete act on the --abandoned sessions only")
    if archive and delete:
        raise InvalidInput("give --archive or --delete, not both")
    database = _database(ctx)
    database.ensure_schema()
    table = Table("id", "world", "title", "turns", "side")
    chosen: list[uuid.UUID] = []
    with database.uow(read_only=True) as uow:
        worlds = [find_world(uow, world)] if world else list(uow.worlds.list())
        for w in worlds:
            left = branches.abandoned(uow, w.id)
            for s in uow.sessions.in_world(w.id):
                if abandoned and s.id not in left:
                    continue
                side = (
                    "archived"
                    if s.archived_at
                    else f"abandoned for {str(left[s.id])[:8]}"
                    if s.id in left
                    else "active"
                )
                turns = uow.turns.next_index(s.id)
                table.add_row(str(s.id), w.name, s.title or "untitled", str(turns), side)
                chosen.append(s.id)
    console.print(table)
    if archive:
        with database.uow() as uow:
            for session_id in chosen:
                uow.sessions.require(session_id).archived_at = utcnow()
            uow.commit()
        console.print(f"archived {counted(len(chosen), 'session')} (their memory is kept)")
    if delete:
        with _store(ctx) as store:
            for session_id in chosen:
                store.transcript.delete_session(session_id)
        console.print(f"deleted {counted(len(chosen), 'session')} and their memory")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="World Info JSON, character card (JSON or PNG).")],
    world: Annotated[
        str | None, typer.Option(help="Import into this world (name, id or id prefix).")
    ] = None,
    new_world: Annotated[
        str | None, typer.Option(help="Create a world of this name and import into it.")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Refuse the whole file if one entry cannot be read.")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="A progress bar on stderr while entries are embedded (default: on a terminal).",
        ),
    ] = None,
) -> None:
    """Import a lorebook; an entry that cannot be read is skipped and reported (--strict:
    nothing is imported); a bad file imports nothing."""
    from loreweave.entrypoints.progress import progress_bar
    from loreweave.interop.files import read_lorebook

    if (world is None) == (new_world is None):
        raise InvalidInput("give exactly one of --world (a name or id) or --new-world NAME")
    book = read_lorebook(file, strict=strict)
    kind, entries = book.kind, book.entries
    for problem in book.skipped:
        console.print(f"skipped {problem}", markup=False)
    if not entries:
        raise InvalidInput(f"{file.name}: no entries to import")
    with _store(ctx) as store:
        database = store.database
        if new_world is not None:
            try:
                world_id = store.lore.create_world(new_world[:200]).id
            except Conflict as exc:
                raise Conflict(
                    f"{exc}: import into it with --world {new_world!r}, or choose another name"
                ) from None
        else:
            world_id, _ = _find(database, world or "", None)
        with progress_bar("Embedding entries", show=progress) as moved:
            report = store.lore.import_entries(world_id, entries, book.fields, progress=moved)
        with database.uow(read_only=True) as uow:
            name = uow.worlds.require(world_id).name
    console.print(
        f"imported {counted(len(entries), 'entry')} from {kind} into world {name!r} ({world_id})",
        markup=False,
        highlight=False,
    )
    console.print(f"of them {report.summary()}", markup=False, highlight=False)


class Format(StrEnum):
    """``export --format``: the choices, listed in its help and checked by typer."""

    worldinfo = "worldinfo"
    character_book = "character-book"
    card = "card"


EXPORT_FORMATS: dict[Format, ExportFormat] = {
    Format.worldinfo: "worldinfo",
    Format.character_book: "character-book",
    Format.card: "card",
}


@app.command()
def export(
    ctx: typer.Context,
    world: Annotated[str, typer.Option(help="The world: its name, id or id prefix.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    session: Annotated[
        str | None, typer.Option(help="Export this session's state: its entries and notes.")
    ] = None,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            case_sensitive=False,
            help="worldinfo, character-book, or card (the imported character card with the "
            "world's lore as its book; a .png output writes it into the card's image)",
        ),
    ] = Format.worldinfo,
) -> None:
    """Export a world's lore (or a session's state) as a lorebook or a character card."""
    from loreweave.interop.files import (
        entries_written,
        export_document,
        export_notes,
        portable_entries,
        write_document,
    )

    with _store(ctx) as store:
        world_id, session_id = _find(store.database, world, session)
        entries = portable_entries(store.database, store.vectors, world_id, session_id)
        with store.database.uow(read_only=True) as uow:
            found = uow.worlds.require(world_id)
            name, fields = found.name, dict(found.extra or {})
    document, image = export_document(entries, EXPORT_FORMATS[fmt], name, fields)
    write_document(output, document, image)
    written = entries_written(document, EXPORT_FORMATS[fmt])
    what = counted(written, "entry")
    what = f"the card and its book of {what}" if fmt == Format.card else what
    console.print(f"wrote {what} to {output}")
    for note in export_notes(entries):
        console.print(f"note: {note}", highlight=False)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[
        bool, typer.Option(help="Run the local backend's worker threads in this process.")
    ] = True,
) -> None:
    """Serve the HTTP API and the browser UI (http://HOST:PORT/)."""
    import uvicorn

    from loreweave.api import create_app
    from loreweave.api.guard import serving_plan
    from loreweave.bootstrap import build

    settings = _state(ctx).settings
    _configure_logging(settings)
    keys = [key.get_secret_value() for key in settings.api_keys]
    hosts, warning = serving_plan(host, keys, settings.allowed_hosts)
    if warning:
        err_console.print(warning, style="yellow", highlight=False, soft_wrap=True)
    lw = build(settings)
    local = settings.queue_backend == "local" and workers
    app_ = create_app(lw, start_workers=local, allowed_hosts=hosts)
    console.print(
        f"loreweave on http://{host}:{port}/ — database {lw.database.url}, queue "
        f"{settings.queue_backend}{' (workers in this process)' if local else ''}"
    )
    uvicorn.run(app_, host=host, port=port, log_level=settings.log_level.lower())


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check the configured LLM: provider and models, reachable, structured output, a round trip."""
    from loreweave.llm.doctor import run

    llm_log = logging.getLogger("loreweave.llm")
    level, failed = llm_log.level, False
    llm_log.setLevel(logging.ERROR)  # a form's step down is said in its line, not logged
    try:
        for check in run(_state(ctx).settings):
            failed = failed or not check.ok
            mark = "[green]✓[/green]" if check.ok else "[red]✗[/red]"
            console.print(f"{mark} {check.name}: ", end="", highlight=False)
            console.print(check.detail, markup=False, highlight=False, soft_wrap=True)
    finally:
        llm_log.setLevel(level)
    if failed:
        raise typer.Exit(1)


@tasks_app.command("list")
def tasks_list(
    ctx: typer.Context,
    kind: Annotated[
        str, typer.Option(help=f"{ANALYSIS_QUEUE}, {NOTE_UPDATE_QUEUE} or {ENTITY_CREATION_QUEUE}")
    ] = NOTE_UPDATE_QUEUE,
    status: Annotated[
        str | None, typer.Option(help="pending, processing, done, failed, skipped")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List recent jobs of one queue (analysis jobs are listed by their turn's id)."""
    from rich.table import Table

    from loreweave.queue.kinds import KINDS
    from loreweave.queue.status import list_jobs

    database = _database(ctx)
    database.ensure_schema()
    with database.uow(read_only=True) as uow:
        rows = list_jobs(uow.session, KINDS.named(kind), status, limit)
    table = Table("id", "status", "turn", "retries", "summary", "error")
    for row in rows:
        table.add_row(
            row["id"],
            row["status"],
            str(row["turn_index"]),
            str(row["retry_count"]),
            row["summary"][:60],
            (row["error_message"] or "")[:60],
        )
    console.print(table)


def _act_on_job(ctx: typer.Context, job_id: str, action: Literal["retry", "skip"]) -> None:
    with _store(ctx) as store:
        with store.database.uow(read_only=True) as uow:
            kind, _ = store.kinds.find(uow.session, _uuid(job_id))
        store.jobs.act(action, _uuid(job_id), by=f"loreweave tasks {action}")
    done = "is pending again" if action == "retry" else "was skipped; later jobs go ahead"
    console.print(f"{kind.label} {job_id} {done}")


@tasks_app.command("retry")
def tasks_retry(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="A failed task's id, or a turn's id.")],
) -> None:
    """Make a failed job pending again (a task, or a turn's analysis)."""
    _act_on_job(ctx, job_id, "retry")


@tasks_app.command("skip")
def tasks_skip(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="A failed task's id, or a turn's id.")],
) -> None:
    """Give up a failed job, recorded, so that the later jobs of its key go ahead."""
    _act_on_job(ctx, job_id, "skip")


@index_app.command("verify")
def index_verify(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option("--repair", help="Re-embed what is wrong.")] = False,
) -> None:
    """Compare every vector row with the documents the database says should exist."""
    with _store(ctx) as store:
        report = store.vectors.verify(repair=repair)
    console.print(
        f"{report.documents} documents: {len(report.missing)} missing, {len(report.stale)} "
        f"stale, {len(report.orphans)} orphaned, {report.other_model} of another model"
        + (f"; {counted(report.repaired, 'entry')} repaired" if repair else "")
    )
    if not report.ok and not repair:
        raise typer.Exit(1)


@index_app.command("rebuild")
def index_rebuild(ctx: typer.Context) -> None:
    """Re-embed every document with the configured embedder and drop the FAISS caches."""
    from loreweave.entrypoints.progress import progress_bar
    from loreweave.vectors.cache import drop_persisted

    with _store(ctx) as store, progress_bar("Embedding entries") as moved:
        done = store.vectors.rebuild(progress=moved)
        drop_persisted(store.settings.index_dir)
    console.print(
        f"re-embedded {counted(done, 'entry')}; FAISS caches will be rebuilt on first search"
    )


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"not an id: {value!r}") from None


def main() -> None:
    """Entry point: run the app, turning loreweave's errors into one line and exit code 1
    (2 for configuration errors)."""
    # numpy's BLAS on one thread, unless the environment says otherwise (read when numpy is
    # imported, which no command has done yet): the workers already embed in parallel threads,
    # and OpenBLAS's own threads spin between the embedder's many small products -- on a small
    # or loaded machine 2-5x the CPU of an import, and slower too (bench/import_speed.py)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except ConfigurationError as exc:
        err_console.print(
            f"error: {exc}", style="red", highlight=False, markup=False, soft_wrap=True
        )
        sys.exit(2)
    except LoreweaveError as exc:
        err_console.print(
            f"error: {exc}", style="red", highlight=False, markup=False, soft_wrap=True
        )
        sys.exit(1)

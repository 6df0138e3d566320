"""README's snippets run as pasted: each is taken from README.md and executed offline in a
fresh directory, with no loreweave setting in the environment (a new user's shell)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from loreweave.db import Database

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(section: str) -> str:
    """The first Python block of the README section titled ``section``."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    found = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert found, f"no Python block under {section!r}"
    return found.group(1)


def test_the_library_snippet_runs_offline_as_pasted(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(snippet("Use it as a library"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOREWEAVE_") and k not in ("MISTRAL_API_KEY", "OPENAI_API_KEY")
    }
    for _ in range(2):  # run again, as a person trying it does: the same world, no double
        result = subprocess.run(
            [sys.executable, "snippet.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        first, streamed = result.stdout.splitlines()[:2]
        assert first.endswith("['Momo']")  # the reply, and the entity it was handed
        assert streamed.startswith("The story continues")
    database = Database(f"sqlite:///{tmp_path / 'loreweave.db'}")
    try:
        with database.uow(read_only=True) as uow:
            worlds = uow.worlds.list()
            assert [w.name for w in worlds] == ["Eldoria"]
            assert [e.title for e in uow.entries.in_world(worlds[0].id)] == ["Momo"]
    finally:
        database.dispose()

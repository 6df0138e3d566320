"""README's snippets run as pasted: each is taken from README.md and executed offline in a
fresh directory, with no loreweave setting in the environment (a new user's shell)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx

from loreweave.db import Database

from .private_services import free_port

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


def quick_start_commands() -> list[str]:
    """The quick start's bash lines, continuations joined, comments dropped."""
    text = README.read_text()
    start = text.index("\n## Quick start")
    section = text[start : text.index("\n## ", start + 1)]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command:
                lines.append(command)
    return lines


# installing is what the test environment already did; each skipped line says why
SKIPPED = {
    "python3 -m venv": "the tests run in an environment already made",
    "pip install": "installed already (the dev extra holds local and openai)",
}


def loreweave_argv(command: str) -> tuple[dict[str, str], list[str]]:
    """A `VAR=value loreweave …` line as environment and argv, run by this Python."""
    words = shlex.split(command)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "loreweave", command
    return env, [sys.executable, "-m", "loreweave", *words[1:]]


def curl_request(command: str, port: int) -> tuple[str, dict[str, str], bytes]:
    """The curl line's URL (the port substituted), headers and body."""
    words = shlex.split(command)
    assert words[0] == "curl", command
    url, headers, body = "", {}, b""
    options = iter(words[1:])
    for word in options:
        if word == "-H":
            name, _, value = next(options).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data"):
            body = next(options).encode()
        elif word.startswith("http"):
            url = re.sub(r"127\.0\.0\.1:8000", f"127.0.0.1:{port}", word)
    return url, headers, body


def wait_until_serving(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1]
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("loreweave serve did not answer /healthz")


def run_line(
    command: str, cwd: Path, env: dict[str, str], port: int
) -> subprocess.Popen[str] | None:
    """Runs one quick-start line as written; `serve` is left running (returned)."""
    if command.startswith("curl"):
        url, headers, body = curl_request(command, port)
        answer = httpx.post(url, headers=headers, content=body, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
        return None
    own, argv = loreweave_argv(command)
    if argv[3] == "serve":
        server = subprocess.Popen(
            [*argv, "--port", str(port)],
            cwd=cwd,
            env={**env, **own},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until_serving(f"http://127.0.0.1:{port}", server)
        return server
    result = subprocess.run(
        argv,
        cwd=cwd,
        env={**env, **own},
        input="/quit\n",  # the terminal chat, left at once
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return None


def test_the_quick_start_runs_as_pasted(tmp_path: Path) -> None:
    """Every line of the quick start, in one fresh directory: the install lines are skipped
    (said why), `loreweave demo` and `chat` run as written, `serve` on a free port (the only
    change), and the curl's request sent to it."""
    commands = quick_start_commands()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LOREWEAVE_") and k not in ("MISTRAL_API_KEY", "OPENAI_API_KEY")
    }
    port = free_port()
    ran, skipped, servers = [], [], []
    try:
        for command in commands:
            reasons = [why for start, why in SKIPPED.items() if command.startswith(start)]
            if reasons:
                skipped.append((command, reasons[0]))
                continue
            server = run_line(command, tmp_path, env, port)
            servers += [server] if server else []
            ran.append(command)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=60)
    assert [c.split()[0] for c, _ in skipped] == ["python3", "pip"]
    assert [c.split()[-1] for c in ran if " serve" in c] == ["serve"]
    assert [c for c in ran if "loreweave demo" in c] and ran[-1].startswith("curl")
    assert len(ran) == len(commands) - len(skipped) == 4

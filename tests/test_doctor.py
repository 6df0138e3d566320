"""``loreweave doctor`` against the shipped fake OpenAI-compatible server and an unreachable URL:
one line per check, exit code 1 when one fails, no traceback and no secret."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from loreweave.testing.fake_provider import FakeProviderServer, structured_form

from .conftest import Cli

KEY = "sk-doctor-secret-0123456789"


def _openai(url: str, model: str = "fake") -> dict[str, str]:
    return {
        "LOREWEAVE_LLM_PROVIDER": "openai",
        "LOREWEAVE_OPENAI_BASE_URL": url,
        "LOREWEAVE_LLM_CONFIG": json.dumps(
            {f"{role}_model": model for role in ("analysis", "rewrite", "creation", "chat")}
        ),
        "OPENAI_API_KEY": KEY,
    }


def _json_ok(body: dict[str, Any]) -> str:
    return '{"ok": true}'


def test_doctor_passes_against_a_server_that_takes_the_schema(cli: Cli, tmp_path: Path) -> None:
    with FakeProviderServer(api_key=KEY, prompt_handlers={"doctor.structured": _json_ok}) as fake:
        result = cli("doctor", cwd=tmp_path, env=_openai(fake.openai_url))
        forms = [structured_form(r.json) for r in fake.requests_to("/v1/chat/completions")]
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "✓ provider",
        "✓ reachable",
        "✓ structured output",
        "✓ round trip",
    ]
    models = "models fake (analysis, rewrite, creation, chat)"
    assert f"openai at {fake.openai_url}; {models}" in lines[0]
    assert "serves fake" in lines[1]
    assert "sent as json_schema; the answer was valid" in lines[2]
    assert " s for one chat call" in lines[3]
    assert forms == ["json_schema", "off"]  # one structured call, one plain round trip
    assert KEY not in result.stdout + result.stderr


def test_doctor_names_the_form_a_server_steps_down_to(cli: Cli, tmp_path: Path) -> None:
    """llama-cpp-python's server answers json_schema with a 500: auto sends the next form."""
    with FakeProviderServer(
        refused_forms={"json_schema": 500}, prompt_handlers={"doctor.structured": _json_ok}
    ) as fake:
        result = cli("doctor", cwd=tmp_path, env=_openai(fake.openai_url, model="local"))
    assert result.returncode == 0, result.stdout
    assert "✓ structured output: sent as json_object_schema (json_schema refused)" in result.stdout
    assert "not listed: local" in result.stdout


def test_doctor_fails_an_answer_that_is_not_the_json_asked(cli: Cli, tmp_path: Path) -> None:
    with FakeProviderServer() as fake:  # answers "OK" to everything
        result = cli("doctor", cwd=tmp_path, env=_openai(fake.openai_url))
    assert result.returncode == 1
    assert "✗ structured output: sent as json_schema; not the JSON asked: 'OK'" in result.stdout
    assert "✓ round trip" in result.stdout


def test_doctor_says_an_unreachable_server_in_one_line(cli: Cli, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://user:{KEY}@127.0.0.1:{port}/v1"
    result = cli("doctor", cwd=tmp_path, env=_openai(url))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith(f"✗ reachable: no answer from http://127.0.0.1:{port}/v1/models")
    assert lines[2:] == [
        "✗ structured output: not tried: the server is not reachable",
        "✗ round trip: not tried: the server is not reachable",
    ]
    assert "Traceback" not in result.stderr
    assert KEY not in result.stdout + result.stderr


def test_doctor_says_what_a_provider_needs(cli: Cli, tmp_path: Path) -> None:
    result = cli("doctor", cwd=tmp_path, env={"LOREWEAVE_LLM_PROVIDER": "mistral"})
    assert result.returncode == 1
    needs = "✗ provider: LOREWEAVE_LLM_PROVIDER=mistral needs MISTRAL_API_KEY"
    assert result.stdout.startswith(needs)
    assert len(result.stdout.splitlines()) == 4


def test_doctor_on_the_offline_scripted_provider(cli: Cli, tmp_path: Path) -> None:
    result = cli("doctor", cwd=tmp_path, env={"LOREWEAVE_LLM_PROVIDER": "scripted"})
    assert result.returncode == 0, result.stdout
    assert "✓ reachable: in this process" in result.stdout

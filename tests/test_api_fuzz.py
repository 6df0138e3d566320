"""Schemathesis against the service's own OpenAPI schema: whatever it sends, never a 5xx — also
with a NUL or a lone surrogate in every string of the body, and with an oversized body.

Bounded: a few examples per operation, on SQLite and PostgreSQL databases seeded with one world,
entry and session so that generated ids sometimes exist."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from loreweave.api import create_app
from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier

from .pipeline_support import make_app, make_world


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def api_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[schemathesis.BaseSchema]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'fuzz.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create()
    database = Database(url)
    database.ensure_schema(auto_upgrade=True)
    make_world(database, ("Momo", "Character", "A girl."))
    model = ScriptedChatModel()
    model.add("A reply.", prompt="chat", repeat=True)
    lw = make_app(database, tmp, model, notifier=NullNotifier())
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(lw))
    lw.close()
    if request.param == "postgresql":
        server.drop(url)


def _poisoned(value: Any, odd: str) -> Any:
    if isinstance(value, str):
        return value[:3] + odd + value[3:]
    if isinstance(value, dict):
        return {key: _poisoned(item, odd) for key, item in value.items()}
    if isinstance(value, list):
        return [_poisoned(item, odd) for item in value]
    return value


def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    # (schemathesis's pytest plugin does not load under pytest 9: each operation's strategy is
    # driven by hypothesis directly instead)
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])
            if isinstance(case.body, dict | list):
                for odd in ("\x00", "\ud800"):  # sent as JSON escapes: valid JSON
                    raw = json.dumps(_poisoned(case.body, odd))
                    poisoned = case.call(
                        data=raw.encode(), headers={"Content-Type": "application/json"}
                    )
                    assert poisoned.status_code < 500, (odd, poisoned.status_code)
                oversized = case.call(
                    data=b'{"x": "' + b"y" * (2 * 2**20) + b'"}',
                    headers={"Content-Type": "application/json"},
                )
                assert oversized.status_code == 413, oversized.status_code

        try:
            call()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20
    assert failures == []

"""Schemathesis against the service's own OpenAPI schema: whatever it sends, never a 5xx.

Bounded: a few examples per operation, on a SQLite database seeded with one world, entry and
session so that generated ids sometimes exist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from loreweave.api import create_app
from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier

from .pipeline_support import make_app, make_world


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    database = Database(f"sqlite:///{tmp / 'fuzz.db'}")
    database.ensure_schema()
    make_world(database, ("Momo", "Character", "A girl."))
    model = ScriptedChatModel()
    model.add("A reply.", prompt="chat", repeat=True)
    lw = make_app(database, tmp, model, notifier=NullNotifier())
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(lw))
    lw.close()


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

        try:
            call()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20
    assert failures == []

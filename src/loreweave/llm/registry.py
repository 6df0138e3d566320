"""Build the configured providers, each registered here by name and wrapped once in resilience.

One :class:`Providers` per process (the composition root builds it): its rate limits and call
statistics are shared by every worker thread of that process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from loreweave.config import Settings
from loreweave.errors import ConfigurationError
from loreweave.llm.ratelimit import RateLimiter
from loreweave.llm.resilience import (
    CallStats,
    Resilience,
    ResilientChatModel,
    ResilientEmbedder,
    RetryPolicy,
)
from loreweave.llm.types import ChatModel, Embedder


def _secret(settings: Settings, name: str) -> str | None:
    value = settings.mistral_api_key if name == "MISTRAL_API_KEY" else settings.openai_api_key
    return value.get_secret_value() if value is not None else None


def _require_mistral_key(settings: Settings, what: str) -> str:
    key = _secret(settings, "MISTRAL_API_KEY")
    if not key:
        raise ConfigurationError(
            f"{what}=mistral needs MISTRAL_API_KEY in the environment (or choose another provider)"
        )
    return key


# a provider's SDK, and the extra that installs it
SDKS = {"mistral": "mistralai", "openai": "openai"}


@contextmanager
def _sdk(provider: str) -> Iterator[None]:
    """Importing a provider whose SDK is not installed says, in one line, what to install."""
    try:
        yield
    except ModuleNotFoundError as exc:
        sdk = SDKS[provider]
        if exc.name is None or exc.name.split(".")[0] != sdk:
            raise
        raise ConfigurationError(
            f"the {provider} provider needs the {sdk} package: "
            f"pip install 'loreweave[{provider}]' (or choose another provider)"
        ) from None


def _mistral_chat(settings: Settings) -> ChatModel:
    with _sdk("mistral"):
        from loreweave.llm.providers.mistral import MistralChatModel

    mode = settings.provider_config.structured_output
    if mode == "json_object_schema":
        raise ConfigurationError(
            "provider_config.structured_output=json_object_schema is llama-cpp-python's form; "
            "Mistral takes json_schema, json_object, off or auto"
        )
    return MistralChatModel(
        _require_mistral_key(settings, "LOREWEAVE_LLM_PROVIDER"),
        server_url=settings.mistral_server_url,
        timeout=settings.provider_config.timeout,
        structured_output=mode,
    )


def _openai_target(settings: Settings, variable: str) -> str | None:
    """The OpenAI provider talks to an OpenAI-compatible server (its URL) or to OpenAI itself
    (its key): with neither it could only fail every call, so it does not start."""
    key = _secret(settings, "OPENAI_API_KEY")
    if settings.openai_base_url is None and key is None:
        raise ConfigurationError(
            f"{variable}=openai needs LOREWEAVE_OPENAI_BASE_URL (an OpenAI-compatible server, "
            "e.g. http://127.0.0.1:11434/v1 for Ollama) or OPENAI_API_KEY (api.openai.com)"
        )
    return key


def _openai_chat(settings: Settings) -> ChatModel:
    with _sdk("openai"):
        from loreweave.llm.providers.openai_compatible import OpenAIChatModel

    return OpenAIChatModel(
        _openai_target(settings, "LOREWEAVE_LLM_PROVIDER"),
        base_url=settings.openai_base_url,
        timeout=settings.provider_config.timeout,
        structured_output=settings.provider_config.structured_output,
    )


def _scripted_chat(settings: Settings) -> ChatModel:
    from loreweave.llm.providers.scripted import ScriptedChatModel

    if settings.scripted_cassette is None:
        # placeholders only: a reply that says so, and analyses that change nothing (the demo's
        # story cassette is for `loreweave demo`, which names it)
        return ScriptedChatModel.placeholder()
    return ScriptedChatModel.from_file(settings.scripted_cassette)


def _mistral_embedder(settings: Settings) -> Embedder:
    with _sdk("mistral"):
        from loreweave.llm.providers.mistral import MistralEmbedder

    return MistralEmbedder(
        _require_mistral_key(settings, "LOREWEAVE_EMBEDDING_PROVIDER"),
        model=settings.llm_config.embedding_model,
        server_url=settings.mistral_server_url,
        timeout=settings.provider_config.timeout,
    )


def _openai_embedder(settings: Settings) -> Embedder:
    with _sdk("openai"):
        from loreweave.llm.providers.openai_compatible import OpenAIEmbedder

    return OpenAIEmbedder(
        _openai_target(settings, "LOREWEAVE_EMBEDDING_PROVIDER"),
        model=settings.llm_config.embedding_model,
        base_url=settings.openai_base_url,
        timeout=settings.provider_config.timeout,
    )


def _local_embedder(settings: Settings) -> Embedder:
    from loreweave.llm.providers.local import LocalEmbedder

    return LocalEmbedder()


CHAT_PROVIDERS: dict[str, Callable[[Settings], ChatModel]] = {
    "mistral": _mistral_chat,
    "openai": _openai_chat,
    "scripted": _scripted_chat,
}
EMBEDDING_PROVIDERS: dict[str, Callable[[Settings], Embedder]] = {
    "mistral": _mistral_embedder,
    "openai": _openai_embedder,
    "local": _local_embedder,
}
# Providers in this process need no rate limit or retries.
IN_PROCESS = {"scripted", "local"}


@dataclass
class Providers:
    """The chat model and embedder of this process, resilience included."""

    chat: ChatModel
    embedder: Embedder
    stats: CallStats = field(default_factory=CallStats)


class _Resiliences:
    """One Resilience (rate limit + retries) per provider name, shared by chat and embeddings."""

    def __init__(self, settings: Settings, stats: CallStats) -> None:
        config = settings.provider_config
        self.policy = RetryPolicy(config.max_attempts, config.backoff_initial, config.backoff_max)
        self.config = config
        self.stats = stats
        self.by_provider: dict[str, Resilience] = {}

    def __call__(self, provider: str) -> Resilience:
        if provider not in self.by_provider:
            limiter = RateLimiter(self.config.requests_per_second, self.config.tokens_per_minute)
            self.by_provider[provider] = Resilience(self.policy, limiter, stats=self.stats)
        return self.by_provider[provider]


def build_embedder(settings: Settings, resilience: _Resiliences | None = None) -> Embedder:
    embedder = EMBEDDING_PROVIDERS[settings.embedding_provider](settings)
    if settings.embedding_provider in IN_PROCESS:
        return embedder
    resilience = resilience or _Resiliences(settings, CallStats())
    return ResilientEmbedder(embedder, resilience(settings.embedding_provider))


def build_providers(settings: Settings, *, stats: CallStats | None = None) -> Providers:
    stats = stats or CallStats()
    resilience = _Resiliences(settings, stats)
    chat = CHAT_PROVIDERS[settings.llm_provider](settings)
    if settings.llm_provider not in IN_PROCESS:
        chat = ResilientChatModel(chat, resilience(settings.llm_provider))
    return Providers(chat=chat, embedder=build_embedder(settings, resilience), stats=stats)

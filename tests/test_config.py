from __future__ import annotations

from pathlib import Path

import pytest

from loreweave.config import Settings, load_settings
from loreweave.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LOREWEAVE_") or key in ("MISTRAL_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(key)


def test_defaults_are_the_specs() -> None:
    settings = load_settings()
    notes = settings.dual_queue_config.note_update_queue
    creations = settings.dual_queue_config.entity_creation_queue
    assert (notes.max_retries, notes.retry_delay, notes.batch_size) == (3, 60, 5)
    assert (creations.max_retries, creations.retry_delay) == (3, 60)
    # one pool, sized by the calls in flight, serves every queue; batches form only when work
    # waits; no rate limit of our own unless one is set
    assert notes.concurrent_workers is None and creations.concurrent_workers is None
    assert settings.provider_config.calls_in_flight == 4
    assert settings.provider_config.requests_per_second is None
    assert settings.provider_config.tokens_per_minute is None
    assert settings.pipeline_config.note_target_words == 150
    llm = settings.llm_config
    assert llm.analysis_model == llm.rewrite_model == llm.creation_model == "mistral-large-latest"
    assert (llm.temperature_analysis, llm.temperature_rewrite, llm.temperature_creation) == (
        0.3,
        0.7,
        0.5,
    )
    assert llm.embedding_model == "mistral-embed"
    composite = settings.composite_document_config
    assert composite.base_lore_prefix == "[Base Lore]"
    assert composite.session_notes_prefix == "[Session-Specific Notes]"
    assert composite.separator == "\n\n"
    assert settings.database_url == "sqlite:///loreweave.db"
    assert settings.queue_backend == "local"


def test_environment_overrides_with_exact_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOREWEAVE_DATABASE_URL", "postgresql://db.example/lore")
    monkeypatch.setenv("LOREWEAVE_QUEUE_BACKEND", "celery")
    monkeypatch.setenv("LOREWEAVE_BROKER_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("LOREWEAVE_INDEX_DIR", "/var/lib/lw")
    monkeypatch.setenv("LOREWEAVE_LLM_PROVIDER", "openai")
    monkeypatch.setenv("LOREWEAVE_EMBEDDING_PROVIDER", "mistral")
    monkeypatch.setenv("LOREWEAVE_MISTRAL_SERVER_URL", "http://127.0.0.1:9000/")
    monkeypatch.setenv("LOREWEAVE_OPENAI_BASE_URL", "http://127.0.0.1:9001/v1")
    monkeypatch.setenv("LOREWEAVE_API_KEYS", "alpha, beta")
    monkeypatch.setenv("LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__BATCH_SIZE", "9")
    monkeypatch.setenv("LOREWEAVE_LLM_CONFIG__TEMPERATURE_REWRITE", "0.2")
    settings = load_settings()
    assert settings.database_url == "postgresql://db.example/lore"
    assert settings.queue_backend == "celery"
    assert settings.broker_url == "redis://127.0.0.1:6379/3"
    assert settings.index_dir == Path("/var/lib/lw")
    assert settings.llm_provider == "openai"
    assert settings.embedding_provider == "mistral"
    assert settings.mistral_server_url == "http://127.0.0.1:9000"
    assert settings.openai_base_url == "http://127.0.0.1:9001/v1"
    assert [key.get_secret_value() for key in settings.api_keys] == ["alpha", "beta"]
    assert settings.dual_queue_config.note_update_queue.batch_size == 9
    assert settings.dual_queue_config.note_update_queue.max_retries == 3
    assert settings.llm_config.temperature_rewrite == 0.2


def test_toml_file_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "loreweave.toml"
    config.write_text(
        'queue_backend = "celery"\n'
        'database_url = "sqlite:///from-file.db"\n'
        "[dual_queue_config.entity_creation_queue]\n"
        "concurrent_workers = 4\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LOREWEAVE_DATABASE_URL", "sqlite:///from-env.db")
    settings = load_settings(config)
    assert settings.queue_backend == "celery"
    assert settings.database_url == "sqlite:///from-env.db"
    assert settings.dual_queue_config.entity_creation_queue.concurrent_workers == 4
    assert settings.dual_queue_config.entity_creation_queue.batch_size == 4

    monkeypatch.setenv("LOREWEAVE_CONFIG", str(config))
    assert load_settings().queue_backend == "celery"


def test_secrets_come_from_the_environment_and_are_never_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-very-secret")
    monkeypatch.setenv("LOREWEAVE_API_KEYS", "api-secret")
    settings = load_settings()
    assert settings.mistral_api_key is not None
    assert settings.mistral_api_key.get_secret_value() == "sk-very-secret"
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "sk-very-secret" not in shown
        assert "api-secret" not in shown


@pytest.mark.parametrize(
    ("variable", "value", "culprit"),
    [
        ("LOREWEAVE_DATABASE_URLL", "sqlite:///x.db", "LOREWEAVE_DATABASE_URLL"),
        ("LOREWEAVE_LLM_CONFIG__ANALYSIS_MODLE", "x", "LOREWEAVE_LLM_CONFIG__ANALYSIS_MODLE"),
        ("LOREWEAVE_QUEUE_BACKEND", "rabbit", "queue_backend"),
        ("LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__MAX_RETRIES", "-1", "max_retries"),
        ("LOREWEAVE_DATABASE_URL", "not a url", "database_url"),
        ("LOREWEAVE_DATABASE_URL", "mysql://127.0.0.1/x", "database_url"),
        ("LOREWEAVE_BROKER_URL", "http://127.0.0.1", "broker_url"),
        ("LOREWEAVE_MISTRAL_SERVER_URL", "ftp://x", "mistral_server_url"),
        (
            "LOREWEAVE_PRIORITY_CONFIG__QUEUE_ORDER",
            '["analysis", "analysis"]',
            "priority_config.queue_order",
        ),
        ("LOREWEAVE_PROVIDER_CONFIG__CALLS_IN_FLIGHT", "0", "provider_config.calls_in_flight"),
        ("LOREWEAVE_PIPELINE_CONFIG__NOTE_TARGET_WORDS", "3", "pipeline_config.note_target_words"),
    ],
)
def test_bad_environment_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, culprit: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert culprit in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "culprit"),
    [
        ("databse_url = 'sqlite:///x.db'\n", "databse_url"),
        ("[llm_config]\nrewrite_temp = 1\n", "rewrite_temp"),
        ("[dual_queue_config.note_update_queue]\nbatch_size = 'many'\n", "batch_size"),
        ("MISTRAL_API_KEY = 'sk-in-a-file'\n", "MISTRAL_API_KEY"),
        ("queue_backend = \n", "not valid TOML"),
    ],
)
def test_bad_file_is_one_clear_error(tmp_path: Path, content: str, culprit: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config)
    assert culprit in str(caught.value)
    assert "sk-in-a-file" not in str(caught.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.database_url = "sqlite:///other.db"  # type: ignore[misc]


@pytest.mark.parametrize(
    "value",
    ['["https://a.example", "http://b.example:8080"]', "https://a.example, http://b.example:8080"],
)
def test_list_settings_read_a_json_list_or_commas(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Issue 40: a JSON list (accepted before) silently allowed no origin at all."""
    monkeypatch.setenv("LOREWEAVE_CORS_ORIGINS", value)
    monkeypatch.setenv("LOREWEAVE_ALLOWED_HOSTS", '["lore.example", "127.0.0.1"]')
    settings = load_settings()
    assert settings.cors_origins == ["https://a.example", "http://b.example:8080"]
    assert settings.allowed_hosts == ["lore.example", "127.0.0.1"]


@pytest.mark.parametrize("value", ['["https://a.example"', "a.example", "[1, 2]"])
def test_an_origin_that_can_match_nothing_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LOREWEAVE_CORS_ORIGINS", value)
    with pytest.raises(ConfigurationError, match="cors_origins"):
        load_settings()

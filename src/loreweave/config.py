"""Settings: one object, from defaults < TOML file < environment (prefix ``LOREWEAVE_``).

The three groups of the original plan keep their names (``DUAL_QUEUE_CONFIG``, ``LLM_CONFIG``,
``COMPOSITE_DOCUMENT_CONFIG``); nested values are set with ``__`` in the environment, e.g.
``LOREWEAVE_DUAL_QUEUE_CONFIG__NOTE_UPDATE_QUEUE__BATCH_SIZE=8``.  Provider secrets are read
only from the environment (``MISTRAL_API_KEY``, ``OPENAI_API_KEY``) and never printed.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from loreweave.errors import ConfigurationError

ENV_PREFIX = "LOREWEAVE_"
CONFIG_FILE_ENV = "LOREWEAVE_CONFIG"
SECRET_ENV = ("MISTRAL_API_KEY", "OPENAI_API_KEY")


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueConfig(_Group):
    """One queue of the dual-queue system."""

    max_retries: int = Field(3, ge=0, le=100)
    retry_delay: float = Field(60.0, ge=0, description="seconds; doubles with each retry")
    batch_size: int = Field(5, ge=1, le=100, description="jobs one LLM call may cover")
    concurrent_workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="at most this many of the calls in flight for this queue; None: any",
    )
    lease_seconds: float = Field(300.0, gt=0, description="how long a claim holds a task")


class NoteUpdateQueueConfig(QueueConfig):
    """``batch_size``: events of one entity folded into its rewrite; ``entities_per_call``:
    entities of one session rewritten by one call when they wait together."""

    entities_per_call: int = Field(4, ge=1, le=50)


class EntityCreationQueueConfig(QueueConfig):
    """``batch_size``: creations of one session written by one call when they wait together."""

    batch_size: int = Field(4, ge=1, le=50)


class AnalysisQueueConfig(QueueConfig):
    """The analysis jobs (one per turn, in turn order per session); ``batch_size``: consecutive
    turns of one session analysed by one call when they wait together."""

    batch_size: int = Field(8, ge=1, le=50)


class DualQueueConfig(_Group):
    note_update_queue: NoteUpdateQueueConfig = NoteUpdateQueueConfig()
    entity_creation_queue: EntityCreationQueueConfig = EntityCreationQueueConfig()
    analysis_queue: AnalysisQueueConfig = AnalysisQueueConfig()
    queues: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="a job kind added beyond the spec's three: its settings by its name "
        "(validated by the kind's own settings model when the process is built)",
    )


# The analysis settings' earlier names (``pipeline_config.analysis_*``), still accepted.
LEGACY_ANALYSIS_KEYS = {
    "analysis_workers": "concurrent_workers",
    "analysis_max_retries": "max_retries",
    "analysis_retry_delay": "retry_delay",
    "analysis_lease_seconds": "lease_seconds",
}


def _move_legacy_analysis_keys(data: Any) -> Any:
    """``pipeline_config.analysis_workers`` etc. → ``dual_queue_config.analysis_queue.*``; a
    value set under the new name wins."""
    if not isinstance(data, dict):
        return data
    pipeline = data.get("pipeline_config")
    if not isinstance(pipeline, dict) or not any(
        k.lower() in LEGACY_ANALYSIS_KEYS for k in pipeline
    ):
        return data
    pipeline = dict(pipeline)
    moved = {
        LEGACY_ANALYSIS_KEYS[key.lower()]: pipeline.pop(key)
        for key in list(pipeline)
        if key.lower() in LEGACY_ANALYSIS_KEYS
    }
    queues = data.get("dual_queue_config")
    queues = dict(queues) if isinstance(queues, dict) else {}
    analysis = queues.get("analysis_queue")
    analysis = dict(analysis) if isinstance(analysis, dict) else {}
    queues["analysis_queue"] = {**moved, **analysis}
    return {**data, "pipeline_config": pipeline, "dual_queue_config": queues}


class LLMConfig(_Group):
    analysis_model: str = "mistral-large-latest"
    rewrite_model: str = "mistral-large-latest"
    creation_model: str = "mistral-large-latest"
    chat_model: str = "mistral-large-latest"
    embedding_model: str = "mistral-embed"
    temperature_analysis: float = Field(0.3, ge=0, le=2)
    temperature_rewrite: float = Field(0.7, ge=0, le=2)
    temperature_creation: float = Field(0.5, ge=0, le=2)
    temperature_chat: float = Field(0.7, ge=0, le=2)


class CompositeDocumentConfig(_Group):
    base_lore_prefix: str = "[Base Lore]"
    session_notes_prefix: str = "[Session-Specific Notes]"
    separator: str = "\n\n"


class RetrievalConfig(_Group):
    """What a turn retrieves (DESIGN §1.3): how many entities, within how many tokens, found how.

    Entities are ranked by reciprocal rank fusion of the vector ranking (each entity by its best
    search key) and BM25 over the session's documents; constant entries and entries whose
    keywords the recent messages name come first and count inside ``k`` and the budget."""

    k: int = Field(5, ge=1, le=50, description="entities handed to the chat model")
    token_budget: int = Field(2000, ge=50, le=200_000, description="tokens of lore per prompt")
    history_turns: int = Field(2, ge=0, le=20, description="earlier turns in the query")
    history_decay: float = Field(
        0.5, ge=0, le=1, description="weight of each earlier turn, × per turn back"
    )
    scan_depth: int = Field(1, ge=0, le=20, description="earlier turns scanned for keywords")
    vector_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    rrf_k: float = Field(60.0, gt=0, description="the reciprocal rank fusion constant")
    chunk_words: int = Field(
        160, ge=20, le=4000, description="longer lore or notes are also searched in chunks"
    )
    keywords: bool = True
    bm25: bool = True
    observer_event_chars: int = Field(
        1200, ge=50, le=100_000, description="an observer's view: its newest events, in chars"
    )


class ProxyConfig(_Group):
    """The OpenAI-compatible proxy (``/v1``): where the lore goes, how a request is read."""

    upstream_model: str | None = Field(None, description="default: llm_config.chat_model")
    lore_position: Literal["system_end", "depth"] = "system_end"
    lore_depth: int = Field(4, ge=0, le=100, description="messages from the end, for 'depth'")
    token_budget: int | None = Field(None, ge=50, le=200_000, description="default: retrieval's")
    analyse_unmatched_history: bool = Field(
        True, description="a chat seen first mid-way: analyse the turns it already had"
    )
    continue_patterns: list[str] = [
        r"^\[Continue the following message",
        r"^\[Continue your last message",
    ]
    impersonate_patterns: list[str] = [r"^\[Write your next reply from the point of view of"]
    # what SillyTavern's strict post-processing puts before a chat that opens with a greeting
    placeholder: str | None = "Let's get started."
    # a group chat's nudge, naming the member who speaks next (the group ``name``)
    group_patterns: list[str] = [r"^\[Write the next reply only as (?P<name>[^\]\n]+?)\.\]$"]
    # a group chat's start marker naming its members (``names``, comma-separated): where the app
    # merged consecutive member replies into one message, they are split at these names
    members_patterns: list[str] = [
        r"^\[Start a new group chat\. Group members: (?P<names>[^\]\n]+)\]$"
    ]
    # a 1:1 chat's start marker: where "claude" post-processing merged the system text into the
    # first user message, the text up to the marker is context, not the player's
    start_patterns: list[str] = [r"^\[Start a new Chat\]$"]
    # who a 1:1 request is written for (SillyTavern's main prompt, {{char}} substituted): the
    # observer whose view of the world the lore block is (DESIGN §1.6)
    observer_patterns: list[str] = [r"Write (?P<name>[^\n.']+?)'s next reply"]


StructuredOutput = Literal["auto", "json_schema", "json_object_schema", "json_object", "off"]


class ProviderConfig(_Group):
    """Resilience around every LLM and embedding provider."""

    timeout: float = Field(60.0, gt=0, description="seconds per request")
    max_attempts: int = Field(4, ge=1, le=20)
    backoff_initial: float = Field(1.0, ge=0)
    backoff_max: float = Field(30.0, ge=0)
    calls_in_flight: int = Field(
        4,
        ge=1,
        le=256,
        description="LLM calls the memory workers of a process make at once (the worker pool)",
    )
    structured_output: StructuredOutput = Field(
        "auto",
        description=(
            "how a memory request's JSON schema is sent: json_schema (Mistral, OpenAI, vLLM, "
            "llama.cpp's llama-server, Ollama), json_object_schema (llama-cpp-python's server), "
            "json_object (JSON mode, no schema), off; auto steps down when a server refuses one"
        ),
    )
    # None: no limit of our own; the provider's 429s (and their Retry-After) still slow us down.
    # Set them to your plan's limits: a limit below calls_in_flight's pace caps throughput.
    requests_per_second: float | None = Field(None, gt=0)
    tokens_per_minute: int | None = Field(None, gt=0)


class PipelineConfig(_Group):
    """The memory pipeline around the queues: analysis limits, polling, sweeping."""

    analysis_history_turns: int = Field(3, ge=0, le=50)
    analysis_max_entities: int = Field(200, ge=1, le=5000)
    max_updates_per_turn: int = Field(10, ge=0, le=100)
    max_creations_per_turn: int = Field(5, ge=0, le=100)
    max_summary_chars: int = Field(1000, ge=50, le=20_000)
    max_entry_chars: int = Field(
        2000, ge=100, le=50_000, description="a created entry's description, at most"
    )
    note_target_words: int | None = Field(
        150, ge=20, le=5000, description="the rewrite prompt asks for notes this long; None: no"
    )
    mode: Literal["full", "lean"] = Field(
        "lean",
        description="lean (the default: the same quality on bench/model_quality.py for about "
        "half the model time, bench/README.md): the analysis's answer is the memory write (an "
        "update is appended to its note, a named newcomer's summary is its entry's content) and "
        "the rewrite model only condenses a note past its bound; full: the spec's pipeline (a "
        "rewrite call folds each entity's events, a creation call writes each new entry)",
    )
    rewrite_first_note: bool = Field(
        False,
        description="ask the LLM to write a note that does not exist yet (else: its events)",
    )
    rewrite_json: bool = Field(
        False,
        description='ask for a single rewrite as JSON {"note": …}, its length in the schema '
        "(for servers that enforce schemas: small local models keep to it; see README)",
    )
    # grounding checks: what validates but did not come from the story (each says what it
    # rejected: the turn's processing notes, the task's error)
    ground_creations: bool = Field(
        True, description="reject a created entry whose name its turn (or those shown) never uses"
    )
    ground_updates: bool = Field(
        True, description="flag an update whose summary shares no word with its turn"
    )
    ground_notes: bool = Field(
        True, description="a rewritten note with a name from nowhere is unusable (retried)"
    )
    small_model: bool | None = Field(
        None,
        description="the small-model profile: an update whose entity the latest turn does not "
        "name, or that shares no word with it, is rejected (else flagged), and the caps not set "
        "here are a small model's (SMALL_MODEL_CAPS); None: on when the analysis model's name "
        "says it is small (SmolLM2-135M, qwen2.5:3b: 4B parameters or less)",
    )
    poll_interval: float = Field(1.0, gt=0, description="seconds an idle worker waits")
    sweep_interval: float = Field(5.0, gt=0)
    startup_wait: float = Field(
        120.0, ge=0, description="seconds a worker started while the database is down waits for it"
    )


# a size in a model's name ("135M", "0.5b", ":3b"), or a family of small models by name
_MODEL_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", re.IGNORECASE)
_SMALL_FAMILIES = ("smol", "tinyllama")
SMALL_MODEL_BILLIONS = 4.0
# the caps of the small-model profile (a 135M model keeps within them; README "Use a local
# model"): with the defaults' token bounds SmolLM2 rambled for minutes a call
SMALL_MODEL_CAPS: dict[str, Any] = {
    "max_updates_per_turn": 4,
    "max_creations_per_turn": 2,
    "max_summary_chars": 300,
    "max_entry_chars": 600,
    "note_target_words": 60,
}


def small_model(name: str) -> bool:
    """Whether a model's name says it is small (:attr:`PipelineConfig.small_model`)."""
    lowered = name.lower()
    if any(family in lowered for family in _SMALL_FAMILIES):
        return True
    for number, unit in _MODEL_SIZE.findall(lowered):
        billions = float(number) / (1000 if unit == "m" else 1)
        if billions <= SMALL_MODEL_BILLIONS:
            return True
    return False


class PriorityConfig(_Group):
    """Which ready job the next free LLM call goes to.  Sessions being played (a turn within
    ``live_seconds``) come before an old backlog; then the queues in ``queue_order``, and the
    job kinds it does not name in their registry's order (by default: new turns are analysed
    as they come, creations go before the rewrites that may mention them, and rewrites come
    last, folding every event that waits); within a queue the oldest job first.  A session's
    earlier turns always go first where order matters (job order)."""

    live_seconds: float = Field(300.0, ge=0, description="0: no live tier, one first-come line")
    queue_order: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        description="queue names first in priority (checked against the job kinds when the "
        "process is built); empty: the kinds' own order",
    )

    @field_validator("queue_order")
    @classmethod
    def _each_queue_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("name each queue at most once")
        return value


class AlertConfig(_Group):
    """When the service and the workers raise alerts, and how they are sent."""

    interval: float = Field(15.0, gt=0, description="seconds between evaluations")
    cooldown: float = Field(300.0, ge=0, description="seconds before an alert is sent again")
    backlog_scale: float = Field(
        1.0,
        gt=0,
        description="× the spec's targets: 30 s note updates and analyses, 45 s creations",
    )
    provider_failing_minutes: float = Field(5.0, gt=0)
    verify_interval: float = Field(600.0, ge=0, description="index verification; 0 = never")
    webhook_format: Literal["json", "slack", "discord"] = "json"
    webhook_timeout: float = Field(5.0, gt=0)
    webhook_attempts: int = Field(3, ge=1, le=10)


def _split_commas(value: Any) -> Any:
    """A list setting from the environment: comma-separated, or a JSON list (as before)."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON list: {exc}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("a JSON list of strings, or comma-separated values")
        return [part.strip() for part in value if part.strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_ORIGIN = re.compile(r"^(\*|https?://[^/\s,\[\]\"']+/?)$")


class Settings(BaseSettings):
    """Everything configurable about loreweave, validated at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    database_url: str = "sqlite:///loreweave.db"
    queue_backend: Literal["local", "celery"] = "local"
    broker_url: str = "redis://127.0.0.1:6379/0"
    # prepended to every key loreweave's Celery queues use on Redis: deployments (or test runs)
    # sharing one Redis database stay apart
    broker_key_prefix: str = Field("", max_length=100, pattern=r"^[\w.:-]*$")
    index_dir: Path = Path("loreweave-index")
    # SillyTavern's name macros ({{user}}, {{char}}, any case) in lore text sent to a model; the
    # proxy takes the names from a request's messages when they carry them (``name``)
    persona_name: str = Field("User", min_length=1, max_length=100)
    character_name: str = Field("Character", min_length=1, max_length=100)
    llm_provider: Literal["mistral", "openai", "scripted"] = "mistral"
    embedding_provider: Literal["mistral", "openai", "local"] = "local"
    mistral_server_url: str | None = None
    openai_base_url: str | None = None
    scripted_cassette: Path | None = None
    api_keys: Annotated[list[SecretStr], NoDecode] = []
    cors_origins: Annotated[list[str], NoDecode] = []
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_threads: int = Field(256, ge=1, le=4096, description="turns the API serves at once")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="larger request bodies: 413")
    allowed_hosts: Annotated[list[str], NoDecode] = []  # Host names served; [] = see serve

    dual_queue_config: DualQueueConfig = DualQueueConfig()
    llm_config: LLMConfig = LLMConfig()
    composite_document_config: CompositeDocumentConfig = CompositeDocumentConfig()
    retrieval_config: RetrievalConfig = RetrievalConfig()
    proxy_config: ProxyConfig = ProxyConfig()
    provider_config: ProviderConfig = ProviderConfig()
    pipeline_config: PipelineConfig = PipelineConfig()
    priority_config: PriorityConfig = PriorityConfig()
    alert_config: AlertConfig = AlertConfig()
    # a Slack or Discord webhook URL is a credential: kept secret, never printed
    alert_webhook_url: SecretStr | None = None

    # Secrets: environment only (see _reject_file_secrets), never in repr().
    mistral_api_key: SecretStr | None = Field(None, validation_alias="MISTRAL_API_KEY")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")

    _lists_split = field_validator("cors_origins", "allowed_hosts", mode="before")(_split_commas)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """An origin is ``scheme://host[:port]`` (or ``*``): anything else would match no
        browser's Origin and silently allow nothing."""
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin (https://host[:port], or *)")
        return [origin.rstrip("/") for origin in value]

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        """Comma-separated; a value that is set but holds no key would silently turn
        authentication off, so it is refused."""
        if isinstance(value, str):
            keys = _split_commas(value)
            if value and not keys:
                raise ValueError("set but holds no key: authentication would be off")
            for key in keys:
                secret, at, worlds = key.partition("@")
                try:
                    ids = [uuid.UUID(w.strip()) for w in worlds.split(";") if w.strip()]
                except ValueError:
                    raise ValueError("a key's worlds must be world ids: key@<id>;<id>") from None
                if not secret or (at and not ids):
                    raise ValueError("a key limited to worlds reads key@<world id>;<world id>")
            return keys
        return value

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        return _move_legacy_analysis_keys(data)

    @model_validator(mode="after")
    def _small_model_caps(self) -> Settings:
        """The small-model profile (:attr:`PipelineConfig.small_model`) takes the caps a small
        model keeps within, for each one ``pipeline_config`` leaves unset."""
        pipeline = self.pipeline_config
        on = pipeline.small_model
        if on is None:
            on = small_model(self.llm_config.analysis_model)
        unset = {k: v for k, v in SMALL_MODEL_CAPS.items() if k not in pipeline.model_fields_set}
        if on and unset:  # frozen: set once, here, while the settings are being made
            object.__setattr__(self, "pipeline_config", pipeline.model_copy(update=unset))
        return self

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:// and postgresql:// URLs are supported")
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "memory://")):
            raise ValueError("the broker must be a redis:// or rediss:// URL")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _check_webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("mistral_server_url", "openai_base_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (the TOML file's content, or a caller's) < environment.
        return env_settings, init_settings


def _known_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        if field.validation_alias is not None:
            continue
        key = f"{prefix}{name.upper()}"
        names.add(key)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _known_env_names(annotation, key + "__")
    return names


# the settings of job kinds added beyond the spec's three: their names are checked against the
# kinds when the process is built (``Kinds.order``), their values by each kind's settings model
OPEN_ENV_PREFIXES = (f"{ENV_PREFIX}DUAL_QUEUE_CONFIG__QUEUES__",)


def _check_environment(environ: dict[str, str]) -> None:
    known = _known_env_names(Settings, ENV_PREFIX) | {CONFIG_FILE_ENV}
    known |= {f"{ENV_PREFIX}PIPELINE_CONFIG__{key.upper()}" for key in LEGACY_ANALYSIS_KEYS}
    for key in sorted(environ):
        name = key.upper()
        open_ = name.startswith(OPEN_ENV_PREFIXES)
        if name.startswith(ENV_PREFIX) and name not in known and not open_:
            raise ConfigurationError(f"unknown configuration key in the environment: {key}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"configuration file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read configuration file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"configuration file {path} is not valid TOML: {exc}") from None
    for key in data:
        if key.upper() in SECRET_ENV or key.lower() in ("mistral_api_key", "openai_api_key"):
            raise ConfigurationError(
                f"{path}: secrets are read from the environment only; remove '{key}'"
            )
    return data


def _describe(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "settings"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown configuration key"
    return f"{location}: {message} ({source})"


def load_settings(config_file: Path | None = None) -> Settings:
    """Build the settings from the environment and an optional TOML file.

    ``config_file`` defaults to ``$LOREWEAVE_CONFIG`` when set.  Raises
    :class:`ConfigurationError` with one readable line naming the culprit.
    """
    _check_environment(dict(os.environ))
    env_file = os.environ.get(CONFIG_FILE_ENV)
    path = config_file or (Path(env_file) if env_file else None)
    file_values = _read_toml(path) if path else {}
    source = f"file {path} or environment" if path else "environment"
    try:
        return Settings(**file_values)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid configuration: {_describe(exc, source)}") from None

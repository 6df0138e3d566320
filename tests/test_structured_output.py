"""Structured outputs on every provider (issue 22): each memory request carries its own JSON
schema in the form the server takes (the ids it shows as an enum, its caps as maxItems, its
lengths bounded) and a ``max_tokens`` that fits its kind; ``auto`` steps down when a server
refuses a form and remembers it; a cut or empty-but-valid answer is never saved."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from loreweave.bootstrap import Loreweave, build
from loreweave.config import Settings
from loreweave.db import Database
from loreweave.db.models import ChatTurn, LoreEntry, NoteUpdateTask
from loreweave.errors import InvalidResponse, ProviderUnavailable, RequestRejected
from loreweave.llm.prompts.analysis import AnalysisResult, BatchAnalysisResult
from loreweave.llm.prompts.creation import CreatedEntity
from loreweave.llm.prompts.schema import GRAMMAR_REPEAT_LIMIT
from loreweave.llm.providers.forms import StructuredForms, refused
from loreweave.llm.registry import build_providers
from loreweave.llm.structured import complete_structured
from loreweave.llm.types import ChatRequest, Message
from loreweave.memory.rewrite import clean_rewrite
from loreweave.testing import FakeProviderServer, FakeReply, HashingEmbedder
from loreweave.testing.fake_provider import RecordedRequest, structured_form

from .pipeline_support import make_world

CHAT = "/v1/chat/completions"
MEMORY_PROMPTS = {"analysis", "analysis.batch", "rewrite.batch", "creation", "creation.batch"}


def _turn_number(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"]


def _analysis_batch(body: dict[str, Any]) -> str:
    return json.dumps(
        {
            "turns": {
                "1": {
                    "updates": {"E1": "Momo trains at the gate.", "E2": "The gate cracks."},
                    "creations": {
                        "N1": {
                            "entity_type": "Character",
                            "name": "Kenta",
                            "summary": "Kenta, a hunter.",
                        },
                        "N2": {
                            "entity_type": "Item",
                            "name": "Muramasa",
                            "summary": "Muramasa, a cursed blade.",
                        },
                    },
                },
                "2": {"updates": {"E1": "Momo rests."}},
            }
        }
    )


def _analysis(body: dict[str, Any]) -> str:
    text = _turn_number(body)
    if "Vesper" in text.split("[Latest Turn]")[-1]:
        creation = {
            "entity_type": "Character",
            "name": "Vesper",
            "creation_summary": "Vesper, a bard.",
            "known_by": [],
        }
        return json.dumps({"updates": [], "creations": [creation]})
    # Momo alone, and the person playing, know it (E1 is Momo, a Character)
    update = {"lore_entry_id": "E1", "update_summary": "Momo meditates.", "known_by": ["E1"]}
    return json.dumps({"updates": [update], "creations": []})


def _asked(body: dict[str, Any], entry: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``entry`` without a title when the schema does not ask one (the newcomer is named)."""
    return {k: v for k, v in entry.items() if k in schema["properties"]}


def _creation_batch(body: dict[str, Any]) -> str:
    schema = body["response_format"]["json_schema"]["schema"]["properties"]["entries"]
    entries = {
        "C1": {"title": "Kenta", "content": "A hunter.", "tags": ["hunter"]},
        "C2": {"title": "Muramasa", "content": "A cursed blade.", "tags": []},
    }
    return json.dumps(
        {"entries": {r: _asked(body, e, schema["properties"][r]) for r, e in entries.items()}}
    )


def _creation(body: dict[str, Any]) -> str:
    entry = {"title": "Vesper", "content": "A wandering bard.", "tags": ["bard"]}
    return json.dumps(_asked(body, entry, body["response_format"]["json_schema"]["schema"]))


def _rewrite_batch(body: dict[str, Any]) -> str:
    refs = body["response_format"]["json_schema"]["schema"]["properties"]["notes"]["required"]
    return json.dumps({"notes": {ref: f"Note of {ref}, rewritten." for ref in refs}})


HANDLERS = {
    "analysis": _analysis,
    "analysis.batch": _analysis_batch,
    "creation": _creation,
    "creation.batch": _creation_batch,
    "rewrite": lambda body: "Momo trained, rested and now meditates.",
    "rewrite.batch": _rewrite_batch,
    "rewrite.note": lambda body: json.dumps({"note": "Momo trained, rested and now meditates."}),
}


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(api_key="k", prompt_handlers=HANDLERS) as running:
        yield running


def _app(
    database: Database, tmp_path: Path, provider: str, server: FakeProviderServer, **extra: Any
) -> Loreweave:
    urls = {"mistral_server_url": server.url, "openai_base_url": server.openai_url}
    settings = Settings(
        index_dir=tmp_path / "index",
        llm_provider=provider,
        mistral_api_key="k",
        openai_api_key="k",
        pipeline_config={  # the full pipeline: every memory prompt is asked
            "mode": "full",
            "rewrite_first_note": True,
            "max_updates_per_turn": 6,
            **extra.pop("pipeline_config", {}),
        },
        provider_config={"max_attempts": 1, **extra.pop("provider_config", {})},
        **urls,
        **extra,
    )
    providers = build_providers(settings)
    providers.embedder = HashingEmbedder(64)
    return build(settings, providers=providers, database=database)


def _story(app: Loreweave, session_id: uuid.UUID) -> None:
    """Two turns waiting together (a batched analysis, two creations, two rewrites at once),
    then one alone (its analysis and rewrite alone), then one that creates an entity alone."""
    app.chat.record(session_id, "Momo trains; Kenta arrives with Muramasa.", "…")
    app.chat.record(session_id, "Momo rests.", "…")
    app.pipeline.drain()
    app.chat.record(session_id, "Momo meditates.", "…")
    app.pipeline.drain()
    app.chat.record(session_id, "Vesper sings.", "…")
    app.pipeline.drain()


def _by_prompt(server: FakeProviderServer) -> dict[str, list[RecordedRequest]]:
    found: dict[str, list[RecordedRequest]] = {}
    for request in server.requests_to(CHAT):
        found.setdefault(request.prompt or "", []).append(request)
    return found


@pytest.mark.parametrize("provider", ["mistral", "openai"])
def test_every_memory_request_carries_its_schema_and_token_bound(
    provider: str, database: Database, tmp_path: Path, server: FakeProviderServer
) -> None:
    app = _app(database, tmp_path, provider, server)
    _, session_id, _ = make_world(
        database, ("Momo", "Character", "A psychic girl."), ("Gate", "Location", "A gate.")
    )
    _story(app, session_id)
    sent = _by_prompt(server)
    assert MEMORY_PROMPTS | {"rewrite"} <= set(sent), sorted(sent)
    for prompt in MEMORY_PROMPTS:
        for request in sent[prompt]:
            body = request.json
            assert body["max_tokens"] > 0, prompt
            form = body["response_format"]
            assert form["type"] == "json_schema", prompt
            assert form["json_schema"]["name"] == prompt.replace(".", "_")
            jsonschema.Draft202012Validator.check_schema(form["json_schema"]["schema"])
            # what the server answered is within the schema it was sent
            answer = HANDLERS[prompt](body)
            jsonschema.validate(json.loads(answer), form["json_schema"]["schema"])
    # the single rewrite stays plain text, as the spec's prompt asks, bounded all the same
    for request in sent["rewrite"]:
        assert request.json.get("response_format") is None
        assert request.json["max_tokens"] > 0

    single = sent["analysis"][0].json["response_format"]["json_schema"]
    assert single["strict"] is True  # every object closed, every property required
    update = single["schema"]["properties"]["updates"]
    assert update["maxItems"] == 6  # the per-turn cap
    refs = update["items"]["properties"]["lore_entry_id"]["enum"]
    # the entities the prompt showed (its list of "E<n> | type | title" lines), and no others
    shown = [
        line.split(" | ")[0]
        for line in sent["analysis"][0].json["messages"][0]["content"].splitlines()
        if line[:1] == "E" and " | " in line
    ]
    assert refs == shown and set(refs) == {"E1", "E2", "E3", "E4"}
    summary = update["items"]["properties"]["update_summary"]
    # max_summary_chars (1000) is above what a grammar takes: bounded after parsing instead
    assert "maxLength" not in summary and summary["minLength"] == 1

    batch = sent["analysis.batch"][0].json["response_format"]["json_schema"]["schema"]
    turns = batch["properties"]["turns"]
    assert turns["required"] == ["1", "2"]  # every turn of the batch must be answered
    updates = turns["properties"]["1"]["properties"]["updates"]
    assert set(updates["propertyNames"]["enum"]) == {"E1", "E2", *(f"N{i}" for i in range(1, 11))}
    assert updates["maxProperties"] == 6
    notes = sent["rewrite.batch"][0].json["response_format"]["json_schema"]["schema"]
    assert notes["properties"]["notes"]["required"] == ["E1", "E2"]
    # everything the fake answered was saved: the story went through both SDKs whole
    with database.uow(read_only=True) as uow:
        titles = {e.title for e in uow.session.scalars(select(LoreEntry))}
        statuses = {t.processing_status for t in uow.session.scalars(select(ChatTurn))}
    assert {"Kenta", "Muramasa", "Vesper"} <= titles
    assert statuses == {"done"}


def _bounds(schema: Any) -> list[int]:
    """Every maxLength and maxItems in ``schema``."""
    if isinstance(schema, dict):
        found = [v for k, v in schema.items() if k in ("maxLength", "maxItems")]
        return found + [n for value in schema.values() for n in _bounds(value)]
    if isinstance(schema, list):
        return [n for value in schema for n in _bounds(value)]
    return []


def test_the_default_settings_send_schemas_a_local_server_takes(
    database: Database, tmp_path: Path, server: FakeProviderServer
) -> None:
    """Issue 42: with max_entry_chars 2000 the creation schema carried maxLength 2000, which
    llama.cpp turns into a grammar it refuses (llama-cpp-python's server died).  No bound in
    any schema the default settings send exceeds what a grammar takes; the long ones are kept
    after parsing (a created entry's content is clipped to max_entry_chars)."""
    app = _app(database, tmp_path, "openai", server)  # the defaults' lengths
    assert app.settings.pipeline_config.max_entry_chars == 2000 > GRAMMAR_REPEAT_LIMIT
    _, session_id, _ = make_world(
        database, ("Momo", "Character", "A psychic girl."), ("Gate", "Location", "A gate.")
    )
    _story(app, session_id)
    sent = [r.json for r in server.requests_to(CHAT) if r.prompt in MEMORY_PROMPTS]
    assert {r.prompt for r in server.requests_to(CHAT)} >= {"creation", "creation.batch"}
    for body in sent:
        schema = body["response_format"]["json_schema"]["schema"]
        assert max(_bounds(schema), default=0) <= GRAMMAR_REPEAT_LIMIT, body["messages"]


def test_a_bound_the_schema_leaves_out_is_kept_after_parsing(
    database: Database, tmp_path: Path
) -> None:
    long = "A wandering bard who sings of the sea. " * 30  # 1170 characters
    handlers = {
        **HANDLERS,
        "creation": lambda body: json.dumps({"title": "Vesper", "content": long, "tags": []}),
    }
    with FakeProviderServer(prompt_handlers=handlers) as srv:
        app = _app(database, tmp_path, "openai", srv, pipeline_config={"max_entry_chars": 600})
        _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
        app.chat.record(session_id, "Vesper sings.", "…")
        app.pipeline.drain()
        creation = next(r.json for r in srv.requests_to(CHAT) if r.prompt == "creation")
        schema = creation["response_format"]["json_schema"]["schema"]
    assert "maxLength" not in schema["properties"]["content"]
    with database.uow(read_only=True) as uow:
        vesper = uow.session.scalars(select(LoreEntry).where(LoreEntry.title == "Vesper")).one()
    # cut after its last whole sentence within the bound (memory/answers.bounded)
    assert len(vesper.content) <= 600 and vesper.content.endswith("sea.")
    assert long.startswith(vesper.content) and len(vesper.content) > 500


def test_a_schema_the_server_answers_500_steps_down_and_is_remembered(
    database: Database, tmp_path: Path
) -> None:
    """llama-cpp-python's server answers json_schema with HTTP 500 and takes the schema inside
    json_object: auto tries the next form at once, keeps it for that prompt, and the turn is
    analysed as if nothing had happened."""
    with FakeProviderServer(prompt_handlers=HANDLERS, refused_forms={"json_schema": 500}) as srv:
        app = _app(database, tmp_path, "openai", srv)
        _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
        app.chat.record(session_id, "Momo meditates.", "…")
        app.pipeline.drain()
        app.chat.record(session_id, "Momo meditates again.", "…")
        app.pipeline.drain()
        forms = [(r.prompt, structured_form(r.json)) for r in srv.requests_to(CHAT)]
    analyses = [form for prompt, form in forms if prompt == "analysis"]
    assert analyses == ["json_schema", "json_object_schema", "json_object_schema"]
    with database.uow(read_only=True) as uow:
        turns = uow.session.scalars(select(ChatTurn)).all()
        assert {t.processing_status for t in turns} == {"done"}
        assert uow.session.scalars(select(NoteUpdateTask.status)).all() == ["done", "done"]


@pytest.mark.parametrize("provider", ["mistral", "openai"])
def test_refused_forms_step_down_to_json_mode_and_a_job_never_fails_for_it(
    provider: str, database: Database, tmp_path: Path
) -> None:
    refusals = {"json_schema": 422, "json_object_schema": 400}
    with FakeProviderServer(prompt_handlers=HANDLERS, refused_forms=refusals) as srv:
        app = _app(database, tmp_path, provider, srv)
        _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
        app.chat.record(session_id, "Momo meditates.", "…")
        app.pipeline.drain()
        forms = [structured_form(r.json) for r in srv.requests_to(CHAT) if r.prompt == "analysis"]
    expected = {
        "mistral": ["json_schema", "json_object"],
        "openai": ["json_schema", "json_object_schema", "json_object"],
    }
    assert forms == expected[provider]
    with database.uow(read_only=True) as uow:
        assert uow.session.scalars(select(ChatTurn.processing_status)).all() == ["done"]


@pytest.mark.parametrize(
    ("mode", "form"),
    [("json_object_schema", "json_object_schema"), ("json_object", "json_object"), ("off", "off")],
)
def test_a_configured_form_is_the_only_one_sent(
    mode: str, form: str, database: Database, tmp_path: Path, server: FakeProviderServer
) -> None:
    app = _app(database, tmp_path, "openai", server, provider_config={"structured_output": mode})
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    app.chat.record(session_id, "Momo meditates.", "…")
    app.pipeline.drain()
    (analysis,) = [r for r in server.requests_to(CHAT) if r.prompt == "analysis"]
    assert structured_form(analysis.json) == form
    if form == "json_object_schema":
        schema = analysis.json["response_format"]["schema"]
        assert schema["properties"]["updates"]["items"]["properties"]["lore_entry_id"]["enum"]


def test_an_outage_is_no_refusal_and_a_refusal_is_not_the_content() -> None:
    """A 503 is the server being down (retried by resilience, the form kept); a 500 or a 4xx is
    the form refused; only the last form's error reaches the caller."""
    assert not refused(ProviderUnavailable("HTTP 503", status=503))
    assert refused(ProviderUnavailable("HTTP 500", status=500))
    assert refused(RequestRejected("HTTP 400", status=400))
    forms = StructuredForms("auto", ("json_schema", "json_object", "off"), provider="p")
    request = ChatRequest((Message("user", "x"),), "m", 0.0, "analysis", json_schema={})
    sent: list[Any] = []

    def down(response_format: dict[str, Any] | None) -> str:
        sent.append(response_format)
        raise ProviderUnavailable("HTTP 503", status=503)

    with pytest.raises(ProviderUnavailable):
        forms.send(request, down)
    assert len(sent) == 1 and forms.current("analysis") == "json_schema"

    def refuse_all(response_format: dict[str, Any] | None) -> str:
        sent.append(response_format)
        raise RequestRejected("HTTP 400", status=400)

    sent.clear()
    with pytest.raises(RequestRejected):
        forms.send(request, refuse_all)
    assert [f and f["type"] for f in sent] == ["json_schema", "json_object", None]
    assert forms.current("analysis") == "json_schema"  # nothing worked: nothing remembered
    with pytest.raises(ValueError, match="cannot send"):
        StructuredForms("json_object_schema", ("json_schema", "off"), provider="mistral")


@pytest.mark.parametrize("provider", ["mistral", "openai"])
def test_an_answer_cut_at_the_token_limit_is_repaired_never_used(
    provider: str, server: FakeProviderServer
) -> None:
    from .test_providers_http import make_chat

    whole = '{"updates": [], "creations": []}'
    server.api_key = "test-key"
    server.queue(FakeReply(content=whole, finish_reason="length"), FakeReply(content=whole))
    model = make_chat(provider, server)
    request = ChatRequest((Message("user", "x"),), "m", 0.0, "analysis", max_tokens=50)
    assert complete_structured(model, request, AnalysisResult) == AnalysisResult()
    first, repair = server.requests_to(CHAT)
    assert first.json["max_tokens"] == 50
    assert repair.prompt == "analysis.repair"
    assert "cut off at the token limit" in repair.json["messages"][-1]["content"]
    server.queue(
        FakeReply(content=whole, finish_reason="length"),
        FakeReply(content=whole, finish_reason="length"),
    )
    with pytest.raises(InvalidResponse, match="cut off"):
        complete_structured(model, request, AnalysisResult)


@pytest.mark.parametrize(
    "answer",
    [
        {"updates": [{"lore_entry_id": "E1", "update_summary": "   "}]},
        {"updates": [{"lore_entry_id": "E1", "update_summary": "..."}]},
        {"creations": [{"entity_type": "Character", "creation_summary": "—"}]},
    ],
)
def test_an_analysis_that_validates_by_shape_but_says_nothing_is_unusable(
    answer: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match=r"says nothing|at least 1 character"):
        AnalysisResult.model_validate(answer)


@pytest.mark.parametrize("title", ["...", "  ", "?!", "—"])
def test_a_title_of_punctuation_is_unusable(title: str) -> None:
    with pytest.raises(ValueError):
        CreatedEntity.model_validate({"title": title, "content": "A bard.", "tags": []})
    assert CreatedEntity.model_validate({"title": "R2", "content": "A droid."}).title == "R2"


def test_a_note_that_repeats_itself_is_unusable_unless_its_inputs_did() -> None:
    looping = "Isolde keeps the lighthouse. Isolde keeps the lighthouse. She waits."
    with pytest.raises(InvalidResponse, match="repeats a sentence"):
        clean_rewrite(looping, before="", lore="A keeper.", events=["She waits."])
    phrase = " ".join(["the lamp burns bright and clear"] * 3)
    with pytest.raises(InvalidResponse, match="repeats a phrase"):
        clean_rewrite(phrase, before="", lore="A keeper.", events=["The lamp burns."])
    # what the old note and the events already said twice is no loop of the rewrite's
    kept = clean_rewrite(
        looping,
        before="Isolde keeps the lighthouse.",
        lore="",
        events=["Isolde keeps the lighthouse. She waits."],
    )
    assert kept == looping
    assert clean_rewrite("Yes. Yes. She agreed.", before="", lore="", events=["x"])


def test_a_batch_schema_accepts_what_its_model_validates() -> None:
    """The schema built for a batch and the pydantic model that validates it agree on a full
    answer: the constraint narrows the model, never contradicts it."""
    from loreweave.config import PipelineConfig
    from loreweave.llm.prompts.analysis import batch_analysis_schema

    schema = batch_analysis_schema(["E1", "E2"], 2, PipelineConfig())
    answer = json.loads(_analysis_batch({}))
    jsonschema.validate(answer, schema)
    BatchAnalysisResult.model_validate(answer)
    with pytest.raises(jsonschema.ValidationError):  # an invented id is outside the schema
        jsonschema.validate(
            {
                "turns": {
                    "1": {"updates": {"E9": "x"}, "creations": {}},
                    "2": {"updates": {}, "creations": {}},
                }
            },
            schema,
        )
    with pytest.raises(jsonschema.ValidationError):  # a turn left out too
        jsonschema.validate({"turns": {"1": {"updates": {}, "creations": {}}}}, schema)


def test_the_proxy_passes_a_clients_response_format_and_tools_through(
    database: Database, tmp_path: Path, server: FakeProviderServer
) -> None:
    """A client's own json_schema, tools and tool_choice reach the upstream untouched, and the
    upstream's tool calls come back to the client."""
    import openai

    from .private_services import serving

    app = _app(database, tmp_path, "openai", server)
    make_world(database, ("Momo", "Character", "A psychic girl."))
    response_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "mood",
            "schema": {"type": "object", "properties": {"mood": {"type": "string"}}},
            "strict": False,
        },
    }
    tools = [
        {
            "type": "function",
            "function": {
                "name": "roll_dice",
                "parameters": {"type": "object", "properties": {"sides": {"type": "integer"}}},
            },
        }
    ]
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "roll_dice", "arguments": '{"sides": 20}'},
    }
    server.queue(
        FakeReply(content='{"mood": "calm"}', prompt="chat"),
        FakeReply(content="", finish_reason="tool_calls", tool_calls=[call], prompt="chat"),
    )
    with serving(app) as url:
        client = openai.OpenAI(base_url=f"{url}v1", api_key="none", max_retries=0)
        messages: list[Any] = [{"role": "user", "content": "How does Momo feel?"}]
        first = client.chat.completions.create(
            model="loreweave/Eldoria",
            messages=messages,
            response_format=response_format,  # type: ignore[arg-type]
        )
        assert first.choices[0].message.content == '{"mood": "calm"}'
        second = client.chat.completions.create(
            model="loreweave/Eldoria",
            messages=[{"role": "user", "content": "Momo rolls a die."}],
            tools=tools,  # type: ignore[arg-type]
            tool_choice="auto",
        )
    chats = [r.json for r in server.requests_to(CHAT) if r.prompt == "chat"]
    assert chats[0]["response_format"] == response_format
    assert chats[1]["tools"] == tools and chats[1]["tool_choice"] == "auto"
    assert "response_format" not in chats[1]
    choice = second.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert choice.message.tool_calls[0].function.arguments == '{"sides": 20}'


def test_mistral_refuses_llama_cpp_pythons_form_in_one_clear_line(tmp_path: Path) -> None:
    from loreweave.errors import ConfigurationError

    settings = Settings(
        index_dir=tmp_path,
        llm_provider="mistral",
        mistral_api_key="k",
        provider_config={"structured_output": "json_object_schema"},
    )
    with pytest.raises(ConfigurationError, match="Mistral takes json_schema, json_object, off"):
        build_providers(settings)


@pytest.mark.parametrize("provider", ["mistral", "openai"])
def test_a_single_rewrite_asked_as_json_carries_the_notes_bound(
    provider: str, database: Database, tmp_path: Path, server: FakeProviderServer
) -> None:
    """pipeline_config.rewrite_json (issue 22: measured on SmolLM2, bench/rewrite_form.py): the
    single rewrite asks for {"note": …} with the note's bound in its schema, in the form the
    server takes; the note saved is the answer's note, checked as a plain one is."""
    app = _app(
        database,
        tmp_path,
        provider,
        server,
        pipeline_config={"rewrite_first_note": True, "rewrite_json": True, "note_target_words": 40},
    )
    _, session_id, _ = make_world(database, ("Momo", "Character", "A psychic girl."))
    app.chat.record(session_id, "Momo meditates.", "…")
    app.pipeline.drain()
    sent = _by_prompt(server)
    assert "rewrite" not in sent and sent["rewrite.note"], sorted(sent)
    body = sent["rewrite.note"][0].json
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["note"]["maxLength"] == 400  # 10 characters a target word
    assert schema["required"] == ["note"] and body["max_tokens"] > 0
    assert "a JSON object whose one key" in body["messages"][-1]["content"]
    with database.uow(read_only=True) as uow:
        notes = [n.note_content for n in uow.notes.in_session(session_id)]
    assert notes == ["Momo trained, rested and now meditates."]
    app.close()

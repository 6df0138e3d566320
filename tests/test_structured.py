from __future__ import annotations

import pytest

from loreweave.errors import InvalidResponse
from loreweave.llm.prompts.analysis import AnalysisResult
from loreweave.llm.prompts.creation import CreatedEntity
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.structured import complete_structured, extract_json
from loreweave.llm.types import ChatRequest, Message

KENTA = {"title": "Kenta", "content": "A demon hunter.", "tags": ["katana"]}


@pytest.mark.parametrize(
    "text",
    [
        '{"title": "Kenta", "content": "A demon hunter.", "tags": ["katana"]}',
        '```json\n{"title": "Kenta", "content": "A demon hunter.", "tags": ["katana"]}\n```',
        'Here:\n{"title": "Kenta", "content": "A demon hunter.", "tags": ["katana"]}\nEnjoy!',
        'Response: ```\n{"title": "Kenta", "content": "A demon hunter.", "tags": ["katana"]}```',
    ],
)
def test_json_is_found_bare_fenced_or_in_prose(text: str) -> None:
    assert extract_json(text) == KENTA


def test_no_json_at_all() -> None:
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("I cannot help with that.")


def creation_request() -> ChatRequest:
    return ChatRequest((Message("user", "create Kenta"),), "m", 0.5, prompt="creation")


def test_invalid_output_gets_one_repair_quoting_the_error() -> None:
    model = ScriptedChatModel()
    model.add({"title": "Kenta", "tags": ["katana"]}, prompt="creation")
    model.add(KENTA, prompt="creation.repair")
    entity = complete_structured(model, creation_request(), CreatedEntity)
    assert entity == CreatedEntity(**KENTA)
    repair = model.calls_for("creation.repair")[0]
    assert "content" in repair.messages[-1].content
    assert "Field required" in repair.messages[-1].content
    assert repair.messages[-2].role == "assistant"
    assert repair.json_schema is not None and "title" in repair.json_schema["properties"]


def test_still_invalid_after_repair_is_an_invalid_response() -> None:
    model = ScriptedChatModel()
    model.add("no json here", prompt="creation")
    model.add('{"title": ""}', prompt="creation.repair")
    with pytest.raises(InvalidResponse, match="after one repair"):
        complete_structured(model, creation_request(), CreatedEntity)
    assert len(model.calls) == 2


def test_outputs_are_stripped_and_validated() -> None:
    result = AnalysisResult.model_validate(
        {"updates": [{"lore_entry_id": " E2 ", "update_summary": " Lost an arm. "}], "extra": 1}
    )
    assert result.updates[0].lore_entry_id == "E2"
    assert result.updates[0].update_summary == "Lost an arm."
    with pytest.raises(ValueError):
        AnalysisResult.model_validate({"creations": [{"entity_type": "", "creation_summary": "x"}]})

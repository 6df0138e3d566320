"""The entity creation prompt: one new LoreEntry (``creation``, the spec's wording), or several
of a session at once (``creation.batch``), checked entry by entry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from loreweave.llm.prompts import PromptSpec
from loreweave.llm.prompts.common import Name, Output, Text, extract_json
from loreweave.llm.prompts.schema import Schema, array, obj, text, tokens_for

TITLE_CHARS = 200
TAG_CHARS = 40
SCHEMA_TAGS = 10


class CreatedEntity(Output):
    """The creation LLM's new LoreEntry."""

    title: Annotated[Name, StringConstraints(max_length=TITLE_CHARS)]
    content: Text
    tags: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = Field(
        default_factory=list
    )


class BatchCreationResult(Output):
    """Each new entry by its ref, checked one by one as a :class:`CreatedEntity`."""

    entries: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _combine(answers: list[str]) -> dict[str, Any]:
    return {"entries": {f"C{i}": extract_json(a) for i, a in enumerate(answers, 1)}}


def created_entity_schema(content_chars: int) -> Schema:
    return obj(
        {
            "title": text(TITLE_CHARS),
            "content": text(content_chars),
            "tags": array(text(TAG_CHARS), SCHEMA_TAGS),
        }
    )


def batch_creation_schema(refs: Sequence[str], content_chars: int) -> Schema:
    """An entry for each ref shown."""
    entry = created_entity_schema(content_chars)
    return obj({"entries": obj({ref: entry for ref in refs})})


def creation_max_tokens(content_chars: int, entries: int = 1) -> int:
    each = tokens_for(TITLE_CHARS) + tokens_for(content_chars) + SCHEMA_TAGS * tokens_for(TAG_CHARS)
    return entries * each + tokens_for(0)


CREATION = PromptSpec(
    "creation", "creation", CreatedEntity, "creation_model", "temperature_creation"
)
CREATION_BATCH = PromptSpec(
    "creation.batch",
    "creation_batch",
    BatchCreationResult,
    "creation_model",
    "temperature_creation",
    _combine,
)

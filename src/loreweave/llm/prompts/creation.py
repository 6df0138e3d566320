"""The entity creation prompt: one new LoreEntry (``creation``, the spec's wording), or several
of a session at once (``creation.batch``), checked entry by entry.  A newcomer whose name its
analysis found in the turn is written under that name: the model is asked only for its content
and tags (a small model copied the prompt's "Entity name" as the title)."""

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


class EntityContent(Output):
    """The creation LLM's content and tags of a newcomer already named."""

    content: Text
    tags: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = Field(
        default_factory=list
    )


class BatchCreationResult(Output):
    """Each new entry by its ref, checked one by one as a :class:`CreatedEntity`."""

    entries: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _combine(answers: list[str]) -> dict[str, Any]:
    return {"entries": {f"C{i}": extract_json(a) for i, a in enumerate(answers, 1)}}


def created_entity_schema(content_chars: int, *, named: bool = False) -> Schema:
    """A new entry; its content and tags only when it is ``named`` already."""
    fields = {"content": text(content_chars), "tags": array(text(TAG_CHARS), SCHEMA_TAGS)}
    return obj(fields if named else {"title": text(TITLE_CHARS), **fields})


def batch_creation_schema(
    refs: Sequence[str], content_chars: int, named: Sequence[bool] = ()
) -> Schema:
    """An entry for each ref shown (``named``: which of them are named already)."""
    named = list(named) or [False] * len(refs)
    return obj(
        {
            "entries": obj(
                {
                    ref: created_entity_schema(content_chars, named=is_named)
                    for ref, is_named in zip(refs, named, strict=True)
                }
            )
        }
    )


def creation_max_tokens(content_chars: int, entries: int = 1) -> int:
    each = tokens_for(TITLE_CHARS) + tokens_for(content_chars) + SCHEMA_TAGS * tokens_for(TAG_CHARS)
    return entries * each + tokens_for(0)


CREATION = PromptSpec(
    "creation", "creation", CreatedEntity, "creation_model", "temperature_creation"
)
# the same prompt for a newcomer named already: its answer is content and tags
CREATION_NAMED = PromptSpec(
    "creation", "creation", EntityContent, "creation_model", "temperature_creation"
)
CREATION_BATCH = PromptSpec(
    "creation.batch",
    "creation_batch",
    BatchCreationResult,
    "creation_model",
    "temperature_creation",
    _combine,
)

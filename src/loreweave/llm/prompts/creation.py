"""The entity creation prompt: one new LoreEntry (``creation``, the spec's wording), or several
of a session at once (``creation.batch``), checked entry by entry."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from loreweave.llm.prompts import PromptSpec
from loreweave.llm.prompts.common import Output, Text, extract_json


class CreatedEntity(Output):
    """The creation LLM's new LoreEntry."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    content: Text
    tags: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = Field(
        default_factory=list
    )


class BatchCreationResult(Output):
    """Each new entry by its ref, checked one by one as a :class:`CreatedEntity`."""

    entries: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _combine(answers: list[str]) -> dict[str, Any]:
    return {"entries": {f"C{i}": extract_json(a) for i, a in enumerate(answers, 1)}}


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

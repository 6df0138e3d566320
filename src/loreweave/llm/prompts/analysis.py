"""The analysis prompt: what did a turn change?  Alone (``analysis``, the spec's wording) or for
several consecutive turns of a session at once (``analysis.batch``, when they wait together)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from loreweave.llm.prompts import PromptSpec
from loreweave.llm.prompts.common import Output, Text, extract_json


class EntityUpdate(Output):
    """An event that changes an existing entity, by the id the analysis prompt showed."""

    lore_entry_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    update_summary: Text


class EntityCreation(Output):
    """A new entity the turn introduced."""

    entity_type: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)
    ]
    creation_summary: Text


class AnalysisResult(Output):
    """What the analysis LLM found in one turn (the spec's dual-operation JSON)."""

    updates: list[EntityUpdate] = Field(default_factory=list)
    creations: list[EntityCreation] = Field(default_factory=list)


class NewEntity(Output):
    """A creation in a batch, under its ref (N1, N2…) by which later turns may update it."""

    entity_type: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)
    ]
    summary: Text


class TurnChanges(Output):
    """One turn of a batch: updates by entity ref, creations by new ref (compact: a batch's
    output tokens are most of its cost)."""

    updates: dict[str, Text] = Field(default_factory=dict)
    creations: dict[str, NewEntity] = Field(default_factory=dict)


class BatchAnalysisResult(Output):
    """The changes of each turn of the batch, keyed by the turn's number in the prompt."""

    turns: dict[str, TurnChanges] = Field(default_factory=dict)


def _combine(answers: list[str]) -> dict[str, Any]:
    turns: dict[str, Any] = {}
    made = 0
    for number, answer in enumerate(answers, 1):
        single = AnalysisResult.model_validate(extract_json(answer))
        creations = {}
        for creation in single.creations:
            made += 1
            creations[f"N{made}"] = {
                "entity_type": creation.entity_type,
                "summary": creation.creation_summary,
            }
        updates = {u.lore_entry_id: u.update_summary for u in single.updates}
        turns[str(number)] = {"updates": updates, "creations": creations}
    return {"turns": turns}


ANALYSIS = PromptSpec(
    "analysis", "analysis", AnalysisResult, "analysis_model", "temperature_analysis"
)
ANALYSIS_BATCH = PromptSpec(
    "analysis.batch",
    "analysis_batch",
    BatchAnalysisResult,
    "analysis_model",
    "temperature_analysis",
    _combine,
)

"""Typed LLM outputs: one pydantic model per structured prompt, returned to the caller."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EntityUpdate(_Output):
    """An event that changes an existing entity, by the id the analysis prompt showed."""

    lore_entry_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    update_summary: Text


class EntityCreation(_Output):
    """A new entity the turn introduced."""

    entity_type: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)
    ]
    creation_summary: Text


class AnalysisResult(_Output):
    """What the analysis LLM found in one turn (the spec's dual-operation JSON)."""

    updates: list[EntityUpdate] = Field(default_factory=list)
    creations: list[EntityCreation] = Field(default_factory=list)


class CreatedEntity(_Output):
    """The creation LLM's new LoreEntry."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    content: Text
    tags: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = Field(
        default_factory=list
    )

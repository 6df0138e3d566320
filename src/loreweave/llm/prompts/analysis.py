"""The analysis prompt: what did a turn change?  Alone (``analysis``, the spec's wording) or for
several consecutive turns of a session at once (``analysis.batch``, when they wait together)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

from loreweave.config import PipelineConfig
from loreweave.db.models import USER
from loreweave.llm.prompts import PromptSpec
from loreweave.llm.prompts.common import Output, Text, extract_json
from loreweave.llm.prompts.creation import TITLE_CHARS
from loreweave.llm.prompts.schema import (
    ENTITY_TYPES,
    Schema,
    array,
    keyed,
    obj,
    one_of,
    text,
    tokens_for,
)


def _names(value: Any) -> list[str]:
    """Whatever a model gave as witnesses, as a list of texts: one text is a list of one, a
    number its digits, anything else nothing.  Never refused: each witness is resolved, or
    dropped with a note, by the analysis (:mod:`loreweave.memory.analysis`)."""
    items = value if isinstance(value, list) else [value]
    return [
        str(item)
        for item in items
        if isinstance(item, str | int | float) and not isinstance(item, bool)
    ]


# Who witnessed or learned an event (DESIGN §1.6): refs of shown Character entities (or their
# names), and USER for the persona of the person playing; empty: public, everyone present
# knows it.
Witnesses = Annotated[list[str], BeforeValidator(_names)]


class EntityUpdate(Output):
    """An event that changes an existing entity, by the id the analysis prompt showed."""

    lore_entry_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    update_summary: Text
    known_by: Witnesses = Field(default_factory=list)


# the newcomer's name as its turn writes it (None: an answer from before names were asked)
NewcomerName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=TITLE_CHARS)]


class EntityCreation(Output):
    """A new entity the turn introduced, by its name as the turn writes it."""

    entity_type: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)
    ]
    name: NewcomerName | None = None
    creation_summary: Text
    known_by: Witnesses = Field(default_factory=list)


class AnalysisResult(Output):
    """What the analysis LLM found in one turn (the spec's dual-operation JSON)."""

    updates: list[EntityUpdate] = Field(default_factory=list)
    creations: list[EntityCreation] = Field(default_factory=list)


class NewEntity(Output):
    """A creation in a batch, under its ref (N1, N2…) by which later turns may update it."""

    entity_type: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)
    ]
    name: NewcomerName | None = None
    summary: Text
    known_by: Witnesses = Field(default_factory=list)


class WitnessedChange(Output):
    """A batch's update known only to some: its summary and who knows it."""

    summary: Text
    known_by: Witnesses = Field(default_factory=list)


class TurnChanges(Output):
    """One turn of a batch: updates by entity ref (the summary, or a :class:`WitnessedChange`
    when only some know it), creations by new ref (compact: a batch's output tokens are most
    of its cost)."""

    updates: dict[str, Text | WitnessedChange] = Field(default_factory=dict)
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
                "name": creation.name,
                "summary": creation.creation_summary,
                "known_by": creation.known_by,
            }
        updates = {
            u.lore_entry_id: (
                {"summary": u.update_summary, "known_by": u.known_by}
                if u.known_by
                else u.update_summary
            )
            for u in single.updates
        }
        turns[str(number)] = {"updates": updates, "creations": creations}
    return {"turns": turns}


# -- the schema each request sends (the refs it shows, its caps) ---------------------------------
def _ref(refs: Sequence[str]) -> Schema:
    return one_of(refs) if refs else text(8)


def _witnesses(characters: Sequence[str]) -> Schema:
    """``known_by``: the shown characters' refs and USER, each at most once."""
    return {**array(one_of([*characters, USER]), len(characters) + 1), "uniqueItems": True}


def analysis_schema(
    refs: Sequence[str], limits: PipelineConfig, characters: Sequence[str] = ()
) -> Schema:
    """One turn: updates only of the refs shown, at most the caps, each summary bounded; the
    witnesses only among the characters shown (``characters``: their refs) and USER."""
    summary = text(limits.max_summary_chars)
    known_by = _witnesses(characters)
    update = obj({"lore_entry_id": _ref(refs), "update_summary": summary, "known_by": known_by})
    creation = obj(
        {
            "entity_type": one_of(ENTITY_TYPES),
            "name": text(TITLE_CHARS),
            "creation_summary": summary,
            "known_by": known_by,
        }
    )
    return obj(
        {
            "updates": array(update, limits.max_updates_per_turn if refs else 0),
            "creations": array(creation, limits.max_creations_per_turn),
        }
    )


def batch_analysis_schema(
    refs: Sequence[str], turns: int, limits: PipelineConfig, characters: Sequence[str] = ()
) -> Schema:
    """Every turn of the batch answered (by its number); a turn's updates keyed by the refs
    shown or the new ids (N1…) of the batch's creations, which are at most the caps; an
    update is its summary, or the summary with its witnesses (``characters``: see
    :func:`analysis_schema`)."""
    summary = text(limits.max_summary_chars)
    known_by = _witnesses(characters)
    new_refs = [f"N{i}" for i in range(1, turns * limits.max_creations_per_turn + 1)]
    new = obj(
        {
            "entity_type": one_of(ENTITY_TYPES),
            "name": text(TITLE_CHARS),
            "summary": summary,
            "known_by": known_by,
        },
        required=("entity_type", "name", "summary"),
    )
    witnessed = obj({"summary": summary, "known_by": known_by})
    change = {"anyOf": [summary, witnessed]}
    turn = obj(
        {
            "updates": keyed([*refs, *new_refs], change, limits.max_updates_per_turn),
            "creations": keyed(new_refs, new, limits.max_creations_per_turn),
        },
        required=(),  # the prompt: "leave out what is empty"
    )
    return obj({"turns": obj({str(n): turn for n in range(1, turns + 1)})})


WITNESS_CHARS = 40  # a short list of refs beside a summary


def analysis_max_tokens(limits: PipelineConfig, turns: int = 1) -> int:
    """What an answer within the caps may take, for one turn or a batch of them."""
    item = tokens_for(limits.max_summary_chars + WITNESS_CHARS)
    per_turn = (limits.max_updates_per_turn + limits.max_creations_per_turn) * item
    return tokens_for(0) + turns * (per_turn + tokens_for(0))


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

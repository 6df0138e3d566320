"""The note rewrite prompt: one entity's note with its new events (``rewrite``, the spec's
wording), or several entities of a session at once (``rewrite.batch``), answered as JSON and
checked entity by entity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from loreweave.llm.prompts import PromptSpec
from loreweave.llm.prompts.common import Output
from loreweave.llm.prompts.schema import Schema, obj, text, tokens_for

# Characters a note may take per word of its target (words average about six with the space):
# the bound the schema and max_tokens give a rewrite, well above the target the prompt asks.
CHARS_PER_TARGET_WORD = 10
UNTARGETED_NOTE_CHARS = 6_000  # no note_target_words: about a thousand words


class NoteResult(Output):
    """A single rewrite asked for as JSON (``rewrite.note``): the note, its length bounded by
    the request's schema; checked by the rewrite worker like a plain one."""

    note: str


class BatchRewriteResult(Output):
    """Each entity's new note by its ref; checked by the rewrite worker (an empty or runaway
    note is redone alone)."""

    notes: dict[str, str] = Field(default_factory=dict)


def _combine(answers: list[str]) -> dict[str, Any]:
    return {"notes": {f"E{i}": answer for i, answer in enumerate(answers, 1)}}


def note_max_chars(target_words: int | None) -> int:
    """The longest note a rewrite may answer."""
    return target_words * CHARS_PER_TARGET_WORD if target_words else UNTARGETED_NOTE_CHARS


def rewrite_max_tokens(target_words: int | None, notes: int = 1) -> int:
    return notes * tokens_for(note_max_chars(target_words)) + tokens_for(0)


def note_schema(target_words: int | None) -> Schema:
    """A single note within the note's bound."""
    return obj({"note": text(note_max_chars(target_words))})


def batch_rewrite_schema(refs: Sequence[str], target_words: int | None) -> Schema:
    """A note for each ref shown, each within the note's bound."""
    note = text(note_max_chars(target_words))
    return obj({"notes": obj({ref: note for ref in refs})})


REWRITE: PromptSpec[NoteResult] = PromptSpec(
    "rewrite", "rewrite", None, "rewrite_model", "temperature_rewrite"
)
# the same prompt, its answer asked for as {"note": …} (pipeline_config.rewrite_json)
REWRITE_NOTE = PromptSpec(
    "rewrite.note", "rewrite", NoteResult, "rewrite_model", "temperature_rewrite"
)
REWRITE_BATCH = PromptSpec(
    "rewrite.batch",
    "rewrite_batch",
    BatchRewriteResult,
    "rewrite_model",
    "temperature_rewrite",
    _combine,
)
# what a rewrite may echo of its prompt: cleaned from the answer before it is checked or saved
REWRITE_LABELS = tuple(dict.fromkeys([*REWRITE.labels(), *REWRITE_BATCH.labels()]))

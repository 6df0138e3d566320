"""The note rewrite prompt: one entity's note with its new events (``rewrite``, the spec's
wording), or several entities of a session at once (``rewrite.batch``), answered as JSON and
checked entity by entity."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from loreweave.llm.prompts import PromptSpec
from loreweave.llm.prompts.common import Output


class BatchRewriteResult(Output):
    """Each entity's new note by its ref; checked by the rewrite worker (an empty or runaway
    note is redone alone)."""

    notes: dict[str, str] = Field(default_factory=dict)


def _combine(answers: list[str]) -> dict[str, Any]:
    return {"notes": {f"E{i}": answer for i, answer in enumerate(answers, 1)}}


REWRITE = PromptSpec("rewrite", "rewrite", None, "rewrite_model", "temperature_rewrite")
REWRITE_BATCH = PromptSpec(
    "rewrite.batch",
    "rewrite_batch",
    BatchRewriteResult,
    "rewrite_model",
    "temperature_rewrite",
    _combine,
)

"""Every prompt, by name."""

from __future__ import annotations

from typing import Any

from loreweave.llm.prompts import PromptSpec
from loreweave.llm.prompts.analysis import ANALYSIS, ANALYSIS_BATCH
from loreweave.llm.prompts.chat import CHAT, LORE
from loreweave.llm.prompts.creation import CREATION, CREATION_BATCH
from loreweave.llm.prompts.rewrite import REWRITE, REWRITE_BATCH, REWRITE_NOTE

SPECS: dict[str, PromptSpec[Any]] = {
    spec.name: spec
    for spec in (
        ANALYSIS,
        ANALYSIS_BATCH,
        REWRITE,
        REWRITE_NOTE,
        REWRITE_BATCH,
        CREATION,
        CREATION_BATCH,
        CHAT,
        LORE,
    )
}

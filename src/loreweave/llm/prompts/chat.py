"""The main chat prompt and the lore block it (and ``POST …/context``) carries."""

from __future__ import annotations

from loreweave.llm.prompts import PromptSpec

CHAT = PromptSpec("chat", "chat", None, "chat_model", "temperature_chat")
# the lore block is part of other prompts, never sent alone
LORE = PromptSpec("lore", "lore", None, "chat_model", "temperature_chat")

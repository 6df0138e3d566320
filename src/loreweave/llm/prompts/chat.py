"""The main chat prompt and the lore block it (and ``POST …/context``) carries."""

from __future__ import annotations

from pydantic import BaseModel

from loreweave.llm.prompts import PromptSpec

# plain text: no response model
CHAT: PromptSpec[BaseModel] = PromptSpec("chat", "chat", None, "chat_model", "temperature_chat")
# the lore block is part of other prompts, never sent alone
LORE: PromptSpec[BaseModel] = PromptSpec("lore", "lore", None, "chat_model", "temperature_chat")

"""LLM and embedding providers: contracts, implementations, resilience, prompts, typed outputs."""

from loreweave.llm.prompts import PromptSpec, render, spec
from loreweave.llm.prompts.analysis import AnalysisResult, EntityCreation, EntityUpdate
from loreweave.llm.prompts.creation import CreatedEntity
from loreweave.llm.registry import Providers, build_providers
from loreweave.llm.structured import complete_structured
from loreweave.llm.types import ChatModel, ChatRequest, ChatResponse, Embedder, Message, Usage

__all__ = [
    "AnalysisResult",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "CreatedEntity",
    "Embedder",
    "EntityCreation",
    "EntityUpdate",
    "Message",
    "PromptSpec",
    "Providers",
    "Usage",
    "build_providers",
    "complete_structured",
    "render",
    "spec",
]

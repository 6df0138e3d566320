"""LLM and embedding providers: contracts, implementations, resilience, prompts, typed outputs."""

from loreweave.llm.registry import Providers, build_providers
from loreweave.llm.schemas import AnalysisResult, CreatedEntity, EntityCreation, EntityUpdate
from loreweave.llm.structured import complete_structured
from loreweave.llm.templates import render
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
    "Providers",
    "Usage",
    "build_providers",
    "complete_structured",
    "render",
]

"""What the two queue workers share: their collaborators."""

from __future__ import annotations

from loreweave.config import LLMConfig, PipelineConfig
from loreweave.llm.types import ChatModel
from loreweave.memory.ports import UnitOfWorkFactory, VectorWriter


class MemoryWorker:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        chat_model: ChatModel,
        vectors: VectorWriter,
        llm_config: LLMConfig,
        limits: PipelineConfig,
    ) -> None:
        self.uow = uow
        self.chat_model = chat_model
        self.vectors = vectors
        self.llm_config = llm_config
        self.limits = limits  # what an answer may hold: caps, lengths, the note's target

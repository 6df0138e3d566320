"""The proxy's *ground* step (DESIGN §1.5): the lore block for a chat as the app shows it, as
whoever speaks next knows it, put into the request sent upstream.

The query is the chat's last user message and the turns before it; it is embedded outside any
transaction (:meth:`Grounding.embed`, a provider call), then the lore is retrieved in the
caller's unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loreweave.app.chat import Names, lore_block
from loreweave.app.follow import Plan, Turn, to_turns, written_for
from loreweave.app.shown import AppMessage
from loreweave.config import LLMConfig, ProxyConfig
from loreweave.db.uow import UnitOfWork
from loreweave.llm.types import ChatRequest, Message
from loreweave.vectors.retrieval import Embedded, Query, RetrievedEntry, Retriever, Trigger

# what SillyTavern calls each kind of generation (World Info's ``triggers``)
TRIGGERS: dict[str, Trigger] = {
    "turn": "normal",
    "reply": "normal",
    "regenerate": "regenerate",
    "continue": "continue",
    "impersonate": "impersonate",
}


@dataclass(frozen=True)
class Asked:
    """What a request asks for besides its messages (``raw``: as sent, system messages
    included; ``names``: who ``{{user}}`` and ``{{char}}`` are; ``key``: its
    ``Idempotency-Key``)."""

    raw: Sequence[tuple[str, str]]
    temperature: float | None = None
    max_tokens: int | None = None
    passthrough: dict[str, Any] | None = None
    names: Names | None = None
    key: str | None = None


@dataclass(frozen=True)
class Grounded:
    used: list[RetrievedEntry]  # the entries the lore block holds
    lore: str  # the lore block
    request: ChatRequest  # the request sent upstream, the lore block put in


def said(shown: Sequence[AppMessage]) -> tuple[str, list[Turn]]:
    """The message a chat's lore is retrieved for (its last user message) and the turns
    before it."""
    users = [i for i, m in enumerate(shown) if m.role == "user" and m.content]
    if not users:
        return shown[-1].content, []
    last = users[-1]
    return shown[last].content, to_turns(shown[:last])


class Grounding:
    def __init__(
        self, retriever: Retriever, llm_config: LLMConfig, config: ProxyConfig, names: Names
    ) -> None:
        self.retriever = retriever
        self.llm_config = llm_config
        self.config = config
        self.names = names

    def query(self, shown: Sequence[AppMessage]) -> Query:
        """What the lore is searched for, for the chat ``shown`` (no database read)."""
        return self.retriever.query_of(*said(shown))

    def embed(self, query: Query) -> Embedded:
        """The query's vector: a provider call, made outside any transaction."""
        return self.retriever.embed(query)

    def ground(
        self,
        uow: UnitOfWork,
        session_id: uuid.UUID,
        query: tuple[Query, Embedded],
        plan: Plan,
        speaker: str | None,
        upstream_model: str,
        asked: Asked,
    ) -> Grounded:
        """The lore for the turn ``plan`` generates in the session, as ``speaker`` (a group
        chat's member who speaks next) or the character the prompt is written for knows it,
        and the upstream request with it put in."""
        observer = speaker or written_for(asked.raw, self.config.observer_patterns)
        used = self.retriever.retrieve_in(
            uow,
            session_id,
            *query,
            token_budget=self.config.token_budget,
            trigger=TRIGGERS.get(plan.generate or "", "normal"),
            observer=observer,
            inferred=True,
        ).entries
        lore = lore_block(used, asked.names or self.names)
        temperature = self.llm_config.temperature_chat
        request = ChatRequest(
            tuple(self._with_lore(asked.raw, lore)),
            upstream_model,
            temperature if asked.temperature is None else asked.temperature,
            prompt="chat",
            max_tokens=asked.max_tokens,
            passthrough=asked.passthrough,
        )
        return Grounded(used, lore, request)

    def _with_lore(self, raw: Sequence[tuple[str, str]], lore: str) -> list[Message]:
        messages = [Message(role, content) for role, content in raw]  # type: ignore[arg-type]
        if self.config.lore_position == "depth":
            at = max(0, len(messages) - self.config.lore_depth)
        else:  # after the leading system messages
            at = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
        return [*messages[:at], Message("system", lore), *messages[at:]]

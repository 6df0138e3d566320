"""AnalysisService: what did this turn change?  (DESIGN §1.2)

The analysis LLM sees the turn, a few earlier turns, and the entities visible to the session,
each shown with a short reference (E1, E2…) that it cannot corrupt into another entity's id.
Its validated output becomes note-update and entity-creation tasks, written in one transaction
with the turn's status.  An update naming an unknown reference is dropped and recorded in the
turn's ``processing_errors``; it is never applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import desc, select

from loreweave.config import LLMConfig, PipelineConfig
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
)
from loreweave.db.repositories import is_visible, visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.llm.schemas import AnalysisResult
from loreweave.llm.structured import complete_structured
from loreweave.llm.templates import render
from loreweave.llm.types import ChatModel, ChatRequest, Message
from loreweave.memory.ports import Job, Outcome, UnitOfWorkFactory
from loreweave.queue.notify import QueueName


@dataclass
class AnalysisPlan:
    """The validated outcome of one analysis."""

    updates: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    creations: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class AnalysisService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        chat_model: ChatModel,
        llm_config: LLMConfig,
        config: PipelineConfig,
    ) -> None:
        self.uow = uow
        self.chat_model = chat_model
        self.llm_config = llm_config
        self.config = config

    # -- prompt ----------------------------------------------------------------------------------
    def _entities(self, uow: UnitOfWork, session: ChatSession, turn: ChatTurn) -> list[LoreEntry]:
        query = (
            select(LoreEntry)
            .where(visible_in(session))
            .order_by(desc(LoreEntry.updated_at), LoreEntry.id)
            .limit(self.config.analysis_max_entities)
        )
        entities = list(uow.session.scalars(query))
        shown = {e.id for e in entities}
        for raw in turn.used_entry_ids:
            entry = uow.entries.get(uuid.UUID(raw))
            if entry is not None and entry.id not in shown and is_visible(entry, session):
                entities.append(entry)
        return sorted(entities, key=lambda e: (e.created_at, str(e.id)))

    def build_request(self, turn_id: uuid.UUID) -> tuple[ChatRequest, dict[str, uuid.UUID]]:
        with self.uow(read_only=True) as uow:
            turn = uow.turns.require(turn_id)
            session = uow.sessions.require(turn.session_id)
            entities = self._entities(uow, session, turn)
            history = uow.turns.recent(
                session.id, self.config.analysis_history_turns, before=turn.turn_index
            )
            refs = {f"E{i}": entry for i, entry in enumerate(entities, start=1)}
            text = render(
                "analysis",
                entities=[
                    {
                        "ref": ref,
                        "entity_type": e.entity_type,
                        "title": e.title,
                        "aliases": e.aliases,
                    }
                    for ref, e in refs.items()
                ],
                history=[
                    {"user": t.user_message, "assistant": t.assistant_message} for t in history
                ],
                user_message=turn.user_message,
                assistant_message=turn.assistant_message,
            )
        request = ChatRequest(
            (Message("user", text),),
            self.llm_config.analysis_model,
            self.llm_config.temperature_analysis,
            prompt="analysis",
        )
        return request, {ref: entry.id for ref, entry in refs.items()}

    # -- validation ------------------------------------------------------------------------------
    def validate(self, result: AnalysisResult, refs: dict[str, uuid.UUID]) -> AnalysisPlan:
        plan = AnalysisPlan()
        limit = self.config.max_summary_chars
        for update in result.updates:
            entry_id = refs.get(update.lore_entry_id.upper())
            if entry_id is None:
                plan.rejected.append(
                    f"update for unknown entity {update.lore_entry_id!r} dropped "
                    f"(not an id shown to the analysis): {_clip(update.update_summary, 120)}"
                )
            elif len(plan.updates) >= self.config.max_updates_per_turn:
                plan.rejected.append(f"update for {update.lore_entry_id} dropped: over the cap")
            else:
                plan.updates.append((entry_id, _clip(update.update_summary, limit)))
        for creation in result.creations:
            if len(plan.creations) >= self.config.max_creations_per_turn:
                plan.rejected.append("creation dropped: over the cap")
                continue
            kind = creation.entity_type.strip()[:50].title()
            plan.creations.append((kind, _clip(creation.creation_summary, limit)))
        return plan

    # -- one job ---------------------------------------------------------------------------------
    def handle(self, job: Job[ChatTurn]) -> Outcome:
        """Analyse one claimed turn and write its tasks, in the transaction that finishes it."""
        turn = job.rows[0]
        request, refs = self.build_request(turn.id)
        plan = self.validate(complete_structured(self.chat_model, request, AnalysisResult), refs)
        with job.finishing() as uow:
            session = uow.sessions.require(turn.session_id)
            updates = []
            for entry_id, summary in plan.updates:
                entry = uow.entries.get(entry_id)
                if entry is not None and is_visible(entry, session):
                    updates.append((entry_id, summary))
                else:
                    plan.rejected.append(
                        f"update for entry {entry_id} dropped: the entry was deleted or hidden "
                        f"while the turn was analysed: {_clip(summary, 120)}"
                    )
            for entry_id, summary in updates:
                uow.session.add(
                    NoteUpdateTask(
                        lore_entry_id=entry_id,
                        session_id=turn.session_id,
                        update_summary=summary,
                        turn_index=turn.turn_index,
                    )
                )
                uow.session.flush()  # created_at order = the analysis's order
            for entity_type, summary in plan.creations:
                uow.session.add(
                    EntityCreationTask(
                        entity_type=entity_type,
                        creation_summary=summary,
                        session_id=turn.session_id,
                        turn_index=turn.turn_index,
                    )
                )
                uow.session.flush()
            uow.turns.require(turn.id).processing_errors = "\n".join(plan.rejected) or None
        wake: dict[QueueName, int] = {}
        if updates:
            wake["note_updates"] = len(updates)
        if plan.creations:
            wake["entity_creations"] = len(plan.creations)
        summary = (
            f"{len(updates)} updates, {len(plan.creations)} creations, "
            f"{len(plan.rejected)} rejected"
        )
        return Outcome(summary, wake)

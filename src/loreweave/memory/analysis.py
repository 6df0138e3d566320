"""AnalysisService: what did this turn change?  (DESIGN §1.2)

The analysis LLM sees the turn, a few earlier turns, and the entities visible to the session,
each shown with a short reference (E1, E2…) that it cannot corrupt into another entity's id.
Its validated output becomes note-update and entity-creation tasks, written in one transaction
with the turn's status.  An update naming an unknown reference is dropped and recorded in the
turn's ``processing_errors``; it is never applied.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import desc, select

from loreweave.config import LLMConfig, PipelineConfig
from loreweave.db.engine import Database
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    TurnStatus,
    utcnow,
)
from loreweave.db.repositories import visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.errors import LoreweaveError
from loreweave.llm.schemas import AnalysisResult
from loreweave.llm.structured import complete_structured
from loreweave.llm.templates import render
from loreweave.llm.types import ChatModel, ChatRequest, Message
from loreweave.queue import claims
from loreweave.queue.notify import Notifier

log = logging.getLogger("loreweave.analysis")


@dataclass
class AnalysisPlan:
    """The validated outcome of one analysis."""

    updates: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    creations: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TurnSnapshot:
    id: uuid.UUID
    session_id: uuid.UUID
    turn_index: int
    attempts: int


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class AnalysisService:
    def __init__(
        self,
        database: Database,
        chat_model: ChatModel,
        llm_config: LLMConfig,
        config: PipelineConfig,
        notifier: Notifier,
    ) -> None:
        self.database = database
        self.chat_model = chat_model
        self.llm_config = llm_config
        self.config = config
        self.notifier = notifier

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
            if (
                entry is not None
                and entry.id not in shown
                and entry.world_id == session.world_id
                and entry.origin_session_id in (None, session.id)
            ):
                entities.append(entry)
        return sorted(entities, key=lambda e: (e.created_at, str(e.id)))

    def build_request(self, turn_id: uuid.UUID) -> tuple[ChatRequest, dict[str, uuid.UUID]]:
        with self.database.uow(read_only=True) as uow:
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
    def claim(self, worker_id: str) -> TurnSnapshot | None:
        with self.database.uow() as uow:
            turn = claims.claim_turn(uow.session, worker_id, self.config.analysis_lease_seconds)
            if turn is None:
                return None
            snapshot = TurnSnapshot(turn.id, turn.session_id, turn.turn_index, turn.attempts)
            uow.commit()
        return snapshot

    def run_once(self, worker_id: str) -> bool:
        """Claim and analyse one turn.  Returns False when there was nothing to do."""
        turn = self.claim(worker_id)
        if turn is None:
            return False
        started = time.perf_counter()
        try:
            request, refs = self.build_request(turn.id)
            plan = self.validate(
                complete_structured(self.chat_model, request, AnalysisResult), refs
            )
        except LoreweaveError as exc:
            self._record_failure(turn, worker_id, exc)
            return True
        if self._apply(turn, worker_id, plan):
            log.info(
                "analysis turn=%d session=%s attempt=%d: %d updates, %d creations, %d rejected "
                "in %.2fs",
                turn.turn_index,
                turn.session_id,
                turn.attempts,
                len(plan.updates),
                len(plan.creations),
                len(plan.rejected),
                time.perf_counter() - started,
            )
        return True

    def _apply(self, turn: TurnSnapshot, worker_id: str, plan: AnalysisPlan) -> bool:
        with self.database.uow() as uow:
            if not claims.still_owned(uow.session, ChatTurn, [turn.id], worker_id):
                log.warning("analysis of turn %s lost its lease; its result is discarded", turn.id)
                return False
            for entry_id, summary in plan.updates:
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
            row = uow.turns.require(turn.id)
            row.processing_status = TurnStatus.DONE.value
            row.processing_errors = "\n".join(plan.rejected) or None
            row.last_processed_at = utcnow()
            row.worker_id = None
            row.locked_until = None
            uow.commit()
        if plan.updates:
            self.notifier.notify("note_updates", len(plan.updates))
        if plan.creations:
            self.notifier.notify("entity_creations", len(plan.creations))
        self.notifier.notify("analysis")  # the session's next turn may now be ready
        return True

    def _record_failure(self, turn: TurnSnapshot, worker_id: str, exc: LoreweaveError) -> None:
        retriable = not claims.is_final(exc)
        with self.database.uow() as uow:
            if not claims.still_owned(uow.session, ChatTurn, [turn.id], worker_id):
                return
            row = uow.turns.require(turn.id)
            row.processing_errors = f"attempt {row.attempts}: {exc}"[:2000]
            row.worker_id = None
            row.locked_until = None
            if row.attempts >= self.config.analysis_max_retries or not retriable:
                row.processing_status = TurnStatus.FAILED.value
                row.last_processed_at = utcnow()
            else:
                row.processing_status = TurnStatus.PENDING.value
                row.next_attempt_at = utcnow() + claims.backoff(
                    self.config.analysis_retry_delay, row.attempts
                )
            uow.commit()
        log.warning("analysis turn=%d session=%s failed: %s", turn.turn_index, turn.session_id, exc)

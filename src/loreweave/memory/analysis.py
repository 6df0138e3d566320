"""AnalysisService: what did this turn change?  (DESIGN §1.2)

The analysis LLM sees the turn, a few earlier turns, and the entities visible to the session,
each shown with a short reference (E1, E2…) that it cannot corrupt into another entity's id.
Its validated output becomes note-update and entity-creation tasks, written in one transaction
with the turn's status.  An update naming an unknown reference is dropped and recorded in the
turn's ``processing_errors``; it is never applied.

When several consecutive turns of a session wait together, one call analyses them
(``analysis.batch``), each update and creation keeping its own turn.  A creation there has a
ref (N1…) by which later turns of the batch update it: those updates ride on the creation task
(``followups``) and become the new entry's note updates, at their turns, once it exists.  Turns
the answer leaves out go back to the queue untried; if it leaves out the first, that turn is
analysed alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import desc, select

from loreweave.config import LLMConfig, PipelineConfig, small_model
from loreweave.db.models import (
    USER,
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
)
from loreweave.db.repositories import is_visible, visible_in
from loreweave.db.uow import UnitOfWork
from loreweave.llm.prompts.analysis import (
    ANALYSIS,
    ANALYSIS_BATCH,
    AnalysisResult,
    BatchAnalysisResult,
    EntityCreation,
    EntityUpdate,
    NewEntity,
    WitnessedChange,
    analysis_max_tokens,
    analysis_schema,
    batch_analysis_schema,
)
from loreweave.llm.prompts.creation import TITLE_CHARS
from loreweave.llm.types import ChatModel, ChatRequest
from loreweave.memory import answers
from loreweave.memory.grounding import (
    mentions,
    named_in,
    sentences_naming,
    shares_something,
    unknown_full_names,
)
from loreweave.memory.observer import CHARACTER, USER_NAMES, name_key
from loreweave.memory.ports import (
    ANALYSIS_QUEUE,
    ENTITY_CREATION_QUEUE,
    NOTE_UPDATE_QUEUE,
    Job,
    Outcome,
    QueueName,
    UnitOfWorkFactory,
)
from loreweave.memory.usable import copied_placeholder

WITNESS_CHARS = 200  # a witness's name is resolved, or dropped, at most this long
NOTED_WITNESSES = 3  # the dropped witnesses of one event noted each; the rest counted
# the type of a newcomer the analysis missed (a full name of two or more capitalised words
# in the turn: most often a person); its creation writes what the turn says of it
NAMED_NEWCOMER_TYPE = "Character"


@dataclass
class Creation:
    entity_type: str
    summary: str
    name: str | None = None  # as the turn writes it: the new entry's title
    followups: list[dict[str, object]] = field(default_factory=list)  # later turns' updates
    known_by: list[str] = field(default_factory=list)  # who met it (empty: everyone present)


@dataclass(frozen=True)
class Update:
    """A validated event of a known entity, with who knows it (DESIGN §1.6): Character entry
    ids and ``USER``; empty: public."""

    lore_entry_id: uuid.UUID
    summary: str
    known_by: list[str] = field(default_factory=list)


@dataclass
class AnalysisPlan:
    """The validated outcome of one turn's analysis."""

    updates: list[Update] = field(default_factory=list)
    creations: list[Creation] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Shown:
    """What an analysis request showed: its refs (E1…) and their entries, who may witness
    (:func:`witnesses`), and the entities' names (titles and aliases)."""

    refs: dict[str, uuid.UUID]
    witnesses: dict[str, str]
    names: str
    names_of: dict[str, str] = field(default_factory=dict)  # ref -> its title and aliases


def witnesses(refs: dict[str, LoreEntry]) -> dict[str, str]:
    """Who may witness, as ``known_by`` stores them (a Character's entry id, ``USER``), by
    every name an answer may give: a shown character's ref, its title or an alias (any case,
    any spacing: as the proxy resolves observers, :func:`observer.resolve`), the user's."""
    found = {name_key(name): USER for name in (*USER_NAMES, USER)}
    for ref, entry in refs.items():
        if entry.entity_type.casefold() == CHARACTER:
            for name in (ref, entry.title, *(entry.aliases or [])):
                found.setdefault(name_key(name), str(entry.id))
    return found


def _said(turn: ChatTurn) -> str:
    speaker = f"{turn.speaker}: " if turn.speaker else ""
    return f"{turn.user_message}\n{speaker}{turn.assistant_message}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _shown(turn: ChatTurn) -> dict[str, Any]:
    """A turn as the analysis prompt shows it, with who spoke the reply (a group chat's member;
    None: the narrator)."""
    return {"user": turn.user_message, "assistant": turn.assistant_message, "speaker": turn.speaker}


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
        # the small-model profile: set, or chosen by the analysis model's name
        self.small_model = (
            small_model(llm_config.analysis_model)
            if config.small_model is None
            else config.small_model
        )

    # -- prompt ----------------------------------------------------------------------------------
    def _entities(
        self, uow: UnitOfWork, session: ChatSession, turns: Sequence[ChatTurn]
    ) -> list[LoreEntry]:
        query = (
            select(LoreEntry)
            .where(visible_in(session))
            .order_by(desc(LoreEntry.updated_at), LoreEntry.id)
            .limit(self.config.analysis_max_entities)
        )
        entities = list(uow.session.scalars(query))
        shown = {e.id for e in entities}
        for raw in dict.fromkeys(raw for turn in turns for raw in turn.used_entry_ids):
            entry = uow.entries.get(uuid.UUID(raw))
            if entry is not None and entry.id not in shown and is_visible(entry, session):
                entities.append(entry)
                shown.add(entry.id)
        return sorted(entities, key=lambda e: (e.created_at, str(e.id)))

    def build_request(self, turn_ids: Sequence[uuid.UUID]) -> tuple[ChatRequest, Shown]:
        """The analysis of these consecutive turns: alone with the spec's prompt, or batched;
        with what it shows."""
        with self.uow(read_only=True) as uow:
            turns = [uow.turns.require(turn_id) for turn_id in turn_ids]
            session = uow.sessions.require(turns[0].session_id)
            entities = self._entities(uow, session, turns)
            history = uow.turns.recent(
                session.id, self.config.analysis_history_turns, before=turns[0].turn_index
            )
            refs = {f"E{i}": entry for i, entry in enumerate(entities, start=1)}
            characters = [r for r, e in refs.items() if e.entity_type.lower() == "character"]
            context: dict[str, Any] = {
                "entities": [
                    {
                        "ref": ref,
                        "entity_type": e.entity_type,
                        "title": e.title,
                        "aliases": e.aliases,
                    }
                    for ref, e in refs.items()
                ],
                "history": [_shown(t) for t in history],
            }
            single: dict[str, Any] = {
                "schema": analysis_schema(list(refs), self.config, characters),
                "max_tokens": analysis_max_tokens(self.config),
            }
            if len(turns) == 1:
                request = ANALYSIS.request(
                    self.llm_config,
                    **single,
                    **context,
                    user_message=turns[0].user_message,
                    assistant_message=turns[0].assistant_message,
                    speaker=turns[0].speaker,
                )
            else:
                said = [_shown(t) for t in turns]
                depth = self.config.analysis_history_turns
                parts = [  # each turn as it would be analysed alone
                    ANALYSIS.request(
                        self.llm_config,
                        **single,
                        entities=context["entities"],
                        history=([*context["history"], *said[:k]])[-depth:] if depth else [],
                        user_message=turn["user"],
                        assistant_message=turn["assistant"],
                        speaker=turn["speaker"],
                    )
                    for k, turn in enumerate(said)
                ]
                request = ANALYSIS_BATCH.request(
                    self.llm_config,
                    schema=batch_analysis_schema(list(refs), len(turns), self.config, characters),
                    max_tokens=analysis_max_tokens(self.config, len(turns)),
                    **context,
                    turns=said,
                    parts=parts,
                )
        names_of = {ref: f"{e.title} {' '.join(e.aliases or [])}" for ref, e in refs.items()}
        shown = Shown(
            {ref: e.id for ref, e in refs.items()},
            witnesses(refs),
            "\n".join(names_of.values()),
            names_of,
        )
        return request, shown

    @staticmethod
    def _witnesses(
        plan: AnalysisPlan, known_by: Sequence[str], shown: Shown, what: str
    ) -> list[str]:
        """``known_by`` as stored: the witnesses it names (:func:`witnesses`), once each, in
        order; any other name is dropped and recorded (like an invented update id), never
        failing the analysis."""
        found: list[str] = []
        dropped: list[str] = []
        for raw in known_by:
            witness = shown.witnesses.get(name_key(answers.name(raw, WITNESS_CHARS)))
            if witness is None:
                dropped.append(raw)
            elif witness not in found:
                found.append(witness)
        for raw in dropped[:NOTED_WITNESSES]:
            plan.rejected.append(
                f"witness {_clip(raw, 40)!r} of {what} dropped "
                "(no character shown to the analysis has that ref or name)"
            )
        if len(dropped) > NOTED_WITNESSES:
            plan.rejected.append(
                f"{len(dropped) - NOTED_WITNESSES} more witnesses of {what} dropped"
            )
        return found

    # -- validation ------------------------------------------------------------------------------
    def _ungrounded_update(self, ref: str, summary: str, shown: Shown, said: str) -> str | None:
        """Why an update of a shown entity is not of its turn: it shares no word with it, or
        (small-model profile) the turn does not name its entity; None: it is."""
        if self.config.ground_updates and not shares_something(summary, said):
            return f"it shares no word with its turn: {_clip(summary, 120)}"
        if self.small_model and not mentions(shown.names_of.get(ref, ""), said):
            return f"the latest turn does not name its entity: {_clip(summary, 120)}"
        return None

    def _update(self, plan: AnalysisPlan, update: EntityUpdate, shown: Shown, said: str) -> None:
        ref = answers.name(update.lore_entry_id, 20).upper()
        entry_id = shown.refs.get(ref)
        placeholder = copied_placeholder(update.update_summary)
        if placeholder is not None:
            plan.rejected.append(
                f"update for {update.lore_entry_id} dropped: it copies the prompt's "
                f"placeholder {placeholder!r}"
            )
            return
        if entry_id is None:
            plan.rejected.append(
                f"update for unknown entity {update.lore_entry_id!r} dropped "
                f"(not an id shown to the analysis): {_clip(update.update_summary, 120)}"
            )
            return
        if len(plan.updates) >= self.config.max_updates_per_turn:
            plan.rejected.append(f"update for {update.lore_entry_id} dropped: over the cap")
            return
        ungrounded = self._ungrounded_update(ref, update.update_summary, shown, said)
        if ungrounded is not None:
            # the small-model profile rejects what the standard one keeps and flags
            verdict = "dropped (small-model profile)" if self.small_model else "kept but flagged"
            plan.rejected.append(f"update for {update.lore_entry_id} {verdict}: {ungrounded}")
            if self.small_model:
                return
        what = f"the update of {update.lore_entry_id}"
        plan.updates.append(
            Update(
                entry_id,
                answers.bounded(update.update_summary, self.config.max_summary_chars),
                self._witnesses(plan, update.known_by, shown, what),
            )
        )

    @staticmethod
    def _unusable_creation(summary: str, name: str | None, said: str) -> str | None:
        """Why a proposed creation is dropped: a copied placeholder, or a name its turn never
        writes (checked as an id is: the name becomes the entry's title)."""
        placeholder = copied_placeholder(f"{name or ''}\n{summary}")
        if placeholder is not None:
            return f"creation dropped: it copies the prompt's placeholder {placeholder!r}"
        if name is not None and said and not named_in(name, said):
            return f"creation of {name!r} dropped: the turn never names it"
        return None

    def _creation(
        self,
        plan: AnalysisPlan,
        new: EntityCreation | NewEntity,
        shown: Shown,
        said: str,
    ) -> Creation | None:
        summary = new.creation_summary if isinstance(new, EntityCreation) else new.summary
        name = answers.name(new.name, TITLE_CHARS) if new.name else None
        unusable = self._unusable_creation(summary, name, said)
        if unusable is not None:
            plan.rejected.append(unusable)
            return None
        if len(plan.creations) >= self.config.max_creations_per_turn:
            plan.rejected.append("creation dropped: over the cap")
            return None
        kind = answers.name(new.entity_type, answers.ENTITY_TYPE_CHARS).title()
        if not kind:
            plan.rejected.append(
                f"creation dropped: its entity type {new.entity_type!r} is no name"
            )
            return None
        creation = Creation(
            kind,
            answers.bounded(summary, self.config.max_summary_chars),
            name=name,
            known_by=self._witnesses(plan, new.known_by, shown, "a creation"),
        )
        plan.creations.append(creation)
        return creation

    def _unknown_names(self, plan: AnalysisPlan, said: str, names: str) -> None:
        """The full names the turn uses that are no entity shown and no creation proposes:
        with the small-model profile they become creations (a newcomer such a model missed:
        its sentences in the turn are its summary), within the cap; otherwise, and past the
        cap, they are recorded (a capable model's choice not to create stands: "Hello Momo"
        is two capitalised words, not a newcomer)."""
        proposed = " ".join(f"{c.name or ''} {c.summary}" for c in plan.creations)
        missing = unknown_full_names(said, f"{names}\n{proposed}")
        # a creation not named yet (an answer without names) may be the newcomer: recorded only
        unnamed = any(c.name is None for c in plan.creations)
        for name in missing:
            full = len(plan.creations) >= self.config.max_creations_per_turn
            if not self.small_model or unnamed or full:
                plan.rejected.append("named in the turn, but no entity and no creation: " + name)
                continue
            summary = answers.bounded(sentences_naming(said, name), self.config.max_summary_chars)
            plan.creations.append(Creation(NAMED_NEWCOMER_TYPE, summary, name=name))

    def validate(self, result: AnalysisResult, shown: Shown, said: str = "") -> AnalysisPlan:
        """The plan of one turn's answer; ``said`` is the turn's text (for grounding)."""
        plan = AnalysisPlan()
        for update in result.updates:
            self._update(plan, update, shown, said)
        for new in result.creations:
            self._creation(plan, new, shown, said)
        return plan

    def validate_batch(
        self, result: BatchAnalysisResult, shown: Shown, turns: Sequence[ChatTurn]
    ) -> list[AnalysisPlan]:
        """One plan per turn the answer covers, from the first turn on without a gap (the rest
        are analysed again later).  An update may name an entity a creation of an earlier turn
        of the batch introduced (its new id): it rides on that creation, at its own turn."""
        answered = {key.strip(): part for key, part in result.turns.items()}
        plans: list[AnalysisPlan] = []
        created: dict[str, Creation] = {}
        for position, turn in enumerate(turns, start=1):
            part = answered.get(str(position))
            if part is None:
                break
            plan = AnalysisPlan()
            for ref, new in part.creations.items():
                made = self._creation(plan, new, shown, _said(turn))
                if made is not None:
                    created[ref.strip().upper()] = made
            for ref, change in part.updates.items():
                summary, known_by = (
                    (change.summary, change.known_by)
                    if isinstance(change, WitnessedChange)
                    else (change, [])
                )
                later = created.get(ref.strip().upper())
                if later is not None:
                    later.followups.append(
                        {
                            "turn_index": turn.turn_index,
                            "update_summary": answers.bounded(
                                summary, self.config.max_summary_chars
                            ),
                            "known_by": self._witnesses(plan, known_by, shown, f"{ref}'s update"),
                        }
                    )
                else:
                    update = EntityUpdate(
                        lore_entry_id=ref, update_summary=summary, known_by=known_by
                    )
                    self._update(plan, update, shown, _said(turn))
            plans.append(plan)
        return plans

    # -- one job ---------------------------------------------------------------------------------
    def plans(self, turns: Sequence[ChatTurn]) -> list[AnalysisPlan]:
        """The plans of the leading turns the LLM answered for (at least the first)."""
        request, shown = self.build_request([t.id for t in turns])
        if len(turns) == 1:
            single = ANALYSIS.ask(self.chat_model, request)
            plans = [self.validate(single, shown, _said(turns[0]))]
        else:
            result = ANALYSIS_BATCH.ask(self.chat_model, request)
            plans = self.validate_batch(result, shown, turns)
        if plans:
            if self.config.ground_updates:
                for turn, plan in zip(turns, plans, strict=False):
                    self._unknown_names(plan, _said(turn), shown.names)
            return plans
        return self.plans(turns[:1])  # the answer skipped the first turn: that one alone

    def handle(self, job: Job[ChatTurn]) -> Outcome:
        """Analyse the claimed turns and write their tasks, in the transaction that finishes
        them; turns the answer did not cover go back to the queue."""
        turns = list(job.rows)
        plans = self.plans(turns)
        updates_written = creations_written = rejected = 0
        with job.finishing() as uow:
            session = uow.sessions.require(turns[0].session_id)
            for turn, plan in zip(turns, plans, strict=False):
                updates = self._visible(uow, session, plan)
                for update in updates:
                    uow.session.add(
                        NoteUpdateTask(
                            lore_entry_id=update.lore_entry_id,
                            session_id=turn.session_id,
                            update_summary=update.summary,
                            turn_index=turn.turn_index,
                            known_by=update.known_by,
                        )
                    )
                    uow.session.flush()  # created_at order = the analysis's order
                for creation in plan.creations:
                    uow.session.add(
                        EntityCreationTask(
                            entity_type=creation.entity_type,
                            creation_summary=creation.summary,
                            name=creation.name,
                            session_id=turn.session_id,
                            turn_index=turn.turn_index,
                            followups=creation.followups,
                            known_by=creation.known_by,
                        )
                    )
                    uow.session.flush()
                uow.turns.require(turn.id).processing_errors = "\n".join(plan.rejected) or None
                updates_written += len(updates)
                creations_written += len(plan.creations)
                rejected += len(plan.rejected)
            left = [turn.id for turn in turns[len(plans) :]]
            if left:
                job.release(uow, left)
        wake: dict[QueueName, int] = {}
        if updates_written:
            wake[NOTE_UPDATE_QUEUE] = updates_written
        if creations_written:
            wake[ENTITY_CREATION_QUEUE] = creations_written
        if left:
            wake[ANALYSIS_QUEUE] = 1
        summary = (
            f"{len(plans)} turns: {updates_written} updates, {creations_written} creations, "
            f"{rejected} rejected" + (f"; {len(left)} turns left for later" if left else "")
        )
        return Outcome(summary, wake)

    def _visible(self, uow: UnitOfWork, session: ChatSession, plan: AnalysisPlan) -> list[Update]:
        """The plan's updates whose entry still exists and is visible to the session."""
        updates = []
        for update in plan.updates:
            entry = uow.entries.get(update.lore_entry_id)
            if entry is not None and is_visible(entry, session):
                updates.append(update)
            else:
                plan.rejected.append(
                    f"update for entry {update.lore_entry_id} dropped: the entry was deleted "
                    f"or hidden while the turn was analysed: {_clip(update.summary, 120)}"
                )
        return updates

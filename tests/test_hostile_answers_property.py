"""Whatever a model answers, the memory stays whole (issue 41), as a property: the fake models
answer a short story from hypothesis's mixtures of hostile shapes (prose, truncated JSON, extra
keys, ids of another session, 50 KB texts, the prompt echoed, NUL, lone surrogates, bidi and
zero-width characters, over-long witnesses, JSON for a note); afterwards every stored text is
within its bound and storable, no foreign id was applied, the other session is untouched,
every failure has its reason, and each note is its applied events in order (the rewriter
appends them): a replay that skips exactly the failed or refused events."""

from __future__ import annotations

import json
import re
import uuid
from itertools import cycle
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from loreweave.db import Database
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    SessionNote,
    World,
)
from loreweave.llm.prompts import answer_by_parts
from loreweave.llm.prompts.rewrite import note_max_chars
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.queue.notify import NullNotifier

from .pipeline_support import make_app

HUGE = "Aoi " + "x" * 50_000
MAX_SUMMARY, MAX_ENTRY = 200, 500
STORY = [
    ("Aoi walks to the harbour.", "The boats rock."),
    ("Kae, a courier, meets Aoi.", "Kae hands Aoi a letter."),
    ("Aoi reads the letter.", "It is from the Captain Aldric of the Watch."),
]


def _update(summary: str, **more: Any) -> str:
    return json.dumps({"updates": [{"lore_entry_id": "E1", "update_summary": summary, **more}]})


ANALYSIS = {
    "update": lambda k, _: _update(f"Aoi acts, step {k}."),
    "nul": lambda k, _: _update(f"Aoi\u0000 waits, step {k}.\ud800"),
    "bidi": lambda k, _: _update(f"\u202eAoi\u200b hides, step {k}."),
    "huge": lambda k, _: _update(HUGE),
    "foreign": lambda k, b: json.dumps(
        {
            "updates": [
                {"lore_entry_id": b, "update_summary": f"Aoi steals, step {k}."},
                {"lore_entry_id": "E99", "update_summary": "Nobody."},
            ]
        }
    ),
    "prose": lambda k, _: "I think Aoi changed a lot in this turn.",
    "truncated": lambda k, _: '{"updates": [{"lore_entry_id": "E1", "update_su',
    "extra": lambda k, _: _update(f"Aoi runs, step {k}.", mood="odd")[:-1] + ', "extra": 1}',
    "witness": lambda k, _: _update(
        f"Aoi whispers, step {k}.", known_by=["Captain Aldric of the Watch", 7, "aoi", "x" * 300]
    ),
    "create": lambda k, _: json.dumps(
        {"creations": [{"entity_type": "Character", "creation_summary": "Kae arrives."}]}
    ),
}
CREATION = {
    "ok": {"title": "Kae", "content": "Kae is a courier.", "tags": ["courier"]},
    "huge": {"title": "Kae", "content": HUGE, "tags": ["t"] * 50},
    "bidi": {"title": "Kae\u200f\u202e", "content": "Kae\u0000 runs.", "tags": ["\u200b"]},
    "prose": "Kae is a courier who runs the night roads.",
}
REWRITE = ("append", "append_nul", "json", "echo", "empty", "huge")
_NOTE = re.compile(r"^\[Current Session Note\]: (.*)$", re.M)
_EVENTS = re.compile(r"^(?:\[New Event\]: |\d+\. )(.*)$", re.M)


class HostileModel:
    """Answers each prompt with the next shape of its cycle."""

    provider = "hostile"

    def __init__(self, shapes: dict[str, list[str]], foreign: str) -> None:
        self.shapes = {name: cycle(drawn) for name, drawn in shapes.items()}
        self.foreign = foreign
        self.calls = 0

    def complete(self, request: ChatRequest) -> ChatResponse:
        batched = answer_by_parts(request, self.complete)
        if batched is not None:
            return batched
        self.calls += 1
        kind = (request.prompt or "").split(".")[0]
        shape = next(self.shapes[kind])
        if kind == "analysis":
            text = ANALYSIS[shape](self.calls, self.foreign)
        elif kind == "creation":
            made = CREATION[shape]
            text = made if isinstance(made, str) else json.dumps(made)
        else:
            text = self._rewrite(shape, request.messages[0].content)
        return ChatResponse(text, request.model)

    @staticmethod
    def _rewrite(shape: str, prompt: str) -> str:
        found = _NOTE.search(prompt)
        note = found.group(1) if found and found.group(1) != "(none yet)" else ""
        appended = " | ".join([*([note] if note else []), *_EVENTS.findall(prompt)])
        return {
            "append": appended,
            "append_nul": "\x00" + appended + "\ud800",
            "json": json.dumps({"note": appended, "extra": 1}),
            "echo": prompt,
            "empty": "  ",
            "huge": HUGE,
        }[shape]


def _clean(text: str) -> bool:
    """Storable: no NUL, no lone surrogate."""
    return not re.search("[\x00\ud800-\udfff]", text)


def _clean_name(text: str) -> bool:
    """A name also without bidi controls or zero-width marks."""
    return _clean(text) and not re.search("[\u202a-\u202e\u200b-\u200f]", text)


def _check(database: Database, session_a: uuid.UUID, session_b: uuid.UUID, b_note: str) -> None:
    with database.uow(read_only=True) as uow:
        entries = uow.session.scalars(select(LoreEntry)).all()
        for entry in entries:
            assert _clean_name(entry.title) and _clean(entry.content)
            assert len(entry.title) <= 200 and len(entry.content) <= MAX_ENTRY
            assert len(entry.tags) <= 20
            assert all(_clean_name(tag) and len(tag) <= 40 for tag in entry.tags)
        visible = {e.id for e in entries if e.origin_session_id in (None, session_a)}
        events = uow.session.scalars(
            select(NoteUpdateTask).order_by(NoteUpdateTask.turn_index, NoteUpdateTask.created_at)
        ).all()
        for event in events:
            assert event.session_id == session_a and event.lore_entry_id in visible  # no foreign
            assert _clean(event.update_summary) and len(event.update_summary) <= MAX_SUMMARY
            assert event.status != "failed" or event.error_message  # a failure has its reason
        for task in uow.session.scalars(select(EntityCreationTask)):
            assert _clean(task.creation_summary) and len(task.creation_summary) <= MAX_SUMMARY
            assert task.status != "failed" or task.error_message
        for turn in uow.session.scalars(select(ChatTurn)):
            assert _clean(turn.processing_errors or "")
            assert turn.processing_status != "failed" or turn.processing_errors
        notes = uow.session.scalars(select(SessionNote)).all()
        for note in notes:
            assert _clean(note.note_content) and len(note.note_content) <= note_max_chars(150)
            if note.session_id == session_b:
                assert (note.note_content, note.version) == (b_note, 1)  # untouched
                continue
            applied = [
                e.update_summary
                for e in events
                if e.lore_entry_id == note.lore_entry_id and e.status == "done"
            ]
            assert note.note_content == " | ".join(applied)  # the replay of what was applied


shapes = st.fixed_dictionaries(
    {
        "analysis": st.lists(st.sampled_from(sorted(ANALYSIS)), min_size=1, max_size=6),
        "creation": st.lists(st.sampled_from(sorted(CREATION)), min_size=1, max_size=3),
        "rewrite": st.lists(st.sampled_from(REWRITE), min_size=1, max_size=6),
    }
)


@settings(
    max_examples=10,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no explain: slow
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(drawn=shapes)
def test_whatever_the_models_answer_the_memory_stays_whole(
    tmp_path_factory: Any, drawn: dict[str, list[str]]
) -> None:
    path: Path = tmp_path_factory.mktemp("hostile")
    database = Database(f"sqlite:///{path / 'db.sqlite'}")
    database.ensure_schema()
    with database.uow() as uow:
        world = uow.worlds.add(World(name="Harbour"))
        aoi = uow.entries.add(
            LoreEntry(world_id=world.id, title="Aoi", entity_type="Character", content="A sailor.")
        )
        session_a = uow.sessions.add(ChatSession(world_id=world.id)).id
        session_b = uow.sessions.add(ChatSession(world_id=world.id)).id
        theirs = uow.entries.add(
            LoreEntry(
                world_id=world.id,
                title="Secret",
                content="Session B's own.",
                origin_session_id=session_b,
                is_dynamically_generated=True,
            )
        )
        uow.session.flush()
        uow.notes.write(session_b, aoi.id, "Aoi is in session B.", turn=0)
        uow.commit()
        foreign = str(theirs.id)
    model = HostileModel(drawn, foreign)
    retries = {"max_retries": 2, "retry_delay": 0}
    lw = make_app(
        database,
        path,
        model,
        notifier=NullNotifier(),
        pipeline_config={"max_summary_chars": MAX_SUMMARY, "max_entry_chars": MAX_ENTRY},
        dual_queue_config={
            "analysis_queue": {**retries, "batch_size": 1},
            "note_update_queue": retries,
            "entity_creation_queue": retries,
        },
    )
    for message, reply in STORY:
        lw.chat.record(session_a, message, reply)
        lw.pipeline.drain()
    lw.pipeline.drain()
    _check(database, session_a, session_b, "Aoi is in session B.")
    lw.close()
    database.dispose()

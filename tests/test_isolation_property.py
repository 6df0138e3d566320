"""Session isolation as a property: whatever the sequence of notes and creations, a session never
retrieves another session's notes or session-created entries."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loreweave.config import CompositeDocumentConfig
from loreweave.db import Database
from loreweave.db.models import ChatSession, LoreEntry, World
from loreweave.testing import HashingEmbedder
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.retrieval import Retriever
from loreweave.vectors.service import CompositeVectorService

from .sizes import examples

WORDS = ["dragon", "sword", "tavern", "ghost", "river", "crown", "storm", "fox"]
sessions = st.integers(min_value=0, max_value=2)
word = st.sampled_from(WORDS)
operation = st.one_of(
    st.tuples(st.just("world_entry"), word),
    st.tuples(st.just("created"), word, sessions),
    st.tuples(st.just("note"), word, sessions, st.integers(min_value=0, max_value=20)),
)


@pytest.mark.slow
@settings(
    max_examples=examples(ci=10, full=30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    operations=st.lists(operation, min_size=1, max_size=12),
    queries=st.lists(word, min_size=1, max_size=3),
)
def test_no_session_sees_anothers_state(tmp_path_factory, operations, queries) -> None:  # type: ignore[no-untyped-def]
    path: Path = tmp_path_factory.mktemp("iso") / "db.sqlite"
    database = Database(f"sqlite:///{path}")
    database.ensure_schema()
    embedder = HashingEmbedder(32)
    vectors = CompositeVectorService(database, embedder, CompositeDocumentConfig())
    retriever = Retriever(
        database, embedder, IndexCache(dim=32, model=embedder.model_name), vectors
    )
    with database.uow() as uow:
        world = uow.worlds.add(World(name="w"))
        session_ids = [uow.sessions.add(ChatSession(world_id=world.id)).id for _ in range(3)]
        uow.commit()
    owner: dict[uuid.UUID, int | None] = {}  # entry -> creating session (None: world lore)
    note_marks: dict[str, int] = {}  # a unique marker in each note -> the session that wrote it
    for op in operations:
        with database.uow() as uow:
            if op[0] in ("world_entry", "created"):
                origin = session_ids[op[2]] if op[0] == "created" else None
                entry = uow.entries.add(
                    LoreEntry(
                        world_id=world.id,
                        title=f"{op[1]} {len(owner)}",
                        content=f"A {op[1]} of legend.",
                        origin_session_id=origin,
                        is_dynamically_generated=origin is not None,
                    )
                )
                owner[entry.id] = op[2] if op[0] == "created" else None
                uow.commit()
                vectors.sync_entry(entry.id)
                continue
            visible = [e for e, s in owner.items() if s in (None, op[2])]
            if not visible:
                continue
            entry_id = visible[op[3] % len(visible)]
            mark = f"mark{len(note_marks)}x"
            note_marks[mark] = op[2]
            uow.notes.write(session_ids[op[2]], entry_id, f"The {op[1]} saw {mark}.", turn=0)
            uow.commit()
        vectors.sync_entry(entry_id, session_ids[op[2]])
    for index, session_id in enumerate(session_ids):
        for query in queries:
            for hit in retriever.search(session_id, f"{query} legend", 10):
                assert owner[hit.lore_entry_id] in (None, index)
                for mark, writer in note_marks.items():
                    if mark in hit.text:
                        assert writer == index
    database.dispose()

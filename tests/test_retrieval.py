"""What a turn retrieves: search keys, BM25, lorebook activation, the query, k and the budget.

Each test here failed on the retrieval before search keys, BM25 and SillyTavern's semantics
(one mean vector per document, keyword hits unbounded and ahead of k, the message alone)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loreweave.config import CompositeDocumentConfig, RetrievalConfig
from loreweave.db import Database
from loreweave.db.models import ChatSession, ChatTurn, EntityVector, LoreEntry, World
from loreweave.llm.types import ChatRequest, ChatResponse, Matrix
from loreweave.testing import HashingEmbedder
from loreweave.vectors.cache import IndexCache
from loreweave.vectors.keywords import secondary_agree
from loreweave.vectors.retrieval import Retriever
from loreweave.vectors.service import CompositeVectorService

CONFIG = CompositeDocumentConfig()


class TruncatingEmbedder(HashingEmbedder):
    """Reads only the first ``limit`` words of a text, as MiniLM reads 256 word pieces."""

    def __init__(self, dim: int, limit: int) -> None:
        super().__init__(dim)
        self.limit = limit

    def embed(self, texts: Sequence[str]) -> Matrix:
        return super().embed([" ".join(t.split()[: self.limit]) for t in texts])


class Town:
    def __init__(self, database: Database, embedder: HashingEmbedder | None = None) -> None:
        self.database = database
        self.embedder = embedder or HashingEmbedder(256)
        self.vectors = CompositeVectorService(database, self.embedder, CONFIG, chunk_words=40)
        self.cache = IndexCache(dim=self.embedder.dim, model=self.embedder.model_name)
        with database.uow() as uow:
            world = uow.worlds.add(World(name="Saltmere"))
            self.world_id = world.id
            self.session = uow.sessions.add(ChatSession(world_id=world.id, title="A")).id
            self.other = uow.sessions.add(ChatSession(world_id=world.id, title="B")).id
            uow.commit()

    def retriever(self, **config: Any) -> Retriever:
        return Retriever(
            self.database, self.embedder, self.cache, self.vectors, RetrievalConfig(**config)
        )

    def entry(self, title: str, content: str, **fields: Any) -> uuid.UUID:
        with self.database.uow() as uow:
            entry = uow.entries.add(
                LoreEntry(world_id=self.world_id, title=title, content=content, **fields)
            )
            uow.commit()
        self.vectors.sync_entry(entry.id)
        return entry.id

    def note(self, entry_id: uuid.UUID, text: str, session: uuid.UUID | None = None) -> None:
        session = session or self.session
        with self.database.uow() as uow:
            uow.notes.write(session, entry_id, text, turn=0)
            uow.commit()
        self.vectors.sync_entry(entry_id, session)

    def turn(self, user: str, assistant: str) -> None:
        with self.database.uow() as uow:
            index = uow.turns.next_index(self.session)
            uow.session.add(
                ChatTurn(
                    session_id=self.session,
                    turn_index=index,
                    user_message=user,
                    assistant_message=assistant,
                    processing_status="done",
                )
            )
            uow.commit()

    def titles(self, message: str, **config: Any) -> list[str]:
        return [h.title for h in self.retriever(**config).search(self.session, message)]


@pytest.fixture
def w(database: Database) -> Town:
    return Town(database)


def filler(w: Town, count: int = 12) -> None:
    for i in range(count):
        w.entry(f"Bystander {i}", f"A bystander of the market, number {i}, who sells fish.")


# -- lorebook activation ---------------------------------------------------------------------


def test_a_possessive_names_its_entry(w: Town) -> None:
    w.entry("Captain Korrin", "The harbour master of Saltmere.", aliases=["Korrin"])
    filler(w)
    hits = w.retriever(bm25=False, vector_weight=0).search(w.session, "I look at Korrin's leg.")
    assert [(h.title, h.via) for h in hits][:1] == [("Captain Korrin", "keyword")]


def test_punctuation_does_not_hide_a_name(w: Town) -> None:
    w.entry("Old Mera", "A fortune teller.", aliases=["Mera"])
    filler(w)
    for message in ("Mera, come here!", "(Mera?)", "“Mera” she said", "MERA!!!"):
        assert w.titles(message, bm25=False, vector_weight=0)[0] == "Old Mera", message


@pytest.mark.parametrize(
    ("logic", "message", "active"),
    [
        ("and_any", "The dragon sleeps in the cave.", True),
        ("and_any", "The dragon flies.", False),
        ("and_all", "The dragon sleeps in the cave under the mountain.", True),
        ("and_all", "The dragon sleeps in the cave.", False),
        ("not_any", "The dragon flies.", True),
        ("not_any", "The dragon sleeps in the mountain.", False),
        ("not_all", "The dragon sleeps in the cave.", True),
        ("not_all", "The dragon sleeps in the cave under the mountain.", False),
    ],
)
def test_secondary_keys_follow_sillytaverns_logic(
    w: Town, logic: str, message: str, active: bool
) -> None:
    w.entry(
        "Dragon's lair",
        "Where the old wyrm hoards gold.",
        aliases=["dragon"],
        secondary_keys=["cave", "mountain"],
        key_logic=logic,
    )
    hits = w.retriever(bm25=False, vector_weight=0).search(w.session, message)
    assert any(h.via == "keyword" for h in hits) is active


def test_secondary_logic_table() -> None:
    assert secondary_agree("and_any", []) is True  # no secondary keys: the key match stands
    assert [secondary_agree("not_all", p) for p in ([True, True], [True, False])] == [False, True]


def test_constant_entries_always_come_and_disabled_never(w: Town) -> None:
    w.entry("The Law", "Magic is forbidden inside the walls.", constant=True)
    w.entry("Hidden Door", "A door behind the tavern's fireplace.", enabled=False)
    filler(w)
    hits = w.retriever().search(w.session, "I open the hidden door behind the fireplace.")
    assert hits[0].title == "The Law" and hits[0].via == "constant"
    assert "Hidden Door" not in [h.title for h in hits]


def test_keyword_hits_count_inside_k(w: Town) -> None:
    names = [f"Guard{c}" for c in "ABCDEFG"]
    for name in names:
        w.entry(name, f"{name} watches the gate.")
    message = "I greet " + ", ".join(names) + "."
    hits = w.retriever(k=3).search(w.session, message)
    assert [h.title for h in hits] == names[:3]  # first mentioned first, and no more than k
    assert {h.via for h in hits} == {"keyword"}


# -- search keys -----------------------------------------------------------------------------


def test_the_newest_facts_of_a_long_note_are_found(database: Database) -> None:
    """An embedder reads 60 words; the note's latest fact is at its end."""
    w = Town(database, TruncatingEmbedder(256, limit=60))
    tilda = w.entry("Tilda", "A weaver of Saltmere who sings while she works.")
    filler(w)
    early = " ".join(f"On day {d} Tilda wove cloth and sang at the loom." for d in range(12))
    w.note(tilda, early + " At last Tilda hid the emerald crown under the bridge.")
    with database.uow(read_only=True) as uow:
        query = select(EntityVector.part).where(
            EntityVector.lore_entry_id == tilda, EntityVector.session_id == w.session
        )
        parts = set(uow.session.scalars(query))
    assert {"document", "note.0", "note.1"} <= parts  # chunks, not one truncated vector
    hits = w.retriever(bm25=False, keywords=False, k=1).search(
        w.session, "who hid the emerald crown under the bridge"
    )
    assert hits[0].title == "Tilda"
    assert hits[0].text.endswith("hid the emerald crown under the bridge.")  # the whole document


def test_the_note_alone_finds_the_current_state(w: Town) -> None:
    """A state question: the note alone outranks look-alikes whose lore shares its words."""
    orla = w.entry(
        "Orla",
        "Orla is a sailor from Ironhold, boastful and loud, who tells stories of storms, "
        "sea serpents and the long winter at the northern docks of Ironhold harbour.",
    )
    for i in range(6):
        w.entry(f"Twin {i}", f"Twin {i} is a sailor who carries a silver compass, number {i}.")
    w.note(orla, "Orla now carries the silver compass.")
    hits = w.retriever(bm25=False, keywords=False, k=1).search(
        w.session, "who carries the silver compass now"
    )
    assert hits[0].title == "Orla"


def test_search_keys_follow_the_note(w: Town) -> None:
    tilda = w.entry("Tilda", "A weaver.")
    w.note(tilda, " ".join(["word"] * 100))
    w.note(tilda, "short again")
    with w.database.uow(read_only=True) as uow:
        query = select(EntityVector).where(EntityVector.session_id == w.session)
        live = {r.part for r in uow.session.scalars(query) if not r.is_deleted}
    assert live == {"document", "note"}  # the chunks became tombstones
    assert w.vectors.verify().ok


# -- BM25 ------------------------------------------------------------------------------------


def test_bm25_ranks_the_sessions_own_documents(w: Town) -> None:
    reed = w.entry("Reed", "A fisherman of the bay.")
    filler(w)
    w.note(reed, "Reed found a glowing pearl in a clam.")
    hits = w.retriever(vector_weight=0, keywords=False).search(w.session, "glowing pearl")
    assert (hits[0].title, hits[0].via) == ("Reed", "bm25")
    other = w.retriever(vector_weight=0, keywords=False).search(w.other, "glowing pearl")
    assert "Reed" not in [h.title for h in other]  # another session's note is not searched


def test_bm25_follows_a_changed_note(w: Town) -> None:
    reed = w.entry("Reed", "A fisherman of the bay.")
    filler(w)
    retriever = w.retriever(vector_weight=0, keywords=False)
    w.note(reed, "Reed found a glowing pearl.")
    assert retriever.search(w.session, "pearl")[0].title == "Reed"
    w.note(reed, "Reed sold everything for a boat.")
    assert "Reed" not in [h.title for h in retriever.search(w.session, "pearl")]


# -- the query, k and the budget ---------------------------------------------------------------


def test_the_query_includes_the_last_turns(w: Town) -> None:
    w.entry("Lighthouse", "A lighthouse on the cliffs whose lamp never goes out.")
    filler(w)
    w.turn("We walk to the lighthouse on the cliffs.", "The lamp of the lighthouse burns.")
    assert "Lighthouse" in w.titles("And then?", keywords=False, k=2)
    assert "Lighthouse" not in w.titles("And then?", keywords=False, history_turns=0, k=2)


def test_k_and_the_token_budget_are_settings(w: Town) -> None:
    for i in range(8):
        w.entry(f"Stall {i}", f"A fish stall of the market, number {i}. " + "Smelly. " * (i * 20))
    assert len(w.titles("fish stall market", k=2)) == 2
    assert len(w.titles("fish stall market", k=6)) == 6
    result = w.retriever(k=8, token_budget=120).retrieve(w.session, "fish stall market")
    assert result.tokens <= 120 and sum(h.tokens for h in result.entries) == result.tokens
    assert result.skipped and all(h.tokens > 0 for h in result.skipped)


class Sailor:
    provider = "sailor"

    def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse("Aye.", request.model)


def test_search_endpoint_is_what_the_turn_uses(tmp_path: Path, database: Database) -> None:
    from loreweave.api.app import create_app
    from tests.pipeline_support import make_app

    client = TestClient(create_app(make_app(database, tmp_path, Sailor())))
    world = client.post("/api/worlds", json={"name": "Port"}).json()["id"]
    session = client.post(f"/api/worlds/{world}/sessions", json={}).json()["id"]
    entries = f"/api/worlds/{world}/lore-entries"
    for i in range(10):
        client.post(entries, json={"title": f"Ship {i}", "content": f"A ship, number {i}."})
    law = {"title": "Harbour Law", "content": "No fires on the docks.", "constant": True}
    assert client.post(entries, json=law).status_code == 201
    for message in ("Which ship sails at dawn?", "And the Ship 3?", "Tell me more."):
        found = client.get(f"/api/sessions/{session}/search", params={"q": message}).json()
        turn = client.post(f"/api/sessions/{session}/turns", json={"message": message}).json()
        assert [h["lore_entry_id"] for h in found] == [
            e["lore_entry_id"] for e in turn["used_entries"]
        ]
        assert found[0]["via"] == "constant"


def test_a_large_world_is_indexed_in_the_background(w: Town) -> None:
    """The first search of a process in a large world does not wait for its BM25 index."""
    import threading

    w.entry("Reed", "A fisherman of the bay.")
    filler(w)
    retriever = w.retriever(vector_weight=0, keywords=False)
    assert retriever.lexical is not None
    retriever.lexical.sync_keys = 5  # 13 keys: "large"
    release = threading.Event()
    build = retriever.lexical._refresh

    def slow(*args: Any) -> None:
        release.wait(10)
        build(*args)

    retriever.lexical._refresh = slow  # type: ignore[method-assign]
    assert retriever.search(w.session, "fisherman bay") == []  # ranked without BM25, at once
    release.set()
    for _ in range(100):
        world = retriever.lexical._worlds[w.world_id]
        if not world.building:
            break
        threading.Event().wait(0.05)
    assert retriever.search(w.session, "fisherman bay")[0].title == "Reed"


def test_world_info_ignore_budget_and_triggers_are_honoured(w: Town) -> None:
    """An imported entry with ``ignoreBudget`` goes in over the token budget; one whose
    ``triggers`` name some kinds of generation only goes into those."""
    wi = "sillytavern_world_info"
    long = " ".join(["The altar is old stone."] * 20)
    w.entry("Altar", long, aliases=["altar"], extra={wi: {"ignoreBudget": True}})
    w.entry("Bell", "A bronze bell.", aliases=["bell"], extra={wi: {"triggers": ["continue"]}})
    w.entry("Well", long, aliases=["well"])
    retriever = w.retriever(bm25=False, vector_weight=0)

    def titles(trigger: Any = None, budget: int = 20) -> set[str]:
        found = retriever.retrieve(
            w.session, "The altar, the bell, the well.", token_budget=budget, trigger=trigger
        )
        return {e.title for e in found.entries}

    assert "Altar" in titles() and "Well" not in titles()  # over budget, in all the same
    assert "Bell" in titles("continue", 1000) and "Bell" not in titles("normal", 1000)
    assert "Bell" in titles(None, 1000)  # a caller that says nothing: every entry, as before

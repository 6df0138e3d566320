"""Retrieval quality on a generated evaluation set, with the local MiniLM embedder.

A world of characters; sessions in which some of them move and trade items (their session
notes); queries whose answer needs the session's state ("Who lives in Saltmere now?").  Three
ways to index the same knowledge:

- composite: one document per entity per session view (loreweave: base lore + session notes);
- option A: base lore and session notes as separate documents (the spec's rejected option); the
  entity counts as retrieved *completely* only when both of its documents are in the top k;
- base only: no session state in the index at all.

A second part measures keyword activation (an entry named in the message is always included)
with loreweave's real retriever, on queries that name the entity.

    python bench/retrieval_quality.py [--characters 60] [--sessions 4] [--changed 15]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import uuid
from pathlib import Path

import numpy as np

from common import save
from loreweave.config import CompositeDocumentConfig, Settings
from loreweave.llm.providers.local import LocalEmbedder
from loreweave.memory.composite import composite_text

SYLLABLES = ["ka", "ren", "to", "mi", "sha", "lo", "vek", "ar", "un", "dra", "zel", "i", "bo", "th"]
TRADES = ["blacksmith", "herbalist", "sailor", "scribe", "hunter", "bard", "merchant", "guard"]
TRAITS = ["quiet", "boastful", "kind", "suspicious", "cheerful", "stern", "curious", "greedy"]
PLACES = [
    "Oakridge",
    "Saltmere",
    "Duskvale",
    "Ironhold",
    "Willowmere",
    "Stonebridge",
    "Frostpeak",
    "Emberfall",
    "Mistwood",
    "Goldcrest",
    "Ravenholm",
    "Sunspire",
    "Thornwick",
    "Brightwater",
    "Ashford",
    "Highmoor",
    "Coldharbour",
    "Redcliff",
    "Deepwell",
    "Fairhaven",
]
ITEMS = [
    "a silver compass",
    "a cracked lantern",
    "an iron key",
    "a jade amulet",
    "a bone flute",
    "a crimson cloak",
    "a rusted sword",
    "a map of the stars",
    "a glass eye",
    "a copper bell",
    "a black feather",
    "a golden thimble",
    "a wooden mask",
    "a dragon scale",
    "a moonstone ring",
]


def name(rng: random.Random, used: set[str]) -> str:
    while True:
        candidate = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice([2, 3]))).title()
        if candidate not in used:
            used.add(candidate)
            return candidate


def generate(characters: int, sessions: int, changed: int, seed: int = 7):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    used: set[str] = set()
    world = []
    for _ in range(characters):
        world.append(
            {
                "name": name(rng, used),
                "trade": rng.choice(TRADES),
                "trait": rng.choice(TRAITS),
                "home": rng.choice(PLACES),
                "item": rng.choice(ITEMS),
            }
        )
    for person in world:
        person["lore"] = (
            f"{person['name']} is a {person['trait']} {person['trade']} from {person['home']} "
            f"who always carries {person['item']}."
        )
    runs = []
    for _ in range(sessions):
        notes, queries = {}, []
        places = rng.sample(PLACES, k=min(changed, len(PLACES)))
        items = rng.sample(ITEMS, k=min(changed, len(ITEMS)))
        for index, target in enumerate(
            rng.sample(range(characters), k=min(changed, len(places), len(items)))
        ):
            person = world[target]
            new_place, new_item = places[index], items[index]
            notes[target] = (
                f"{person['name']} left {person['home']} and now lives in {new_place}. "
                f"{person['name']} traded away {person['item']} and now carries {new_item}."
            )
            queries.append((f"Who lives in {new_place} now?", target))
            queries.append((f"Who carries {new_item} these days?", target))
        runs.append({"notes": notes, "queries": queries})
    return world, runs


def recall(ranked: list[list[int]], hits, k: int) -> float:  # type: ignore[no-untyped-def]
    return float(np.mean([hits(row[:k]) for row in ranked]))


def evaluate(world, runs, embedder: LocalEmbedder) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    config = CompositeDocumentConfig()
    lore_vectors = embedder.embed([p["lore"] for p in world])
    results: dict[str, list[tuple[list[int], list[int], int]]] = {
        "composite": [],
        "option_a": [],
        "base_only": [],
    }
    for run in runs:
        targets = sorted(run["notes"])
        composite = lore_vectors.copy()
        texts = [composite_text(world[t]["lore"], run["notes"][t], config) for t in targets]
        composite[targets] = embedder.embed(texts)
        note_vectors = embedder.embed([run["notes"][t] for t in targets])
        separate = np.concatenate([lore_vectors, note_vectors])  # doc i < n: lore of i; else note
        owner = list(range(len(world))) + targets
        queries = embedder.embed([q for q, _ in run["queries"]])
        for query, (_, target) in zip(queries, run["queries"], strict=True):
            results["composite"].append((list(np.argsort(-(composite @ query))), [], target))
            results["base_only"].append((list(np.argsort(-(lore_vectors @ query))), [], target))
            order = list(np.argsort(-(separate @ query)))
            results["option_a"].append((order, owner, target))
    figures: dict[str, dict[str, float]] = {}
    for method, rows in results.items():
        figures[method] = {}
        for k in (1, 5):
            if method == "option_a":
                complete = np.mean(
                    [
                        target in order[:k]
                        and (len(world) + sorted_index(owner, target, len(world))) in order[:k]
                        for order, owner, target in rows
                    ]
                )
                either = np.mean(
                    [target in {owner[i] for i in order[:k]} for order, owner, target in rows]
                )
                figures[method][f"recall@{k}"] = float(complete)
                figures[method][f"recall@{k}_either_document"] = float(either)
            else:
                figures[method][f"recall@{k}"] = float(
                    np.mean([target in order[:k] for order, _, target in rows])
                )
    return figures


def sorted_index(owner: list[int], target: int, offset: int) -> int:
    return owner[offset:].index(target)


def keyword_activation(world, embedder: LocalEmbedder) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Queries that name an entity, through loreweave's retriever, with and without keywords."""
    from loreweave.bootstrap import build
    from loreweave.db.models import ChatSession, LoreEntry, World
    from loreweave.llm.providers.scripted import ScriptedChatModel
    from loreweave.llm.registry import Providers
    from loreweave.vectors.retrieval import Retriever

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'q.db'}", index_dir=Path(tmp) / "i"
        )
        app = build(settings, providers=Providers(chat=ScriptedChatModel(), embedder=embedder))
        ids: list[uuid.UUID] = []
        with app.database.uow() as uow:
            w = uow.worlds.add(World(name="eval"))
            session = uow.sessions.add(ChatSession(world_id=w.id))
            for person in world:
                ids.append(
                    uow.entries.add(
                        LoreEntry(
                            world_id=w.id,
                            title=person["name"],
                            entity_type="Character",
                            content=person["lore"],
                        )
                    ).id
                )
            uow.commit()
        for entry_id in ids:
            app.vectors.sync_entry(entry_id)
        queries = [
            (f"I ask around the market about {p['name']}.", ids[i]) for i, p in enumerate(world)
        ]
        figures = {}
        for label, keywords in (("with_keywords", True), ("vector_only", False)):
            retriever = Retriever(app.database, embedder, app.cache, app.vectors, keywords=keywords)
            for k in (1, 5):
                found = [
                    target in [h.lore_entry_id for h in retriever.search(session.id, q, k)][:k]
                    for q, target in queries
                ]
                figures[f"{label}_recall@{k}"] = float(np.mean(found))
        app.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--characters", type=int, default=60)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--changed", type=int, default=15)
    args = parser.parse_args()
    embedder = LocalEmbedder()
    world, runs = generate(args.characters, args.sessions, args.changed)
    figures = evaluate(world, runs, embedder)
    keywords = keyword_activation(world, embedder)
    queries = sum(len(r["queries"]) for r in runs)
    lines = [
        f"{args.characters} characters, {args.sessions} sessions × {args.changed} changed characters, "
        f"{queries} state queries; embedder {embedder.model_name}.",
        "",
        "| index | recall@1 | recall@5 |",
        "|---|---|---|",
        f"| composite documents (loreweave) | {figures['composite']['recall@1']:.0%} | {figures['composite']['recall@5']:.0%} |",
        f"| option A: separate lore + note documents, both retrieved | {figures['option_a']['recall@1']:.0%} | {figures['option_a']['recall@5']:.0%} |",
        f"| option A: either document retrieved (incomplete context) | {figures['option_a']['recall@1_either_document']:.0%} | {figures['option_a']['recall@5_either_document']:.0%} |",
        f"| base lore only | {figures['base_only']['recall@1']:.0%} | {figures['base_only']['recall@5']:.0%} |",
        "",
        f"Keyword activation ({len(world)} queries naming the entity, real retriever):",
        "",
        "| retrieval | recall@1 | recall@5 |",
        "|---|---|---|",
        f"| vector + keyword activation | {keywords['with_keywords_recall@1']:.0%} | {keywords['with_keywords_recall@5']:.0%} |",
        f"| vector only | {keywords['vector_only_recall@1']:.0%} | {keywords['vector_only_recall@5']:.0%} |",
    ]
    save(
        "retrieval_quality",
        {"args": vars(args), "state_queries": figures, "keyword_activation": keywords},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()

"""Retrieval quality on the project's own evaluation set, through loreweave's real retriever and
the local MiniLM embedder.

The set (generated, seeded, the same on every run): a world of characters in look-alike pairs
(the same trade, trait and home town, names one letter apart, different items); sessions in
which a third of the characters move and trade items, one twin of a pair at most per session,
each now carrying the twin's kind of thing in a make no lore mentions (a brass compass, where
the twin's lore says a silver one), so the look-alike's lore nearly answers a state question and
only the note answers it; a third of those notes are long (weeks of events, the new state at the end, past the 256 word
pieces MiniLM reads).  Three kinds of question:

- state: about a changed entity's current state ("Who has moved to Frostpeak lately?", "Who
  carries a brass compass these days?");
- named: naming an entity, sometimes by a possessive ("Where is Korrin's compass now?");
- static: about unchanged lore, without a name ("Which stern sailor from Saltmere carries …").

For each: recall@1/3/5 (the right entity among the first k the chat model is handed) and
complete context@5 (it is there *and* its text is the whole current composite document).

    python bench/retrieval_quality.py                       # this code: results/retrieval_quality
    PYTHONPATH=<old checkout>/src python bench/retrieval_quality.py --label before

Only APIs every version has are used (``build``, ``Retriever.search``), so the same script
measures an older checkout.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import RESULTS, save
from loreweave.bootstrap import build
from loreweave.config import CompositeDocumentConfig, Settings
from loreweave.db.models import ChatSession, LoreEntry, World
from loreweave.llm.providers.local import LocalEmbedder
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.registry import Providers
from loreweave.memory.composite import composite_text

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
    "Glimmerdeep",
    "Oxbow",
]
ITEMS = [
    f"a {adjective} {thing}"
    for adjective in ("silver", "cracked", "jade", "crimson", "bone", "copper", "black", "golden")
    for thing in ("compass", "lantern", "key", "amulet", "flute", "ring", "mask", "bell")
]
NEW_MAKES = ["brass", "ivory", "rusted", "painted", "tin", "glass", "oaken", "pewter"]
SYLLABLES = ["ka", "ren", "to", "mi", "sha", "lo", "vek", "ar", "un", "dra", "zel", "bo", "th"]
DAYS = [
    "{name} spent a morning at the market haggling over wool and salted fish.",
    "{name} mended a torn sail for a neighbour and was paid in apples.",
    "{name} told the tavern a long story about a storm that never happened.",
    "{name} walked the coast road in the rain and slept in a barn.",
    "{name} argued with the miller about the price of flour until dusk.",
    "{name} helped the village children fly kites on the hill.",
    "{name} wrote a letter to an old friend and never sent it.",
    "{name} cleaned every window of the inn for a hot meal.",
]


@dataclass(frozen=True)
class Question:
    kind: str  # state | named | static
    text: str
    target: int  # index of the character
    session: int


def make_name(rng: random.Random, used: set[str]) -> str:
    while True:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice([2, 3]))).title()
        twin = name[:-1] + ("y" if name[-1] != "y" else "a")
        if len(name) >= 4 and not {name, twin} & used:
            used.update({name, twin})
            return name


def generate(pairs: int, sessions: int, changed: int, seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    used: set[str] = set()
    items = rng.sample(ITEMS, k=2 * pairs) if 2 * pairs <= len(ITEMS) else ITEMS * 2
    people: list[dict[str, str]] = []
    for pair in range(pairs):
        name = make_name(rng, used)
        twin = name[:-1] + ("y" if name[-1] != "y" else "a")
        shared = {
            "trade": rng.choice(TRADES),
            "trait": rng.choice(TRAITS),
            "home": rng.choice(PLACES),
        }
        for who, item in ((name, items[2 * pair]), (twin, items[2 * pair + 1])):
            people.append({"name": who, "item": item, **shared})
    for person in people:
        person["lore"] = (
            f"{person['name']} is a {person['trait']} {person['trade']} from {person['home']} "
            f"who carries {person['item']}. {person['name']} knows every road around "
            f"{person['home']} and trusts few strangers."
        )
    runs = []
    for session in range(sessions):
        notes: dict[int, str] = {}
        questions: list[Question] = []
        chosen = [2 * p + rng.randrange(2) for p in rng.sample(range(pairs), k=changed)]
        homes = rng.sample(PLACES, k=changed)
        for n, target in enumerate(chosen):
            person = people[target]
            twin = people[target ^ 1]
            new_home = homes[n] if homes[n] != person["home"] else PLACES[-1 - n]
            # the twin's kind of thing, of a make no lore mentions: one right answer, and a
            # look-alike whose lore nearly says it
            new_item = f"a {NEW_MAKES[n % len(NEW_MAKES)]} {twin['item'].split()[-1]}"
            state = (
                f"{person['name']} left {person['home']} and now lives in {new_home}. "
                f"{person['name']} traded away {person['item']} and now carries {new_item}."
            )
            if n % 3 == 0:  # a long note: weeks of events, the new state last
                days = [rng.choice(DAYS).format(name=person["name"]) for _ in range(24)]
                state = " ".join(days) + " " + state
            notes[target] = state
            text = f"Who has moved to {new_home} lately?"
            questions.append(Question("state", text, target, session))
            questions.append(
                Question("state", f"Who carries {new_item} these days?", target, session)
            )
        unchanged = [i for i in range(len(people)) if i not in notes]
        for target in chosen[:5]:
            thing = people[target]["item"].split()[-1]
            text = f"Where is {people[target]['name']}'s {thing} now?"
            questions.append(Question("named", text, target, session))
        for target in rng.sample(unchanged, k=5):
            text = f"What has {people[target]['name']} been doing lately?"
            questions.append(Question("named", text, target, session))
        for target in rng.sample(unchanged, k=10):
            p = people[target]
            text = f"Which {p['trait']} {p['trade']} from {p['home']} carries {p['item']}?"
            questions.append(Question("static", text, target, session))
        runs.append({"notes": notes, "questions": questions})
    return {"people": people, "runs": runs}


def evaluate(
    data: dict[str, Any], embedder: LocalEmbedder, variants: dict[str, dict[str, Any]], k: int = 5
) -> dict[str, Any]:
    """Figures per variant: ``{}`` is the code's own retriever; other variants are retrieval
    settings (this code only)."""
    people, runs = data["people"], data["runs"]
    config = CompositeDocumentConfig()
    found: dict[str, dict[str, list[tuple[int | None, bool]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'q.db'}", index_dir=Path(tmp) / "index"
        )
        app = build(settings, providers=Providers(chat=ScriptedChatModel(), embedder=embedder))
        with app.database.uow() as uow:
            world = uow.worlds.add(World(name="eval"))
            sessions = [uow.sessions.add(ChatSession(world_id=world.id)).id for _ in runs]
            ids = [
                uow.entries.add(
                    LoreEntry(
                        world_id=world.id,
                        title=p["name"],
                        entity_type="Character",
                        content=p["lore"],
                    )
                ).id
                for p in people
            ]
            for session_id, run in zip(sessions, runs, strict=True):
                for target, note in run["notes"].items():
                    uow.notes.write(session_id, ids[target], note, turn=0)
            uow.commit()
        app.vectors.sync_entries(ids)
        for session_id, run in zip(sessions, runs, strict=True):
            app.vectors.sync_entries([ids[t] for t in run["notes"]], session_id)
        for variant, overrides in variants.items():
            retriever = app.retriever
            if overrides:
                from loreweave.config import RetrievalConfig
                from loreweave.vectors.retrieval import Retriever

                retriever = Retriever(  # type: ignore[call-arg]
                    app.database, embedder, app.cache, app.vectors, RetrievalConfig(**overrides)
                )
            rows = found[variant] = {}
            for session_id, run in zip(sessions, runs, strict=True):
                for q in run["questions"]:
                    hits = retriever.search(session_id, q.text, k)[:k]
                    order = [h.lore_entry_id for h in hits]
                    rank = order.index(ids[q.target]) + 1 if ids[q.target] in order else None
                    expected = composite_text(
                        people[q.target]["lore"], run["notes"].get(q.target), config
                    )
                    complete = rank is not None and hits[rank - 1].text == expected
                    rows.setdefault(q.kind, []).append((rank, complete))
                    rows.setdefault("all", []).append((rank, complete))
        app.close()
    return {variant: summarise(rows) for variant, rows in found.items()}


def summarise(found: dict[str, list[tuple[int | None, bool]]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for kind, rows in found.items():
        figures[kind] = {
            "questions": len(rows),
            **{
                f"recall@{n}": sum(1 for r, _ in rows if r is not None and r <= n) / len(rows)
                for n in (1, 3, 5)
            },
            "complete@5": sum(1 for _, c in rows if c) / len(rows),
        }
    return figures


def table(label: str, figures: dict[str, Any]) -> list[str]:
    lines = []
    for kind in ("state", "named", "static", "all"):
        f = figures[kind]
        lines.append(
            f"| {label} | {kind} ({f['questions']}) | {f['recall@1']:.0%} | {f['recall@3']:.0%} "
            f"| {f['recall@5']:.0%} | {f['complete@5']:.0%} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=32, help="look-alike pairs (2 entities each)")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--changed", type=int, default=20, help="changed entities per session")
    parser.add_argument("--label", default="after", help="'before' names the older checkout")
    args = parser.parse_args()
    data = generate(args.pairs, args.sessions, args.changed)
    variants: dict[str, dict[str, Any]] = {args.label: {}}
    if args.label == "after":
        variants |= {
            "after, without BM25": {"bm25": False},
            "after, vectors only": {"bm25": False, "keywords": False},
            "after, BM25 only": {"vector_weight": 0, "keywords": False},
        }
    figures = evaluate(data, LocalEmbedder(), variants)
    name = "retrieval_quality" if args.label == "after" else f"retrieval_quality_{args.label}"
    questions = sum(len(r["questions"]) for r in data["runs"])
    lines = [
        f"{2 * args.pairs} entities ({args.pairs} look-alike pairs), {args.sessions} sessions × "
        f"{args.changed} changed entities, {questions} questions; all-MiniLM-L6-v2; k = 5.",
        "",
        "| code | kind (questions) | recall@1 | recall@3 | recall@5 | complete context@5 |",
        "|---|---|---|---|---|---|",
    ]
    before = RESULTS / "retrieval_quality_before.json"
    if args.label == "after" and before.exists():
        import json

        lines += table("before", json.loads(before.read_text())["figures"]["before"])
    for variant, figure in figures.items():
        lines += table(variant, figure)
    save(name, {"args": vars(args), "figures": figures}, "\n".join(lines))


if __name__ == "__main__":
    main()

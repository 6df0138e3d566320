"""Who knows what (DESIGN §1.6): does a character's context hold exactly what it can know?

A scripted story with secrets, generated and seeded (the same on every run): six characters in
a manor, each turn one new fact about a character or an object of the manor, seen by some of
those present (or by everyone), and now and then a character telling another what it saw, or
lying to it (the listener then knows the lie, never the truth).  The analysis answers as the
script says (deterministic, no LLM): each event with its witnesses, by the refs the prompt shows.

After each turn, for every character and for the person playing, the context a turn of theirs
would get (``Retriever.retrieve(observer=…)``, every entity in, no budget cut) is checked
against the ground truth ("can O know fact F at turn n?"):

- **leak rate**: facts O cannot know that are in O's context, over all such (fact, O, n);
- **recall**: facts O knows that are in O's context, over all such.

Then what the view costs per turn: the same retrieval with and without an observer, p50/p95 ms,
in a world of 1,000 and of 10,000 entries (each with a note and events in the session).

    python bench/observer_views.py [--turns 60] [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import percentile, save
from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.models import USER, ChatSession, LoreEntry, NoteUpdateTask, SessionNote, World
from loreweave.llm.registry import Providers
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.testing import HashingEmbedder

CHARACTERS = ["Mira", "Tomas", "Ilse", "Bram", "Odile", "Caspar"]
OBJECTS = ["Ledger", "Portrait", "Cellar", "Music Box"]
ENTITY_LINE = re.compile(r"^(E\d+) \| [^|]+ \| (.+?)(?: \(also:.*)?$", re.M)
TURN_TAG = re.compile(r"\[turn (\d+)\]")


@dataclass
class Event:
    entity: str
    fact: str  # "fact-12"
    witnesses: list[str]  # [] public; names, and USER


@dataclass
class Story:
    turns: list[list[Event]] = field(default_factory=list)

    def knows(self, observer: str, fact: str, upto: int) -> bool:
        """Ground truth: the observer learned ``fact`` (saw it, was told, or it was public)
        in turns 0..upto."""
        return any(
            e.fact == fact and (not e.witnesses or observer in e.witnesses)
            for turn in self.turns[: upto + 1]
            for e in turn
        )

    def facts(self, upto: int) -> list[str]:
        return list(dict.fromkeys(e.fact for turn in self.turns[: upto + 1] for e in turn))


def make_story(turns: int, seed: int = 7) -> Story:
    rng = random.Random(seed)
    story = Story()
    seen: list[tuple[str, str, list[str]]] = []  # (entity, fact, witnesses) of secrets
    for n in range(turns):
        present = rng.sample(CHARACTERS, rng.randint(2, 4))
        roll = rng.random()
        if seen and roll < 0.25:  # a witness tells someone who did not see it
            entity, fact, witnesses = rng.choice(seen)
            teller = rng.choice([w for w in witnesses if w != USER] or [CHARACTERS[0]])
            listener = rng.choice([c for c in CHARACTERS if c not in witnesses] or [teller])
            # the same fact, now also known to the listener (an event of this turn)
            story.turns.append([Event(entity, fact, [teller, listener])])
            seen.append((entity, fact, [teller, listener]))
        elif seen and roll < 0.35:  # a lie: the listener hears something false
            entity, _, witnesses = rng.choice(seen)
            liar = rng.choice([w for w in witnesses if w != USER] or [CHARACTERS[0]])
            listener = rng.choice([c for c in CHARACTERS if c != liar])
            story.turns.append([Event(entity, f"fact-{n}l", [liar, listener])])
        else:
            entity = rng.choice(CHARACTERS + OBJECTS)
            public = rng.random() < 0.3
            witnesses = [] if public else rng.sample(present, rng.randint(1, len(present)))
            if not public and rng.random() < 0.3:
                witnesses.append(USER)
            story.turns.append([Event(entity, f"fact-{n}", witnesses)])
            if witnesses:
                seen.append((entity, f"fact-{n}", witnesses))
    return story


class ScriptedAnalyst:
    """Answers each analysis from the story's script (the turn's tag names its events), by the
    refs the prompt shows; a rewrite appends the new events to the note."""

    provider = "scripted-story"

    def __init__(self, story: Story) -> None:
        self.story = story

    def complete(self, request: ChatRequest) -> ChatResponse:
        text = request.messages[-1].content
        if request.prompt == "analysis":
            refs = {title: ref for ref, title in ENTITY_LINE.findall(text)}
            latest = text.split("[Latest Turn]:", 1)[1]
            tag = TURN_TAG.search(latest)
            events = self.story.turns[int(tag.group(1))] if tag else []
            updates = [
                {
                    "lore_entry_id": refs[e.entity],
                    "update_summary": f"{e.fact}: something happened to {e.entity}.",
                    "known_by": [refs.get(w, w) for w in e.witnesses],
                }
                for e in events
                if e.entity in refs
            ]
            return ChatResponse(json.dumps({"updates": updates, "creations": []}), "m")
        if request.prompt == "rewrite":
            note = re.search(r"^\[Current Session Note\]: (.*)$", text, re.M)
            new = re.findall(r"^\[New Event\]: (.*)$", text, re.M) or re.findall(
                r"^\d+\. (.*)$", text, re.M
            )
            old = note.group(1) if note and note.group(1) != "(none yet)" else ""
            return ChatResponse(" | ".join([*([old] if old else []), *new]), "m")
        raise AssertionError(f"unexpected prompt {request.prompt}")


def _app(workdir: Path, model: Any) -> Any:
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'bench.db'}",
        index_dir=workdir / "index",
        retrieval_config={"k": 50, "token_budget": 200_000, "observer_event_chars": 100_000},
        pipeline_config={"rewrite_first_note": True, "ground_updates": False},
        dual_queue_config={"analysis_queue": {"batch_size": 1}},
    )
    return build(settings, providers=Providers(chat=model, embedder=HashingEmbedder(64)))


def accuracy(turns: int) -> dict[str, Any]:
    story = make_story(turns)
    with tempfile.TemporaryDirectory() as tmp:
        lw = _app(Path(tmp), ScriptedAnalyst(story))
        with lw.database.uow() as uow:
            world = uow.worlds.add(World(name="Manor"))
            ids = [
                uow.entries.add(
                    LoreEntry(world_id=world.id, title=t, entity_type=kind, content=f"{t}.")
                ).id
                for kind, titles in (("Character", CHARACTERS), ("Item", OBJECTS))
                for t in titles
            ]
            session = uow.sessions.add(ChatSession(world_id=world.id, title="bench"))
            uow.commit()
        lw.vectors.sync_entries(ids)
        leaks = cannot = known = kept = narrator_leaks = 0
        ms: list[float] = []
        question = "What do we know? " + ", ".join(CHARACTERS + OBJECTS)
        for n in range(turns):
            lw.chat.record(session.id, f"[turn {n}] The evening goes on.", "…")
            lw.pipeline.drain()
            everything = "\n".join(
                e.text for e in lw.retriever.retrieve(session.id, question).entries
            )
            for observer in [*CHARACTERS, USER]:
                started = time.perf_counter()
                found = lw.retriever.retrieve(session.id, question, observer=observer)
                ms.append((time.perf_counter() - started) * 1000)
                context = "\n".join(e.text for e in found.entries)
                for fact in story.facts(n):
                    present = re.search(rf"\b{re.escape(fact)}:", context) is not None
                    if story.knows(observer, fact, n):
                        known += 1
                        kept += present
                    else:
                        cannot += 1
                        leaks += present
                        narrator_leaks += (
                            re.search(rf"\b{re.escape(fact)}:", everything) is not None
                        )
        lw.close()
    return {
        "turns": turns,
        "observers": len(CHARACTERS) + 1,
        "facts": len(story.facts(turns - 1)),
        "checks_cannot_know": cannot,
        "leaks": leaks,
        "leak_rate": leaks / cannot if cannot else 0.0,
        "narrator_leak_rate": narrator_leaks / cannot if cannot else 0.0,
        "checks_known": known,
        "recall": kept / known if known else 1.0,
        "retrieve_ms_p50": percentile(ms, 0.5),
    }


def overhead(size: int, queries: int = 60) -> dict[str, Any]:
    """Retrieval with and without an observer in a world of ``size`` entries, each with a note
    and three events in the session, one of them a secret of a character."""
    rng = random.Random(size)
    with tempfile.TemporaryDirectory() as tmp:
        lw = _app(Path(tmp), ScriptedAnalyst(Story()))

        with lw.database.uow() as uow:
            world = uow.worlds.add(World(name=f"World {size}"))
            session = uow.sessions.add(ChatSession(world_id=world.id, title="bench"))
            entries = [
                LoreEntry(
                    world_id=world.id,
                    title=f"Person {i}",
                    entity_type="Character",
                    content=f"Person {i} is a {rng.choice(['smith', 'sailor', 'bard'])}.",
                )
                for i in range(size)
            ]
            uow.session.add_all(entries)
            uow.session.flush()
            for i, entry in enumerate(entries):
                events = [f"Person {i} did thing {k}." for k in range(3)]
                uow.session.add(
                    SessionNote(
                        session_id=session.id,
                        lore_entry_id=entry.id,
                        note_content=" ".join(events),
                        version=3,
                    )
                )
                for k, summary in enumerate(events):
                    witness = [str(entries[(i + 1) % size].id)] if k == 1 else []
                    uow.session.add(
                        NoteUpdateTask(
                            lore_entry_id=entry.id,
                            session_id=session.id,
                            update_summary=summary,
                            turn_index=k,
                            status="done",
                            applied_version=k + 1,
                            known_by=witness,
                        )
                    )
            uow.commit()
            ids = [e.id for e in entries]
            observer = str(ids[0])
        started = time.perf_counter()
        lw.vectors.sync_entries(ids, session.id)
        synced = time.perf_counter() - started
        figures: dict[str, Any] = {"entries": size, "sync_seconds": round(synced, 1)}
        for label, who in (("narrator", None), ("observer", observer)):
            times = []
            for q in range(queries):
                message = f"What did Person {rng.randrange(size)} do? thing {q % 3}"
                t0 = time.perf_counter()
                lw.retriever.retrieve(session.id, message, k=5, token_budget=2000, observer=who)
                times.append((time.perf_counter() - t0) * 1000)
            times = times[5:]  # the first queries warm the caches
            figures[f"{label}_p50_ms"] = round(percentile(times, 0.5), 2)
            figures[f"{label}_p95_ms"] = round(percentile(times, 0.95), 2)
        lw.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    args = parser.parse_args()
    quality = accuracy(args.turns)
    costs = [overhead(size) for size in args.sizes]
    rows = [
        "| story | facts | (fact, observer, turn) checks it cannot know | leaks | leak rate "
        "| checks it knows | recall | leak rate of the narrator's view (no observer) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {quality['turns']} turns, {quality['observers']} observers | {quality['facts']} "
        f"| {quality['checks_cannot_know']} | {quality['leaks']} | {quality['leak_rate']:.3f} "
        f"| {quality['checks_known']} | {quality['recall']:.3f} "
        f"| {quality['narrator_leak_rate']:.3f} |",
        "",
        "| world | retrieval p50 / p95, narrator | as a character | the view's cost p50 |",
        "|---|---|---|---|",
    ]
    for c in costs:
        rows.append(
            f"| {c['entries']:,} entries | {c['narrator_p50_ms']} / {c['narrator_p95_ms']} ms "
            f"| {c['observer_p50_ms']} / {c['observer_p95_ms']} ms "
            f"| {c['observer_p50_ms'] - c['narrator_p50_ms']:+.2f} ms |"
        )
    save("observer_views", {"quality": quality, "overhead": costs}, "\n".join(rows))


if __name__ == "__main__":
    main()

"""The workload of the mem0 comparison and the stand-in LLM that answers both systems.

The story: a world of 12 entities; each session's turn names two of them, and every fourth turn
a stranger arrives whom the next turn names again.  The stand-in answers each prompt as a
diligent model would, at the length such a model writes: loreweave's by the prompt's name
(``X-Loreweave-Prompt``; batched prompts natively), mem0's extraction by its system prompt.  It
obeys a rewrite prompt's note-length target by keeping the newest sentences of the note; without
a target it keeps every sentence (what an obedient model asked to "maintain existing
information" does), so the effect of the target is measured, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

CHARACTERS = ["Momo", "Kenta", "Aoi", "Rin", "Daichi", "Sora"]
PLACES = ["Shrine", "Harbor", "Forest"]
ITEMS = ["Mirror", "Katana", "Lantern"]
STRANGERS = ["Yuki", "Taro", "Emi", "Jun", "Kaito", "Mei", "Ren", "Hana", "Sho", "Nao"]
VERBS = [
    "argues with",
    "travels with",
    "hides from",
    "trains beside",
    "bargains with",
    "keeps watch over",
    "confides in",
    "searches for",
]


def _pick(*key: object) -> int:
    return int(hashlib.sha256(repr(key).encode()).hexdigest()[:8], 16)


def world() -> list[dict[str, str]]:
    """The lore: (title, type, content) of about 60 words each."""
    entries = []
    for kind, names in (("Character", CHARACTERS), ("Location", PLACES), ("Item", ITEMS)):
        for name in names:
            content = (
                f"{name} is a {kind.lower()} of the old coastal province. "
                f"Stories about {name} speak of long winters, broken oaths and quiet courage. "
                f"Villagers say {name} remembers every promise made near the sea, and that "
                f"those who cross {name} lose their way home. Scholars disagree about "
                f"where {name} first appears in the chronicles, but all agree it was before "
                "the great flood."
            )
            entries.append({"title": name, "entity_type": kind, "content": content})
    return entries


ENTITIES = [*CHARACTERS, *PLACES, *ITEMS]


def turn(session: int, index: int) -> tuple[str, str]:
    """One turn of a session: the user's message and the narrator's reply (about 25 + 90
    words)."""
    a = ENTITIES[_pick(session, index, "a") % len(ENTITIES)]
    b = ENTITIES[(ENTITIES.index(a) + 1 + _pick(session, index, "b") % 11) % len(ENTITIES)]
    verb = VERBS[_pick(session, index, "v") % len(VERBS)]
    user = (
        f"I ask {a} what happened at dawn, and whether {b} can still be trusted after "
        f"everything that was said last night by the fire."
    )
    reply = (
        f"{a} {verb} {b} while the tide rolls in. The air smells of salt and cedar smoke. "
        f"{a} admits that the night was long and that the old promise weighs heavily now. "
        f"{b} says little, but a new resolve shows in every step along the wet stones. "
        f"By the end of the morning, {a} and {b} agree to meet again at the next bell."
    )
    if index % 4 == 2:
        name = STRANGERS[(index // 4) % len(STRANGERS)]
        reply += (
            f" A stranger named {name} steps out of the mist, a traveller with a scarred "
            f"hand and a sealed letter, and asks for {a} by name."
        )
    elif index % 4 == 3:
        name = STRANGERS[(index // 4) % len(STRANGERS)]
        reply += f" {name} of the sealed letter swears to guard {a} until the letter is read."
    return user, reply


# -- what a model notices in a turn -----------------------------------------------------------
_NAMED = re.compile(r"stranger named (\w+)")
_STRANGER = re.compile(r"(\w+) of the sealed letter")


def _events(text: str, known: set[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(updates as (title, summary), creations as (name, summary)) for one turn's text."""
    updates, creations = [], []
    for title in ENTITIES:
        if re.search(rf"\b{title}\b", text) and title in known:
            updates.append(
                (title, f"{title} was seen near the tide at dawn and now carries the old promise.")
            )
    for name in _NAMED.findall(text):
        summary = (
            f"A stranger named {name} appeared out of the mist: a traveller with a scarred hand "
            "and a sealed letter, asking for someone by name."
        )
        if name in known:
            updates.append((name, summary))
        else:
            creations.append((name, summary))
    for name in _STRANGER.findall(text):
        if name in known:
            updates.append((name, f"{name} swore to guard a companion until the letter is read."))
    return updates, creations


# -- loreweave's prompts ------------------------------------------------------------------------
_ENTITY_LINE = re.compile(r"^(E\d+) \| [^|]+ \| ([^(\n]+?)(?: \(also:.*\))?$", re.M)


def _refs(prompt: str) -> dict[str, str]:
    return {title.strip(): ref for ref, title in _ENTITY_LINE.findall(prompt)}


def _prompt(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"])  # a repair request repeats the prompt first


def analysis(body: dict[str, Any]) -> str:
    prompt = _prompt(body)
    refs = _refs(prompt)
    latest = prompt.split("[Latest Turn]:", 1)[1].split("Task:", 1)[0]
    updates, creations = _events(latest, set(refs))
    return json.dumps(
        {
            "updates": [{"lore_entry_id": refs[t], "update_summary": s} for t, s in updates],
            "creations": [
                {"entity_type": "Character", "name": name, "creation_summary": s}
                for name, s in creations
            ],
        }
    )


def analysis_batch(body: dict[str, Any]) -> str:
    prompt = _prompt(body)
    refs = _refs(prompt)
    latest = prompt.split("[Latest Turns]", 1)[1].split("Task:", 1)[0]
    turns = re.split(r"^Turn \d+:\n", latest, flags=re.M)[1:]
    answer: dict[str, Any] = {}
    new: dict[str, str] = {}
    for number, text in enumerate(turns, 1):
        updates, creations = _events(text, set(refs) | set(new))
        part: dict[str, Any] = {}
        if creations:
            part["creations"] = {}
            for name, summary in creations:
                new[name] = f"N{len(new) + 1}"
                part["creations"][new[name]] = {
                    "entity_type": "Character",
                    "name": name,
                    "summary": summary,
                }
        if updates:
            part["updates"] = {refs.get(title) or new[title]: s for title, s in updates}
        answer[str(number)] = part
    return json.dumps({"turns": answer})


_TARGET = re.compile(r"under about (\d+) words")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def _rewritten(note: str, events: list[str], target: int | None) -> str:
    sentences = [*_sentences(note), *events]
    if target:
        kept: list[str] = []
        for sentence in reversed(sentences):  # the newest first, within the target
            if kept and sum(len(s.split()) for s in kept) + len(sentence.split()) > target:
                break
            kept.insert(0, sentence)
        sentences = kept
    return " ".join(sentences)


def _note_and_events(block: str) -> tuple[str, list[str]]:
    current = re.search(r"^\[Current Session Note\]: (.*)$", block, re.M)
    note = current.group(1) if current else ""
    note = "" if note == "(none yet)" else note
    events = re.findall(r"^\[New Event\]: (.*)$", block, re.M) or re.findall(
        r"^\d+\. (.*)$", block, re.M
    )
    return note, events


def _target(prompt: str) -> int | None:
    found = _TARGET.search(prompt)
    return int(found.group(1)) if found else None


def rewrite(body: dict[str, Any]) -> str:
    prompt = _prompt(body)
    return _rewritten(*_note_and_events(prompt), _target(prompt))


def rewrite_batch(body: dict[str, Any]) -> str:
    prompt = _prompt(body)
    blocks = re.split(r"^\[(E\d+)\] \[Entity\]:", prompt.split("\nTask:", 1)[0], flags=re.M)[1:]
    notes = {
        ref: _rewritten(*_note_and_events(block), _target(prompt))
        for ref, block in zip(blocks[::2], blocks[1::2], strict=True)
    }
    return json.dumps({"notes": notes})


def _entry(summary: str) -> dict[str, Any]:
    name = re.search(r"named (\w+)", summary)
    title = name.group(1) if name else "Someone"
    return {
        "title": title,
        "content": (
            f"{title} is a traveller with a scarred hand who carries a sealed letter. {title} "
            "speaks softly, watches doors and exits, and seems to know more about the old "
            "promise than anyone admits. Nobody knows where the letter comes from or who it "
            f"is meant for, and {title} will not say."
        ),
        "tags": ["traveller", "stranger", "letter"],
    }


def creation(body: dict[str, Any]) -> str:
    return json.dumps(_entry(_prompt(body)))


def creation_batch(body: dict[str, Any]) -> str:
    prompt = _prompt(body)
    blocks = re.split(r"^\[(C\d+)\] \[Entity Type\]:", prompt.split("\nTask:", 1)[0], flags=re.M)
    entries = {ref: _entry(block) for ref, block in zip(blocks[1::2], blocks[2::2], strict=True)}
    return json.dumps({"entries": entries})


HANDLERS = {
    "analysis": analysis,
    "analysis.batch": analysis_batch,
    "rewrite": rewrite,
    "rewrite.batch": rewrite_batch,
    "creation": creation,
    "creation.batch": creation_batch,
}
PROMPT_HANDLERS = {**HANDLERS, **{f"{k}.repair": v for k, v in HANDLERS.items()}}


# -- mem0's prompt, and anything unnamed ----------------------------------------------------------
def by_wording(body: dict[str, Any]) -> str:
    """mem0's extraction (by its system prompt); loreweave's prompts by their wording when no
    name came with them (an older loreweave); else a narrator's line."""
    first = _prompt(body)
    if "Memory Extractor" in first:
        user = str(body["messages"][-1]["content"])
        new = user.split("## New Messages", 1)[1].split("## Observation Date", 1)[0]
        existing_text = user.split("## Existing Memories", 1)[1].split("## New Messages", 1)[0]
        try:
            existing = json.loads(existing_text.strip() or "[]")
        except json.JSONDecodeError:
            existing = []
        updates, creations = _events(new, set(ENTITIES) | set(STRANGERS))
        memory = []
        for number, (name, fact) in enumerate([*updates, *creations]):
            item: dict[str, Any] = {"id": str(number), "text": fact}
            # as the prompt asks: link the existing memories about the same entity
            linked = [m["id"] for m in existing if name in str(m.get("text", ""))][:3]
            if linked:
                item["linked_memory_ids"] = linked
            memory.append(item)
        return json.dumps({"memory": memory})
    for opening, handler in (
        ("You are the continuity analyst", analysis),
        ("You are a story continuity editor", rewrite),
        ("You are a world-building assistant", creation),
    ):
        if first.startswith(opening):
            return handler(body)
    return "The story goes on."

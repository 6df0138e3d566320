"""A stand-in LLM that plays a long story and keeps score: its rewrites append the events to the
note, so the final note shows which events were applied, how often and in which order.  It
answers each prompt by its name (``X-Loreweave-Prompt``), batched prompts as a model would:
``FakeProviderServer(**STORY, ...)``."""

from __future__ import annotations

import json
import re
from typing import Any

NAMES = ["Kenta", "Aoi", "Rin"]
_TURN = re.compile(r"\[Latest Turn\]:\nUser: Turn (\d+)")
_BATCH_TURN = re.compile(r"^Turn \d+:\nUser: Turn (\d+)", re.M)
_NOTE = re.compile(r"^\[Current Session Note\]: (.*)$", re.M)
_ONE = re.compile(r"^\[New Event\]: (.*)$", re.M)
_MANY = re.compile(r"^\d+\. (.*)$", re.M)
_ENTITY = re.compile(r"^\[(E\d+)\] \[Entity\]:", re.M)
_CREATION = re.compile(r"^\[(C\d+)\] \[Entity Type\]:", re.M)
SEPARATOR = " | "


def _prompt(body: dict[str, Any]) -> str:
    """The prompt itself (a repair request repeats it first)."""
    return str(body["messages"][0]["content"])


def _turn(turn: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "updates": [{"lore_entry_id": f"E{turn % 4 + 1}", "update_summary": f"event-{turn}"}],
        "creations": [],
    }
    name = newcomer(turn)
    if name is not None:
        result["creations"].append(
            {
                "entity_type": "Character",
                "creation_summary": f"A character named {name} appears at turn {turn}.",
            }
        )
    return result


def analysis(body: dict[str, Any]) -> str:
    return json.dumps(_turn(int(_TURN.search(_prompt(body)).group(1))))  # type: ignore[union-attr]


def analysis_batch(body: dict[str, Any]) -> str:
    turns = [int(t) for t in _BATCH_TURN.findall(_prompt(body))]
    answer: dict[str, Any] = {}
    made = 0
    for number, turn in enumerate(turns, 1):
        single = _turn(turn)
        creations = {}
        for creation in single["creations"]:
            made += 1
            creations[f"N{made}"] = {
                "entity_type": creation["entity_type"],
                "summary": creation["creation_summary"],
            }
        updates = {u["lore_entry_id"]: u["update_summary"] for u in single["updates"]}
        answer[str(number)] = {"updates": updates, "creations": creations}
    return json.dumps({"turns": answer})


def _appended(block: str) -> str:
    current = _NOTE.search(block)
    note = current.group(1) if current else ""
    note = "" if note == "(none yet)" else note
    events = [m.group(1) for m in _ONE.finditer(block)] or [
        m.group(1) for m in _MANY.finditer(block)
    ]
    return SEPARATOR.join([*([note] if note else []), *events])


def rewrite(body: dict[str, Any]) -> str:
    return _appended(_prompt(body))


def _blocks(pattern: re.Pattern[str], prompt: str) -> list[tuple[str, str]]:
    starts = list(pattern.finditer(prompt))
    ends = [m.start() for m in starts[1:]] + [prompt.index("\nTask:")]
    return [(m.group(1), prompt[m.start() : end]) for m, end in zip(starts, ends, strict=True)]


def rewrite_batch(body: dict[str, Any]) -> str:
    notes = [
        {"ref": ref, "note": _appended(block)} for ref, block in _blocks(_ENTITY, _prompt(body))
    ]
    return json.dumps({"notes": notes})


def _entity(summary: str) -> dict[str, Any]:
    name = re.search(r"named (\w+)", summary)
    title = name.group(1) if name else "Someone"
    return {"title": title, "content": f"{title} is a traveller.", "tags": ["traveller"]}


def creation(body: dict[str, Any]) -> str:
    return json.dumps(_entity(_prompt(body)))


def creation_batch(body: dict[str, Any]) -> str:
    entries = {ref: _entity(block) for ref, block in _blocks(_CREATION, _prompt(body))}
    return json.dumps({"entries": entries})


_USER_TURN = re.compile(r"^Turn (\d+)")


def newcomer(turn: int) -> str | None:
    """The character turn ``turn`` introduces (every fifth turn), by name."""
    return NAMES[(turn // 5) % len(NAMES)] if turn % 5 == 0 else None


def story_llm(body: dict[str, Any]) -> str:
    """The narrator (and anything unnamed): it names the newcomer of a turn that has one, so
    what the analysis creates is grounded in the story."""
    users = [str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user"]
    found = _USER_TURN.match(users[-1]) if users else None
    name = newcomer(int(found.group(1))) if found else None
    return f"The story goes on, and {name} arrives." if name else "The story goes on."


HANDLERS = {
    "analysis": analysis,
    "analysis.batch": analysis_batch,
    "rewrite": rewrite,
    "rewrite.batch": rewrite_batch,
    "creation": creation,
    "creation.batch": creation_batch,
}
STORY: dict[str, Any] = {
    "chat_handler": story_llm,
    "prompt_handlers": {
        **HANDLERS,
        **{f"{name}.repair": handler for name, handler in HANDLERS.items()},
    },
}

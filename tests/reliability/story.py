"""A fake LLM that plays a long story and keeps score: its rewrites append the events to the note,
so the final note shows which events were applied, how often and in which order."""

from __future__ import annotations

import json
import re
from typing import Any

NAMES = ["Kenta", "Aoi", "Rin"]
_TURN = re.compile(r"\[Latest Turn\]:\nUser: Turn (\d+)")
_NOTE = re.compile(r"^\[Current Session Note\]: (.*)$", re.M)
_ONE = re.compile(r"^\[New Event\]: (.*)$", re.M)
_MANY = re.compile(r"^\d+\. (.*)$", re.M)
SEPARATOR = " | "


def story_llm(body: dict[str, Any]) -> str:
    prompt = body["messages"][-1]["content"]
    if prompt.startswith("Your previous answer could not be used"):
        prompt = body["messages"][0]["content"]
    if prompt.startswith("You are the continuity analyst"):
        turn = int(_TURN.search(prompt).group(1))  # type: ignore[union-attr]
        result: dict[str, Any] = {
            "updates": [{"lore_entry_id": f"E{turn % 4 + 1}", "update_summary": f"event-{turn}"}],
            "creations": [],
        }
        if turn % 5 == 0:
            name = NAMES[(turn // 5) % len(NAMES)]
            result["creations"].append(
                {
                    "entity_type": "Character",
                    "creation_summary": f"A character named {name} appears at turn {turn}.",
                }
            )
        return json.dumps(result)
    if prompt.startswith("You are a story continuity editor"):
        current = _NOTE.search(prompt)
        note = current.group(1) if current else ""
        note = "" if note == "(none yet)" else note
        events = [m.group(1) for m in _ONE.finditer(prompt)] or [
            m.group(1) for m in _MANY.finditer(prompt)
        ]
        return SEPARATOR.join([*([note] if note else []), *events])
    if prompt.startswith("You are a world-building assistant"):
        name = re.search(r"named (\w+)", prompt)
        title = name.group(1) if name else "Someone"
        return json.dumps(
            {"title": title, "content": f"{title} is a traveller.", "tags": ["traveller"]}
        )
    return "The story goes on."

"""Notes that stay lean: note length and tokens per rewrite over a 100-turn story, with the
rewrite prompt's note-length target (``pipeline_config.note_target_words``, 150 by default) and
without it.

One session plays the stand-in story of bench/vs_mem0.py turn by turn (its memory applied after
each turn).  The stand-in LLM (bench/story_standin.py) keeps every sentence of a note unless the
prompt names a target, then the newest sentences within it — an obedient model; no real model
ran here.  Tokens are the stand-in's (four characters each).

    python bench/note_length.py [--turns 100]

Results: bench/results/note_length.json and .md.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path
from typing import Any

from common import save
from loreweave.bootstrap import build
from loreweave.config import Settings
from loreweave.db.models import ChatSession, LoreEntry, World
from loreweave.llm.registry import Providers
from loreweave.llm.types import ChatRequest, ChatResponse, Usage
from loreweave.testing import HashingEmbedder
from loreweave.testing.fake_provider import count_tokens
from story_standin import PROMPT_HANDLERS, by_wording, turn, world

MILESTONES = (10, 25, 50, 100)


class Standin:
    """The stand-in as an in-process ChatModel, keeping each call's tokens."""

    provider = "standin"

    def __init__(self) -> None:
        # (prompt, tokens in, tokens out, notes it rewrote)
        self.calls: list[tuple[str, int, int, int]] = []

    def complete(self, request: ChatRequest) -> ChatResponse:
        body = {"messages": [{"role": m.role, "content": m.content} for m in request.messages]}
        text = PROMPT_HANDLERS.get(request.prompt, by_wording)(body)
        tokens_in = sum(count_tokens(m.content) for m in request.messages)
        notes = request.messages[0].content.count("] [Entity]:") or 1
        self.calls.append((request.prompt, tokens_in, count_tokens(text), notes))
        return ChatResponse(text, request.model, Usage(tokens_in, count_tokens(text)))


def play(target: int | None, turns: int) -> list[dict[str, Any]]:
    model = Standin()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'notes.db'}",
            index_dir=Path(tmp) / "index",
            pipeline_config={"note_target_words": target},  # type: ignore[arg-type]
            log_level="WARNING",
        )
        lw = build(settings, providers=Providers(chat=model, embedder=HashingEmbedder(64)))
        with lw.database.uow() as uow:
            the_world = uow.worlds.add(World(name=f"notes {uuid.uuid4().hex[:6]}"))
            for entry in world():
                uow.entries.add(LoreEntry(world_id=the_world.id, **entry))
            session_id = uow.sessions.add(ChatSession(world_id=the_world.id, title="long")).id
            uow.commit()
        rows = []
        seen = 0
        for index in range(turns):
            lw.chat.record(session_id, *turn(0, index))
            lw.pipeline.drain()
            if index + 1 in MILESTONES:
                with lw.database.uow(read_only=True) as uow:
                    words = [len(n.note_content.split()) for n in uow.notes.in_session(session_id)]
                window = [c for c in model.calls[seen:] if c[0].startswith("rewrite")]
                seen = len(model.calls)
                rewritten = max(1, sum(c[3] for c in window))
                rows.append(
                    {
                        "turn": index + 1,
                        "notes": len(words),
                        "note_words_mean": sum(words) / len(words),
                        "note_words_max": max(words),
                        "rewrite_calls": len(window),
                        "notes_rewritten": sum(c[3] for c in window),
                        "tokens_in_per_note": sum(c[1] for c in window) / rewritten,
                        "tokens_out_per_note": sum(c[2] for c in window) / rewritten,
                    }
                )
        lw.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    results = {"target 150 words": play(150, args.turns), "no target": play(None, args.turns)}
    lines = [
        "| rewrite prompt | after turn | notes | note words mean / max | rewrite calls (notes) "
        "since the last row | tokens in / out per note rewritten |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        lines += [
            f"| {name} | {r['turn']} | {r['notes']} | {r['note_words_mean']:.0f} / "
            f"{r['note_words_max']} | {r['rewrite_calls']} ({r['notes_rewritten']}) | "
            f"{r['tokens_in_per_note']:.0f} / {r['tokens_out_per_note']:.0f} |"
            for r in rows
        ]
    save("note_length", {"turns": args.turns, "results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()

"""The single note rewrite as plain text (the spec's prompt) or as JSON ``{"note": …}`` with the
note's length bound in the schema: which holds up better on a real small model?

The harbour story's known entities (``bench/model_quality_story.json``) each get their events
one rewrite at a time (an event is the reply of a turn that changes the entity, as a diligent
analysis would summarise it), in both forms, against the same server at temperature 0; every
answer goes through the worker's own checks (``clean_rewrite``: empty, runaway, over the bound,
repeated, a copied placeholder, a stranger's name). Reported per form: usable answers, answers
cut at the token limit, the story's facts kept in the final notes, tokens and seconds a rewrite.

    python bench/rewrite_form.py --smollm2            # starts SmolLM2-135M itself
    python bench/rewrite_form.py --base-url URL --model NAME
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from common import save
from loreweave.config import LLMConfig
from loreweave.errors import InvalidResponse
from loreweave.llm.prompts.rewrite import (
    REWRITE,
    REWRITE_NOTE,
    note_max_chars,
    note_schema,
    rewrite_max_tokens,
)
from loreweave.memory.rewrite import clean_rewrite

STORY = Path(__file__).parent / "model_quality_story.json"
TARGET_WORDS = 60  # "Use a local model"'s note_target_words for a small model


def _ask(client: httpx.Client, url: str, model: str, form: str, context: dict[str, Any]) -> dict:
    """One rewrite as the worker asks it: the spec's plain prompt, or ``rewrite.note`` (the
    ``rewrite_json`` setting) with its schema in llama-cpp-python's form."""
    config = LLMConfig(rewrite_model=model)
    if form == "json":
        schema = note_schema(TARGET_WORDS)
        request = REWRITE_NOTE.request(config, schema=schema, as_json=True, **context)
    else:
        request = REWRITE.request(config, **context)
    body: dict[str, Any] = {
        "model": model,
        "temperature": 0,
        "max_tokens": rewrite_max_tokens(TARGET_WORDS),
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if request.json_schema is not None:
        body["response_format"] = {"type": "json_object", "schema": request.json_schema}
    started = time.perf_counter()
    answer = client.post(f"{url}/chat/completions", json=body, timeout=300).json()
    seconds = time.perf_counter() - started
    choice = answer["choices"][0]
    text = choice["message"]["content"] or ""
    if form == "json":
        try:
            text = str(json.loads(text)["note"])
        except (ValueError, KeyError, TypeError):
            text = ""
    usage = answer.get("usage", {})
    return {
        "text": text,
        "cut": choice.get("finish_reason") == "length",
        "seconds": seconds,
        "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
    }


def run(url: str, model: str, form: str) -> dict[str, Any]:
    story = json.loads(STORY.read_text())
    entries = {e["title"]: e for e in story["entries"]}
    usable = cut = calls = tokens = 0
    seconds = 0.0
    kept = facts = 0
    reasons: dict[str, int] = {}
    with httpx.Client() as client:
        for title, entry in entries.items():
            note = ""
            for turn in story["turns"]:
                if title not in turn["updates"]:
                    continue
                context = {
                    "title": title,
                    "entity_type": entry["entity_type"],
                    "lore_entry_content": entry["content"],
                    "current_session_note": note,
                    "events": [turn["reply"]],
                    "target_words": TARGET_WORDS,
                }
                answer = _ask(client, url, model, form, context)
                calls += 1
                tokens += answer["tokens"]
                seconds += answer["seconds"]
                cut += answer["cut"]
                try:
                    if answer["cut"]:
                        raise InvalidResponse("cut at the token limit")
                    note = clean_rewrite(
                        answer["text"],
                        before=note,
                        lore=entry["content"],
                        events=[turn["reply"]],
                        title=title,
                        entity_type=entry["entity_type"],
                        grounded=True,
                        max_chars=note_max_chars(TARGET_WORDS),
                    )
                    usable += 1
                except InvalidResponse as exc:  # the worker keeps the previous note
                    reason = re.sub(r"\d+", "N", str(exc).split(":")[0])
                    reasons[reason] = reasons.get(reason, 0) + 1
            for fact in story["facts"].get(title, []):
                facts += 1
                kept += fact.lower() in note.lower()
    return {
        "form": form,
        "rewrites": calls,
        "usable": usable,
        "cut": cut,
        "refused_for": reasons,
        "facts_kept": kept,
        "facts": facts,
        "tokens_per_rewrite": round(tokens / calls) if calls else 0,
        "seconds_per_rewrite": round(seconds / calls, 2) if calls else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smollm2", action="store_true")
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="local")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.smollm2:
            from loreweave.testing.small_model import SmallModelServer

            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = stack.enter_context(SmallModelServer(log=folder / "server.log"))
        elif args.base_url:
            url = args.base_url.rstrip("/")
        else:
            parser.error("give --base-url URL (and --model NAME), or --smollm2")
        results = [run(url, args.model, form) for form in ("plain", "json")]
    rows = [
        "| form | rewrites | usable | cut at the limit | refused for | facts kept | "
        "tokens / rewrite | s / rewrite |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        why = ", ".join(f"{k} ×{v}" for k, v in sorted(r["refused_for"].items())) or "—"
        rows.append(
            f"| {r['form']} | {r['rewrites']} | {r['usable']} | {r['cut']} | {why} "
            f"| {r['facts_kept']} of {r['facts']} | {r['tokens_per_rewrite']} "
            f"| {r['seconds_per_rewrite']} |"
        )
    save("rewrite_form", {"results": results}, "\n".join(rows))


if __name__ == "__main__":
    main()

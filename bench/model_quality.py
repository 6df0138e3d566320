"""The memory's quality on a real model: a scripted 30-turn harbour story
(``model_quality_story.json``) with its ground truth — per turn, which known entities change and
which named newcomers appear; per entity, facts its final note must still hold — played through
loreweave (each turn recorded as another app's, then the memory drained) against any
OpenAI-compatible endpoint.

    python bench/model_quality.py --smollm2                      # starts SmolLM2-135M itself
    python bench/model_quality.py --smollm2 --story my_story.json --limits default
    python bench/model_quality.py --base-url http://127.0.0.1:8080/v1 --model local
    python bench/model_quality.py --base-url https://api.mistral.ai/v1 --model mistral-small-latest
    PYTHONPATH=<old checkout>/src python bench/model_quality.py --smollm2 --label before

``--story FILE`` plays any story in the same format (``world``, ``entries``, ``turns`` of
``user``, ``reply``, ``updates``, ``newcomers``; ``facts`` by entity), so a user measures their
own; ``--limits default`` runs the default settings instead of the README's small-model caps;
``--mode lean`` the lean pipeline (``pipeline_config.mode``).

Reported, per prompt kind: answers valid the first time, after the repair, unusable; the seed's
success rates (note updates done; creation jobs done, and apart what they did: created, merged
into an existing entry, rejected); analysis precision and recall of the entities updated per
turn and of the newcomers created (newcomer recall); ids invented; duplicate entities; entities
the story never names; updates of an entity their turn never names; answers copying the prompt
(its examples' phrases or ``<…>`` placeholders); note versions holding a prompt's label ("New
Session Note:", "The note remains unchanged"…); notes repeating a sentence; facts kept in the
final notes; tokens and seconds per turn.

Only APIs every version has are used (``build``, ``chat.record``, ``pipeline.drain``, the
models), settings an older version lacks are left out, so the same script measures an older
checkout (its prompts, its JSON mode) against this one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import select

from common import save
from loreweave.bootstrap import build
from loreweave.config import PipelineConfig, ProviderConfig, Settings
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    SessionNote,
    SessionNoteRevision,
    World,
)
from loreweave.db.repositories import visible_in
from loreweave.llm.prompts import spec
from loreweave.llm.registry import build_providers
from loreweave.llm.structured import extract_json
from loreweave.llm.types import ChatRequest, ChatResponse
from loreweave.testing import HashingEmbedder

STORY = Path(__file__).with_name("model_quality_story.json")
STRUCTURED = ("analysis", "analysis.batch", "creation", "creation.batch", "rewrite.batch")
# the spec's example content, which the prompts quoted before they showed placeholders
EXAMPLE_PHRASES = ("kenta", "magical ability", "demon hunter", "katana", "momo")
PLACEHOLDER = re.compile(r"<[^<>\n]{6,}>|^\s*<", re.M)
# what SmolLM2 saved into notes of the rewrite prompt's labels and chatter (issue 42); fixed
# here, so that an older checkout is measured by the same list
PROMPT_LABELS = re.compile(
    r"\[?(?:New Session Note|Session Note|Current Session Note|New Events?|Original Lore"
    r"(?: \(Static\))?|Entity)\]?\s*:|the note remains unchanged|I(?:'ve| have) added",
    re.IGNORECASE,
)
WORD = re.compile(r"\w+")
FILLER = {"the", "a", "an", "of", "s"}
SMALL_MODEL_LIMITS = {
    "max_updates_per_turn": 4,
    "max_creations_per_turn": 2,
    "max_summary_chars": 300,
    "max_entry_chars": 600,
    "note_target_words": 60,
}


def names(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in FILLER}


def same_entity(a: str, b: str) -> bool:
    """One name is the other, or holds it ("Corwin" and "Corwin Hale")."""
    x, y = names(a), names(b)
    return bool(x) and bool(y) and (x <= y or y <= x)


def repeats_a_sentence(note: str) -> bool:
    seen: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+", note):
        key = " ".join(WORD.findall(sentence.lower()))
        if len(key.split()) >= 3 and key in seen:
            return True
        seen.add(key)
    return False


class Recorder:
    """The chat model, each call and its answer kept."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.calls: list[tuple[ChatRequest, ChatResponse]] = []

    def complete(self, request: ChatRequest) -> ChatResponse:
        response = self.inner.complete(request)
        self.calls.append((request, response))
        return response


def _valid(prompt: str, response: ChatResponse) -> bool:
    if getattr(response, "finish_reason", None) == "length":
        return False
    model = spec(prompt).response
    try:
        assert model is not None
        answer = extract_json(response.text)
        if prompt == "creation" and isinstance(answer, dict) and "title" not in answer:
            answer = {"title": "(named by its analysis)", **answer}  # content and tags asked
        model.model_validate(answer)
    except Exception:
        return False
    return True


def _settings(args: argparse.Namespace, url: str, folder: Path) -> Settings:
    """This version's settings for the run; fields an older version lacks are left out."""
    limits = SMALL_MODEL_LIMITS if args.limits == "small" else {}
    pipeline = {k: v for k, v in limits.items() if k in PipelineConfig.model_fields}
    if args.mode != "full":  # an older version has no lean mode: run it only when asked
        pipeline["mode"] = args.mode
    if args.no_grounding:
        for check in ("ground_creations", "ground_updates", "ground_notes"):
            if check in PipelineConfig.model_fields:
                pipeline[check] = False
    provider: dict[str, Any] = {"calls_in_flight": 1, "timeout": 300, "max_attempts": 2}
    if "structured_output" in ProviderConfig.model_fields:
        provider["structured_output"] = args.structured
    model = args.model
    return Settings(
        database_url=f"sqlite:///{folder / 'quality.db'}",
        index_dir=folder / "index",
        llm_provider="openai",
        openai_base_url=url,
        llm_config={
            "analysis_model": model,
            "rewrite_model": model,
            "creation_model": model,
            "chat_model": model,
            "temperature_analysis": 0,
            "temperature_rewrite": 0,
            "temperature_creation": 0,
        },
        provider_config=provider,
        pipeline_config=pipeline,
        # a failed attempt is retried at once (by default a minute later): the run measures
        # what the retries give, not how long they wait
        dual_queue_config={
            "analysis_queue": {"batch_size": args.batch_size, "retry_delay": 0.2},
            "note_update_queue": {
                "entities_per_call": args.entities_per_call,
                "retry_delay": 0.2,
            },
            "entity_creation_queue": {"retry_delay": 0.2},
        },
    )


def _waiting(lw: Any) -> int:
    with lw.database.uow(read_only=True) as uow:
        return sum(
            len(
                uow.session.scalars(
                    select(column).where(column.in_(["pending", "processing"]))
                ).all()
            )
            for column in (
                NoteUpdateTask.status,
                EntityCreationTask.status,
                ChatTurn.processing_status,
            )
        )


def settle(lw: Any, still: float = 5.0) -> None:
    """Drain, and again while retries wait, until nothing is pending, or nothing has moved for
    ``still`` seconds (work blocked behind a job that failed for good)."""
    last, since = -1, time.monotonic()
    while True:
        lw.pipeline.drain()
        waiting = _waiting(lw)
        if waiting != last:
            last, since = waiting, time.monotonic()
        if not waiting or time.monotonic() - since > still:
            return
        time.sleep(0.3)


def play(args: argparse.Namespace, url: str, folder: Path) -> dict[str, Any]:
    story = json.loads(Path(args.story).read_text())
    turns = story["turns"][: args.turns]
    settings = _settings(args, url, folder)
    providers = build_providers(settings)
    recorder = Recorder(providers.chat)
    providers.chat = recorder
    providers.embedder = HashingEmbedder(64)  # retrieval is not what is measured here
    lw = build(settings, providers=providers)
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name=story["world"]["name"]))
        for entry in story["entries"]:
            uow.entries.add(LoreEntry(world_id=world.id, **{"aliases": [], **entry}))
        session = uow.sessions.add(ChatSession(world_id=world.id))
        uow.commit()
        session_id = session.id
    started = time.perf_counter()
    for number, turn in enumerate(turns, 1):
        lw.chat.record(session_id, turn["user"], turn["reply"])
        settle(lw)
        print(f"turn {number}/{len(turns)}: {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    figures = measure(lw, session_id, story, turns, recorder)
    figures["seconds_per_turn"] = round(seconds / len(turns), 1)
    lw.close()
    return figures


def _kinds(recorder: Recorder) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for request, response in recorder.calls:
        base = request.prompt.removesuffix(".repair")
        if base not in STRUCTURED:
            continue
        row = kinds.setdefault(base, {"calls": 0, "first_try": 0, "after_repair": 0, "unusable": 0})
        valid = _valid(base, response)
        if request.prompt.endswith(".repair"):
            row["after_repair" if valid else "unusable"] += 1
        else:
            row["calls"] += 1
            row["first_try"] += int(valid)
    return kinds


def _prf(predicted: set[tuple[int, str]], truth: set[tuple[int, str]]) -> tuple[float, float]:
    hit = {p for p in predicted if any(p[0] == t[0] and same_entity(p[1], t[1]) for t in truth)}
    found = {t for t in truth if any(p[0] == t[0] and same_entity(p[1], t[1]) for p in predicted)}
    precision = len(hit) / len(predicted) if predicted else 1.0
    recall = len(found) / len(truth) if truth else 1.0
    return round(precision, 2), round(recall, 2)


def measure(
    lw: Any,
    session_id: Any,
    story: dict[str, Any],
    turns: list[dict[str, Any]],
    recorder: Recorder,
) -> dict[str, Any]:
    said = "\n".join(f"{t['user']}\n{t['reply']}" for t in turns)
    newcomers = {name for t in turns for name in t.get("newcomers", [])}
    with lw.database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        tasks = uow.session.scalars(
            select(NoteUpdateTask).where(NoteUpdateTask.session_id == session_id)
        ).all()
        creations = uow.session.scalars(
            select(EntityCreationTask).where(EntityCreationTask.session_id == session_id)
        ).all()
        analysed = uow.session.scalars(
            select(ChatTurn).where(ChatTurn.session_id == session_id)
        ).all()
        visible = uow.session.scalars(select(LoreEntry).where(visible_in(session))).all()
        title = {e.id: e.title for e in visible}
        updated = {(t.turn_index, title.get(t.lore_entry_id, "?")) for t in tasks}
        created = [e for e in visible if e.is_dynamically_generated]
        notes = {
            title.get(n.lore_entry_id, "?"): n.note_content
            for n in uow.notes.in_session(session_id)
        }
        errors = "\n".join(t.processing_errors or "" for t in analysed)
        aliases = {e.id: " ".join([e.title, *(e.aliases or [])]) for e in visible}
        versions = [n.note_content for n in uow.notes.in_session(session_id)]
        versions += uow.session.scalars(
            select(SessionNoteRevision.note_content)
            .join(SessionNote, SessionNote.id == SessionNoteRevision.note_id)
            .where(SessionNote.session_id == session_id)
        ).all()
    said_at = {t.turn_index: f"{t.user_message}\n{t.assistant_message}" for t in analysed}
    wrong_entity = sum(
        1
        for t in tasks
        if not names(aliases.get(t.lore_entry_id, "")) & names(said_at[t.turn_index])
    )
    truth_updates = {(i, name) for i, t in enumerate(turns) for name in t.get("updates", [])}
    truth_new = {(0, name) for name in newcomers}
    made = {(0, e.title) for e in created}
    answers = [
        response.text
        for request, response in recorder.calls
        if request.prompt.removesuffix(".repair") in (*STRUCTURED, "rewrite")
    ]
    facts = [
        any(same_entity(entity, held) and fact in note.lower() for held, note in notes.items())
        for entity, wanted in story.get("facts", {}).items()
        if entity not in newcomers or any(same_entity(entity, e.title) for e in created)
        for fact in wanted
    ]
    all_facts = sum(len(wanted) for wanted in story.get("facts", {}).values())
    stats = lw.providers.stats.snapshot()
    tokens = sum(n for (_, _, what), n in stats.items() if what.endswith("_tokens"))
    titles = [" ".join(sorted(names(e.title))) for e in visible]
    return {
        "kinds": _kinds(recorder),
        "note_updates_done": _rate([t.status for t in tasks]),
        "creations_done": _rate([c.status for c in creations]),
        "creation_outcomes": {
            outcome: sum(1 for c in creations if c.outcome == outcome)
            for outcome in ("created", "merged", "rejected")
        },
        "wrong_entity_updates": f"{wrong_entity}/{len(tasks)}",
        "note_versions_with_labels": (
            f"{sum(1 for v in versions if PROMPT_LABELS.search(v))}/{len(versions)}"
        ),
        "updates_precision_recall": _prf(updated, truth_updates),
        "creations_precision_recall": _prf(made, truth_new),
        "newcomers": sorted(newcomers),
        "created": sorted(e.title for e in created),
        "ids_invented": errors.count("unknown entity"),
        "duplicates": len(titles) - len(set(titles)),
        "never_named": sum(1 for e in created if not names(e.title) <= names(said)),
        "rejected_by_grounding": sum(1 for c in creations if c.outcome == "rejected"),
        "rejections": [c.error_message for c in creations if c.outcome == "rejected"],
        "copied_from_prompt": sum(
            1
            for text in answers
            if PLACEHOLDER.search(text) or any(p in text.lower() for p in EXAMPLE_PHRASES)
        ),
        "answers": len(answers),
        "notes_repeating": sum(1 for note in notes.values() if repeats_a_sentence(note)),
        "notes": len(notes),
        "facts_kept": f"{sum(facts)}/{all_facts}",
        "tokens_per_turn": round(tokens / len(turns)),
    }


def _rate(statuses: list[str]) -> str:
    done = statuses.count("done")
    return f"{done}/{len(statuses)}" if statuses else "0/0"


def table(label: str, f: dict[str, Any]) -> str:
    rows = [
        "| prompt | calls | valid first try | after repair | unusable |",
        "|---|---|---|---|---|",
        *(
            f"| {kind} | {r['calls']} | {r['first_try']} | {r['after_repair']} | {r['unusable']} |"
            for kind, r in sorted(f["kinds"].items())
        ),
        "",
        "| figure | value |",
        "|---|---|",
        f"| note updates done | {f['note_updates_done']} |",
        f"| creation jobs done | {f['creations_done']} |",
        "| creations: created / merged / rejected | "
        + " / ".join(str(f["creation_outcomes"][k]) for k in ("created", "merged", "rejected"))
        + " |",
        f"| updates of an entity their turn never names | {f['wrong_entity_updates']} |",
        f"| note versions holding a prompt's label | {f['note_versions_with_labels']} |",
        f"| updated entities: precision / recall | {f['updates_precision_recall'][0]} / {f['updates_precision_recall'][1]} |",
        f"| newcomers created: precision / recall (newcomer recall) | {f['creations_precision_recall'][0]} / {f['creations_precision_recall'][1]} |",
        f"| newcomers the story names | {', '.join(f['newcomers'])} |",
        f"| entries created | {', '.join(f['created']) or '(none)'} |",
        f"| ids invented | {f['ids_invented']} |",
        f"| duplicate entities | {f['duplicates']} |",
        f"| entries the story never names | {f['never_named']} |",
        f"| creations rejected by grounding | {f['rejected_by_grounding']} |",
        f"| answers copying the prompt | {f['copied_from_prompt']} of {f['answers']} |",
        f"| notes repeating a sentence | {f['notes_repeating']} of {f['notes']} |",
        f"| facts kept in the final notes | {f['facts_kept']} |",
        f"| tokens per turn (in + out) | {f['tokens_per_turn']} |",
        f"| seconds per turn | {f['seconds_per_turn']} |",
    ]
    return f"**{label}**\n\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint, /v1 included")
    parser.add_argument("--model", default="local")
    parser.add_argument("--smollm2", action="store_true", help="start SmolLM2-135M locally")
    parser.add_argument("--structured", default="auto", help="provider_config.structured_output")
    parser.add_argument("--no-grounding", action="store_true", help="grounding checks off")
    parser.add_argument("--batch-size", type=int, default=1, help="turns one analysis may cover")
    parser.add_argument(
        "--entities-per-call", type=int, default=1, help="notes one rewrite may cover"
    )
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--story", default=str(STORY), help="a story in the shipped format")
    parser.add_argument(
        "--limits", choices=("small", "default"), default="small", help="the caps of the run"
    )
    parser.add_argument("--label", default="after")
    parser.add_argument(
        "--mode", choices=("full", "lean"), default="full", help="pipeline_config.mode"
    )
    args = parser.parse_args()
    if not args.smollm2 and not args.base_url:
        parser.error("give --base-url URL (and --model NAME), or --smollm2")
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = args.base_url
        if args.smollm2:
            from loreweave.testing.small_model import SmallModelServer

            url = stack.enter_context(SmallModelServer(log=folder / "server.log"))
            args.model = "SmolLM2-135M-Instruct"
        figures = play(args, url, folder)
    label = (
        f"{args.label}: {args.model}, structured_output={args.structured}, "
        f"{args.limits} limits, {args.mode} pipeline, {Path(args.story).name}, "
        f"{args.turns} turns" + (", grounding off" if args.no_grounding else "")
    )
    save(f"model_quality_{args.label}", {"args": vars(args), **figures}, table(label, figures))


if __name__ == "__main__":
    sys.exit(main())

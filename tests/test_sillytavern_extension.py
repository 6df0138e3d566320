"""The SillyTavern extension (``integrations/sillytavern/``) against a live loreweave.

A chat is played through the proxy as SillyTavern sends it; then

- ``POST /api/sessions/lookup`` finds the session that follows the chat SillyTavern shows (its
  messages only), for the same caller only;
- the extension, loaded in headless Chromium on a page that provides the part of SillyTavern's
  ``getContext()`` it uses, shows that session, its notes and what the character knows, and
  ``/lw-notes`` prints a note into the chat.  The panel's screenshot is kept in
  tests/artifacts/ (README's is docs/sillytavern-panel.png)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loreweave.bootstrap import Loreweave
from loreweave.db import Database
from loreweave.db.models import LoreEntry, World

from .pipeline_support import StoryUpstream, make_app, wait_until_idle
from .private_services import serving
from .test_ui import ARTIFACTS, CHROMIUM, FLAGS, need_chromium

EXTENSION = Path(__file__).parent.parent / "integrations" / "sillytavern"
KEY = "sk-st-extension"
GREETING = "Mira waits by the lighthouse door."
SAID = ("We climb to the lighthouse lamp.", "Mira, light the lamp.")


@pytest.fixture
def played(database: Database, tmp_path: Path) -> Iterator[tuple[str, Loreweave, list[Any]]]:
    """A live loreweave and a 1:1 chat with Mira played through its proxy: (its URL, the app,
    the chat as SillyTavern holds it)."""
    upstream = StoryUpstream("Lighthouse")
    lw = make_app(database, tmp_path, upstream, api_keys=[KEY])
    with lw.database.uow() as uow:
        world = uow.worlds.add(World(name="Harbour"))
        ids = [
            uow.entries.add(LoreEntry(world_id=world.id, title=t, content=c, entity_type=k)).id
            for t, c, k in [
                ("Mira", "The lighthouse keeper.", "Character"),
                ("Lighthouse", "A lighthouse on the cliffs whose lamp never goes out.", "Location"),
            ]
        ]
        uow.commit()
    lw.vectors.sync_entries(ids)
    chat: list[Any] = [{"name": "Mira", "is_user": False, "is_system": False, "mes": GREETING}]
    with serving(lw) as url:
        auth = {"Authorization": f"Bearer {KEY}"}
        for text in SAID:
            chat.append({"name": "Kenta", "is_user": True, "is_system": False, "mes": text})
            body = {
                "model": "loreweave/Harbour",
                "messages": [
                    {"role": "system", "content": "Write Mira's next reply."},
                    {"role": "system", "content": "[Start a new Chat]"},
                    *(shown(m) for m in chat),
                ],
            }
            answer = httpx.post(f"{url}v1/chat/completions", json=body, headers=auth, timeout=30)
            assert answer.status_code == 200, answer.text
            reply = answer.json()["choices"][0]["message"]["content"]
            chat.append({"name": "Mira", "is_user": False, "is_system": False, "mes": reply})
        wait_until_idle(lw.database)
        yield url, lw, chat


def shown(message: dict[str, Any]) -> dict[str, str]:
    return {"role": "user" if message["is_user"] else "assistant", "content": message["mes"]}


def test_the_session_following_a_chat_is_found_by_its_messages(
    played: tuple[str, Loreweave, list[Any]],
) -> None:
    url, lw, chat = played
    auth = {"Authorization": f"Bearer {KEY}"}
    messages = [shown(m) for m in chat]
    found = httpx.post(f"{url}api/sessions/lookup", json={"messages": messages}, headers=auth)
    assert found.status_code == 200, found.text
    with lw.database.uow(read_only=True) as uow:
        [session] = [s for s in uow.sessions.in_world(uuid.UUID(found.json()["world_id"]))]
    assert found.json()["session_id"] == str(session.id)
    # the chat shown a turn short (a reply deleted) is still that session's
    short = httpx.post(f"{url}api/sessions/lookup", json={"messages": messages[:-1]}, headers=auth)
    assert short.json()["session_id"] == str(session.id)
    # another caller (the OpenAI ``user``) has no such chat; a chat never played has none
    other = {"messages": messages, "user": "someone else"}
    assert httpx.post(f"{url}api/sessions/lookup", json=other, headers=auth).status_code == 404
    unknown = {"messages": [{"role": "user", "content": "Never said."}]}
    missing = httpx.post(f"{url}api/sessions/lookup", json=unknown, headers=auth)
    assert missing.status_code == 404 and "following these messages" in missing.text
    bad = httpx.post(f"{url}api/sessions/lookup", json={"messages": []}, headers=auth)
    assert bad.status_code == 422
    assert httpx.post(f"{url}api/sessions/lookup", json={"messages": messages}).status_code == 401


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="style.css">
<style>/* a little of SillyTavern's dark theme */
  body { background: #1e1e24; color: #ddd; font: 14px sans-serif; width: 420px; padding: 8px; }
  .menu_button { background: #2b2b33; color: #ddd; border: 1px solid #555; border-radius: 5px;
    padding: 4px 10px; cursor: pointer; }
  .text_pole { box-sizing: border-box; width: 100%; background: #111; color: #ddd;
    border: 1px solid #555; border-radius: 5px; padding: 5px; }
  .inline-drawer-header { display: flex; align-items: center; font-size: 16px; }
  a { color: #8ab4f8; }
</style>
</head><body>
<div id="extensions_settings2"></div>
<script>
  const listeners = {};
  window.sent = [];
  window.commands = {};
  window.stContext = {
    chat: __CHAT__,
    characters: [{ name: "Mira" }], characterId: 0, groupId: null, name1: "Kenta", name2: "Mira",
    extensionSettings: { loreweave: { url: location.origin, apiKey: "__KEY__" } },
    saveSettingsDebounced() {},
    eventSource: { on(type, listener) { (listeners[type] ||= []).push(listener); } },
    eventTypes: { CHAT_CHANGED: "chat_id_changed", MESSAGE_RECEIVED: "message_received" },
    sendSystemMessage(type, text) { window.sent.push([type, text]); },
    SlashCommand: { fromProps(props) { return props; } },
    SlashCommandParser: { addCommandObject(command) { window.commands[command.name] = command; } },
  };
  window.SillyTavern = { getContext: () => window.stContext };
  window.emit = (type) => (listeners[type] || []).forEach((listener) => listener());
</script>
<script type="module" src="index.js"></script>
</body></html>"""


def test_the_panel_shows_the_chat_s_memory_and_lw_notes_prints_a_note(
    played: tuple[str, Loreweave, list[Any]],
) -> None:
    need_chromium()
    from playwright.sync_api import Route, expect, sync_playwright

    url, _, chat = played
    page_html = PAGE.replace("__CHAT__", json.dumps(chat)).replace("__KEY__", KEY)

    def extension(route: Route) -> None:  # the page and the extension's files, at /st/
        name = route.request.url.split("/st/", 1)[1]
        if name == "page.html":
            route.fulfill(body=page_html, content_type="text/html")
            return
        path = (EXTENSION / name).resolve()
        assert path.is_relative_to(EXTENSION.resolve()) and path.is_file(), name
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        route.fulfill(body=path.read_text(), content_type=kind)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route(f"{url}st/**", extension)
        page.goto(f"{url}st/page.html")
        panel = page.locator("#loreweave_settings")
        expect(panel.locator(".lw-status-text")).to_have_text("connected", timeout=15_000)
        expect(panel.locator(".lw-session")).to_contain_text("chat: We climb to the lighthouse")
        expect(panel.locator(".lw-note").first).to_contain_text("Lighthouse")
        expect(panel.locator("h4", has_text="Seen as Mira")).to_be_visible()
        assert panel.locator(".lw-link").get_attribute("href").startswith(f"{url}#session=")
        assert page.locator("#lw_url").input_value() == url.rstrip("/")

        page.evaluate("window.commands['lw-notes'].callback({}, 'lighthouse')")
        page.wait_for_function("window.sent.length === 1")
        [[kind, text]] = page.evaluate("window.sent")
        assert kind == "generic" and text.startswith("**Lighthouse** (loreweave, v")

        # a chat loreweave does not follow: the dot says so; back to the chat: followed again
        page.evaluate(
            "window.stContext.chat = [{is_user: true, is_system: false, mes: 'Elsewhere.'}];"
            "window.emit('chat_id_changed')"
        )
        expect(panel.locator(".lw-dot.lw-waiting")).to_have_count(2)  # header and status
        page.evaluate(f"window.stContext.chat = {json.dumps(chat)}")
        page.evaluate("window.emit('message_received')")
        expect(panel.locator(".lw-dot.lw-ok")).to_have_count(2)

        # the floating drawer shows the same
        page.click("#lw_float")
        expect(page.locator("#loreweave_drawer .lw-note").first).to_contain_text("Lighthouse")
        page.click("#lw_close")
        expect(page.locator("#loreweave_drawer")).to_be_hidden()

        # in review, the last turn's proposed change is approved from the panel (the turn
        # changes contract of the steer-the-memory issue, answered here as it specifies)
        decided: list[str] = []
        proposed = {
            "turn": 1,
            "state": "done",
            "changes": [
                {
                    "id": "c-1",
                    "kind": "note_update",
                    "entry_id": "e-1",
                    "title": "Lighthouse",
                    "before": "",
                    "after": "Mira lit the lamp.",
                    "status": "proposed",
                    "reason": None,
                    "known_by": ["Mira"],
                }
            ],
        }
        page.route(
            f"{url}api/sessions/*/turns/*/changes",
            lambda route: route.fulfill(json=proposed),
        )

        def approve(route: Route) -> None:
            decided.append(route.request.url.rsplit("/", 2)[-2])
            proposed["changes"][0]["status"] = "applied"  # type: ignore[index]
            route.fulfill(json={})

        page.route(f"{url}api/sessions/*/changes/*/approve", approve)
        page.evaluate("window.emit('message_received')")
        button = panel.locator(".lw-approve")
        expect(button).to_have_count(1)
        expect(panel.locator(".lw-change")).to_contain_text("known by Mira")
        ARTIFACTS.mkdir(exist_ok=True)
        panel.screenshot(path=str(ARTIFACTS / "sillytavern-panel.png"))
        button.click()
        expect(panel.locator(".lw-change.lw-applied")).to_have_count(1)
        assert decided == ["c-1"]
        expect(panel.locator(".lw-approve")).to_have_count(0)
        browser.close()
    assert errors == []

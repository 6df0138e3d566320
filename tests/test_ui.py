"""The browser UI in headless Chromium (Debian's), driven by Playwright, against a real server:
create a world → add an entry → play turns → the note appears live → roll it back.
Screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel

from .pipeline_support import AppendingRewriter, RoutedModel, make_app
from .private_services import serving
from .test_order_property import Creator
from .test_replay_property import Analyst, Narrator

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    need_chromium()
    database = Database(f"sqlite:///{tmp_path / 'ui.db'}")
    model = ScriptedChatModel()
    model.add("The bell rings out over the hill.", prompt="chat", repeat=True)
    model.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo rang the bell."}]},
        prompt="analysis",
        contains=["Latest Turn]:\nUser: first"],
    )
    model.add(
        {"updates": [{"lore_entry_id": "E1", "update_summary": "Momo cracked the bell."}]},
        prompt="analysis",
        contains=["Latest Turn]:\nUser: second"],
    )
    model.add(
        "Momo can ring the bell with her mind.",
        prompt="rewrite",
        contains=["[New Event]: Momo rang"],
    )
    model.add(
        "Momo rang the bell so hard with her mind that it cracked.",
        prompt="rewrite",
        contains=["[New Event]: Momo cracked"],
    )
    # the third turn's analysis is refused once (a 400: failed at once), then answers
    model.add(prompt="analysis", error="rejected", contains=["Latest Turn]:\nUser: third"])
    model.add({"updates": []}, prompt="analysis", contains=["Latest Turn]:\nUser: third"])
    lw = make_app(
        database,
        tmp_path,
        model,
        pipeline_config={"poll_interval": 0.05},
        alert_config={"interval": 0.3},
    )
    with serving(lw) as url:
        yield url


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium must be installed under CI=true")
        pytest.skip("chromium not installed")


def test_world_entry_turns_live_note_and_rollback(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(server)
        page.get_by_test_id("new-world-name").fill("Eldoria")
        page.get_by_test_id("create-world").click()
        expect(page.get_by_test_id("world-select")).to_contain_text("Eldoria")

        page.get_by_test_id("entry-title").fill("Momo")
        page.get_by_test_id("entry-content").fill("Momo is a psychic schoolgirl.")
        page.get_by_test_id("save-entry").click()
        expect(page.get_by_test_id("entry-list")).to_contain_text("Momo")
        page.screenshot(path=str(ARTIFACTS / "ui-1-lore.png"))

        page.get_by_role("button", name="Session", exact=True).click()
        page.get_by_test_id("new-session").click()
        page.get_by_test_id("message").fill("first: Momo rings the bell")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("turns")).to_contain_text("The bell rings out over the hill.")
        expect(page.get_by_test_id("notes")).to_contain_text(
            "Momo can ring the bell with her mind.", timeout=20_000
        )

        page.get_by_test_id("message").fill("second: she strikes harder")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("notes")).to_contain_text("it cracked", timeout=20_000)
        expect(page.get_by_test_id("turns")).to_contain_text("entities used: Momo")
        page.screenshot(path=str(ARTIFACTS / "ui-2-session.png"))

        page.get_by_test_id("note").first.click()
        expect(page.get_by_test_id("history")).to_contain_text("v1")
        expect(page.locator("#history-list ins").first).to_be_visible()  # the diff
        page.screenshot(path=str(ARTIFACTS / "ui-3-history.png"))
        page.get_by_test_id("rollback-1").click()
        expect(page.get_by_test_id("notes")).to_contain_text("v3")
        expect(page.get_by_test_id("notes")).to_contain_text(
            "Momo can ring the bell with her mind."
        )

        page.get_by_test_id("message").fill("third: the bell falls silent")
        page.get_by_test_id("send").click()
        expect(page.get_by_test_id("turns")).to_contain_text("third: the bell falls silent")

        page.get_by_role("button", name="Queues", exact=True).click()
        expect(page.get_by_test_id("note_updates-done")).to_have_text("2")
        failed = page.get_by_test_id("failed")
        expect(failed).to_contain_text("analysis (turn 2)", timeout=20_000)
        expect(failed).to_contain_text("400")
        expect(failed.get_by_role("button", name="Skip")).to_be_visible()
        expect(page.get_by_test_id("alert")).to_contain_text("job_failed:analysis", timeout=20_000)
        expect(page.locator("#chart-done canvas")).to_be_visible()
        expect(page.locator("#chart-backlog .u-legend")).to_contain_text("note updates")
        page.screenshot(path=str(ARTIFACTS / "ui-4-queues.png"), full_page=True)
        failed.get_by_role("button", name="Retry").click()
        expect(page.get_by_test_id("analysis-done")).to_have_text("3", timeout=20_000)
        expect(failed).not_to_contain_text("analysis (turn 2)")
        browser.close()


def test_turns_deleted_regenerated_swapped_and_forked(tmp_path: Path) -> None:
    """The transcript's controls on each turn, and what each did to the memory."""
    from playwright.sync_api import expect, sync_playwright

    need_chromium()
    database = Database(f"sqlite:///{tmp_path / 'ui.db'}")
    model = RoutedModel(
        chat=Narrator(), analysis=Analyst(), creation=Creator(), rewrite=AppendingRewriter()
    )
    lw = make_app(database, tmp_path, model, pipeline_config={"poll_interval": 0.05})
    ARTIFACTS.mkdir(exist_ok=True)
    with serving(lw) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(url)
        page.get_by_test_id("new-world-name").fill("Eldoria")
        page.get_by_test_id("create-world").click()
        expect(page.get_by_test_id("world-select")).to_contain_text("Eldoria")
        for name in ("Ann", "Bo"):
            page.locator("#entry-new").click()  # the form stays on the entry it saved
            page.get_by_test_id("entry-title").fill(name)
            page.get_by_test_id("entry-content").fill(f"{name} lives here.")
            page.get_by_test_id("save-entry").click()
            expect(page.get_by_test_id("entry-list")).to_contain_text(name)
        page.get_by_role("button", name="Session", exact=True).click()
        page.get_by_test_id("new-session").click()
        notes, turns = page.get_by_test_id("notes"), page.get_by_test_id("turns")
        for message in ("#0 u=Ann new=Dee", "#1 u=Bo new="):
            page.get_by_test_id("message").fill(message)
            page.get_by_test_id("send").click()
            expect(turns).to_contain_text(message)
        expect(notes).to_contain_text("1-Bo", timeout=20_000)
        expect(page.get_by_test_id("changes-0")).to_contain_text("created Dee", timeout=20_000)

        page.get_by_test_id("regenerate-1").click()
        expect(page.get_by_test_id("transcript-status")).to_contain_text("Regenerated turn 1")
        expect(page.get_by_test_id("alternatives-1")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "ui-5-regenerated.png"))

        page.get_by_test_id("delete-1").click()
        status = page.get_by_test_id("transcript-status")
        expect(status).to_contain_text("Deleted from turn 1")
        expect(status).to_contain_text("Bo's note removed")
        expect(turns).not_to_contain_text("#1 u=Bo")
        expect(notes).not_to_contain_text("1-Bo")
        page.screenshot(path=str(ARTIFACTS / "ui-6-deleted.png"))

        page.get_by_test_id("fork-0").click()
        expect(status).to_contain_text("Forked at turn 0")
        expect(page.get_by_test_id("session-select")).to_contain_text("fork at turn 0")
        expect(notes).to_contain_text("0-Ann", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "ui-7-forked.png"))
        browser.close()

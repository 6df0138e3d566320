"""What a newcomer sees in the browser UI while things take time (issue 40): an import says how
far its embedding is; the first reply streams into a transcript that no longer says "No turns
yet".  Headless Chromium (Debian's) through Playwright, against a real server whose embedder or
chat model holds still at a gate until the test has looked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from loreweave.bootstrap import Loreweave, build
from loreweave.config import Settings
from loreweave.db import Database
from loreweave.llm.providers.scripted import ScriptedChatModel
from loreweave.llm.registry import Providers
from loreweave.llm.resilience import CallStats
from loreweave.llm.types import ChatRequest, Matrix
from loreweave.testing import HashingEmbedder

from .private_services import serving
from .test_import import world_info
from .test_ui import CHROMIUM, FLAGS, need_chromium

WAIT = 30  # seconds a gate holds at most (the test releases it long before)


class GatedEmbedder(HashingEmbedder):
    """Once armed, its second call waits for :attr:`release`: an import held after its first
    batch of entries."""

    def __init__(self) -> None:
        super().__init__(64)
        self.armed = False
        self.release = threading.Event()

    def embed(self, texts: Sequence[str]) -> Matrix:
        if self.armed and self.calls == 1:
            self.release.wait(WAIT)
        return super().embed(texts)


class GatedNarrator(ScriptedChatModel):
    """Streams its reply's first word, then waits for :attr:`release` before the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.add("The bell rings out over the hill.", prompt="chat", repeat=True)
        self.add({"updates": []}, prompt="analysis", repeat=True)
        self.release = threading.Event()

    def stream(self, request: ChatRequest) -> Iterator[str]:
        for index, piece in enumerate(super().stream(request)):
            if index == 1:
                self.release.wait(WAIT)
            yield piece


def app(
    database: Database, tmp_path: Path, chat: ScriptedChatModel, embedder: HashingEmbedder
) -> Loreweave:
    settings = Settings(index_dir=tmp_path / "index")
    providers = Providers(chat=chat, embedder=embedder, stats=CallStats())
    return build(settings, providers=providers, database=database)


def test_an_import_says_how_far_its_embedding_is(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    need_chromium()
    embedder = GatedEmbedder()
    lw = app(Database(f"sqlite:///{tmp_path / 'ui.db'}"), tmp_path, GatedNarrator(), embedder)
    book = tmp_path / "keepers.json"
    book.write_text(json.dumps(world_info(150)))
    with serving(lw) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_test_id("new-world-name").fill("Keepers")
        page.get_by_test_id("create-world").click()
        expect(page.get_by_test_id("entries-empty")).to_be_visible()
        embedder.armed = True
        try:
            page.get_by_test_id("import-file").set_input_files(str(book))
            expect(page.get_by_test_id("import-status")).to_have_text(
                "Importing keepers.json: embedding 64 of 150 entries…", timeout=WAIT * 1000
            )
        finally:
            embedder.release.set()
        expect(page.get_by_test_id("import-status")).to_contain_text("Imported 150 entries")
        expect(page.get_by_test_id("entry-list")).to_contain_text("Keeper 149")
        browser.close()


def test_no_turns_yet_goes_as_the_first_reply_streams(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    need_chromium()
    narrator = GatedNarrator()
    lw = app(Database(f"sqlite:///{tmp_path / 'ui.db'}"), tmp_path, narrator, HashingEmbedder(64))
    with serving(lw) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_test_id("new-world-name").fill("Bells")
        page.get_by_test_id("create-world").click()
        page.get_by_role("button", name="Session", exact=True).click()
        page.get_by_test_id("new-session").click()
        turns = page.get_by_test_id("turns")
        expect(turns).to_contain_text("No turns yet")
        page.get_by_test_id("message").fill("Momo rings the bell")
        try:
            page.get_by_test_id("send").click()
            expect(turns).to_contain_text("You: Momo rings the bell")
            expect(turns).to_contain_text("The")  # the first word, streamed; the rest held
            expect(turns).not_to_contain_text("No turns yet")
        finally:
            narrator.release.set()
        expect(turns).to_contain_text("The bell rings out over the hill.")
        expect(turns).not_to_contain_text("No turns yet")
        browser.close()

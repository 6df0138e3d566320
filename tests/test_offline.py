"""Offline, what loreweave says is what it plays (issue 40): ``serve`` with the scripted
provider and no cassette plays the bundled placeholder cassette (the UI's banner says so, in
tests/test_ui.py, its reply in tests/test_registry.py); ``loreweave demo`` plays its story's own
cassette whenever it is offline."""

from __future__ import annotations

import io

from rich.console import Console

from loreweave.config import Settings
from loreweave.entrypoints.demo import bundled
from loreweave.entrypoints.demo.run import demo_settings, next_steps


def test_the_demo_plays_its_story_with_the_scripted_provider_too() -> None:
    """``LOREWEAVE_LLM_PROVIDER=scripted loreweave demo`` said "the bundled scripted cassette"
    and played the placeholder one: a story whose memory never changed."""
    story = bundled("cassette.json")
    for chosen in ({}, {"llm_provider": "scripted"}):
        out = io.StringIO()
        settings = demo_settings(Settings(**chosen), Console(file=out))  # type: ignore[arg-type]
        assert settings.llm_provider == "scripted" and settings.scripted_cassette == story
        assert "the demo's recorded scripted cassette" in out.getvalue()


def test_the_demos_next_steps_paste_offline() -> None:
    """After an offline demo, its "Next:" said ``loreweave serve``, which stops at once without
    MISTRAL_API_KEY: offline, it says the quick start's lines."""
    offline = next_steps("Hollow Hill", offline=True)
    assert "LOREWEAVE_LLM_PROVIDER=scripted loreweave serve" in offline
    assert 'LOREWEAVE_LLM_PROVIDER=scripted loreweave chat --world "Hollow Hill"' in offline
    online = next_steps("Hollow Hill", offline=False)
    assert "[bold]loreweave serve[/]" in online and "scripted" not in online

"""Prompts are named Jinja2 templates in ``llm/prompts/``; nothing else writes prompt text."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

PROMPTS = ("analysis", "rewrite", "creation", "chat", "lore")


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("loreweave.llm", "prompts"),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - prompts are plain text for an LLM, not HTML
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context: Any) -> str:
    """Render the prompt ``name`` (one of :data:`PROMPTS`) with ``context``."""
    if name not in PROMPTS:
        raise ValueError(f"unknown prompt {name!r}")
    return _environment().get_template(f"{name}.j2").render(**context).strip()

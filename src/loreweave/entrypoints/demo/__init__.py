"""The bundled offline demo: a short story, and the cassette that answers for the LLM."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled(name: str) -> Path:
    """A file shipped in this package (``story.json``, ``cassette.json``)."""
    return Path(str(resources.files("loreweave.entrypoints.demo").joinpath(name)))

"""Where a model's answer becomes data (DESIGN §4): every text a model writes passes here before
it is stored.  It is scrubbed (no NUL, no lone surrogate — a structured answer already is where
it is parsed, :mod:`loreweave.llm.structured`; a name also without bidi controls or invisible
marks) and held to the bound of its setting: a summary or an entry's content over it is cut at
its last whole sentence (at a word, marked "…", when no sentence ends in time), a name is cut;
nothing is stored over its bound.  A note is refused instead (asked again, else the previous
note stays): see :func:`note`."""

from __future__ import annotations

import json
import re

from loreweave.llm.prompts.creation import TAG_CHARS, TITLE_CHARS, CreatedEntity
from loreweave.validation import scrub, scrub_name

ELLIPSIS = "…"
MAX_TAGS = 20
ENTITY_TYPE_CHARS = 50
# a sentence ends with . ! ? or … (and a closing quote or bracket), before a space or the end
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s|$)")


def bounded(text: str, limit: int) -> str:
    """``text`` scrubbed and stripped, and when longer than ``limit``, cut after its last
    sentence that ends within it; without one, at its last word within it (when that keeps at
    least half), marked with "…"."""
    text = scrub(text).strip()
    if len(text) <= limit:
        return text
    end = 0
    for found in _SENTENCE_END.finditer(text, 0, limit + 1):
        if found.end() <= limit:
            end = found.end()
    if end:
        return text[:end]
    space = text.rfind(" ", 0, limit)
    cut = space if space >= limit // 2 else limit - len(ELLIPSIS)
    return text[:cut].rstrip() + ELLIPSIS


def name(text: str, limit: int) -> str:
    """A name (a title, a tag, an entity type, a witness) as it may be stored: scrubbed of what
    cannot be stored or seen, whitespace collapsed, at most ``limit`` characters."""
    return scrub_name(text)[:limit].rstrip()


def names(values: list[str], limit: int, count: int) -> list[str]:
    """Names (tags): each as :func:`name`, the empty and repeated ones dropped, at most
    ``count``."""
    found: dict[str, str] = {}
    for value in values:
        kept = name(value, limit)
        if kept and kept.lower() not in found:
            found[kept.lower()] = kept
    return list(found.values())[:count]


def entry(made: CreatedEntity, max_chars: int) -> CreatedEntity:
    """A created entry as it may be stored: its title a name, its content within
    ``max_chars`` (``max_entry_chars``), its tags names, at most :data:`MAX_TAGS`."""
    return made.model_copy(
        update={
            "title": name(made.title, TITLE_CHARS),
            "content": bounded(made.content, max_chars),
            "tags": names(list(made.tags), TAG_CHARS, MAX_TAGS),
        }
    )


# -- a note answered in plain text: what makes it no note at all --------------------------------
_FENCED = re.compile(r"^```[\w-]*\s*(.*?)\s*```$", re.DOTALL)
ECHO_LINE_CHARS = 20  # a line of a prompt this long, quoted whole, is an echo


def as_json(text: str) -> str | None:
    """Why ``text``, asked as prose, is JSON instead (a JSON object or list, bare or in a code
    fence: a model answering the shape of another prompt), or None."""
    stripped = text.strip()
    fenced = _FENCED.match(stripped)
    body = fenced.group(1) if fenced else stripped
    if body[:1] not in ("{", "["):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    kind = "an object" if isinstance(value, dict) else "a list"
    return f"the answer is JSON ({kind}), not the prose asked for"


def echoed(text: str, asked: str, given: str) -> str | None:
    """Why ``text`` echoes its prompt ``asked`` (a line of the prompt's own, not of the inputs
    ``given`` it shows, quoted whole), or None."""
    for line in asked.splitlines():
        line = line.strip()
        if len(line) >= ECHO_LINE_CHARS and line in text and line not in given:
            return f"the answer echoes its prompt: {line[:60]!r}"
    return None

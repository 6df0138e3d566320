"""Is an answer grounded in the story?  Like the id checks, these catch what validates but did
not come from the story: an entity the turn never names (a small model copying a prompt's
example, or inventing), an update that shares nothing with its turn, a note that brings in a
name from nowhere.  Word-level and cheap: no LLM call."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
# words a name may hold that say nothing of which name it is
_FILLER = frozenset(
    _WORD.findall("the a an of and or de du la le les el al von van der den di da del in on at to")
)
# words too common to show that two texts speak of the same thing
_COMMON = frozenset(
    _WORD.findall(
        """
        the a an and or but of to in on at by for with from into onto over under is are was
        were be been being has have had do does did it its this that these those he she they
        them his her their him we you i me my our your not no as so then than there here what
        who whom which when where why how all any some more most very just also now new one
        two after before while again about up down out off
        """
    )
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


def named_in(title: str, text: str) -> bool:
    """Whether the story ``text`` names ``title``: each word of the name that tells it apart
    (not "the", "of"…) occurs in it, in any case."""
    wanted = {w for w in words(title) if len(w) > 1 and w not in _FILLER}
    return not wanted or wanted <= words(text)


def mentions(names: str, text: str) -> bool:
    """Whether ``text`` uses a word that tells ``names`` (an entity's title and aliases) apart:
    "Seiko" mentions "Grandmother Seiko"."""
    wanted = {w for w in words(names) if len(w) > 2 and w not in _FILLER and w not in _COMMON}
    return not wanted or bool(wanted & words(text))


def shares_something(summary: str, text: str) -> bool:
    """Whether ``summary`` shares a meaningful word with ``text`` (its turn)."""
    meaningful = {w for w in words(summary) if len(w) > 2 and w not in _COMMON}
    return not meaningful or bool(meaningful & words(text))


def new_names(note: str, given: str) -> list[str]:
    """The capitalised words of ``note`` (past each sentence's first word) that ``given`` (its
    lore, old note, events, title) never uses: names a rewrite brought in from nowhere."""
    known = words(given)
    found: dict[str, None] = {}
    for sentence in _SENTENCE_END.split(note):
        for word in _WORD.findall(sentence)[1:]:
            if len(word) > 2 and word[0].isupper() and word.lower() not in known:
                found[word] = None
    return list(found)


_FULL_NAME = re.compile(r"\b[A-Z][\w']+(?:\s+(?:of\s+|the\s+)?[A-Z][\w']+)+")


def _without_leading_common(name: str) -> str:
    """A capitalised run without the common words a sentence starts with ("Then Momo",
    "The Sunwoven Lute": "Momo", "Sunwoven Lute")."""
    parts = name.split()
    while parts and parts[0].lower() in _COMMON:
        parts.pop(0)
    return " ".join(parts)


def unknown_full_names(text: str, known: str) -> list[str]:
    """The full names in ``text`` (two or more capitalised words: "Corwin Hale", "Sister
    Maren"; a sentence's "The", "Then" not counted) that ``known`` (the entities shown, the
    creations proposed) never names."""
    found: dict[str, None] = {}
    for match in _FULL_NAME.finditer(text):
        name = _without_leading_common(match.group())
        if len(name.split()) > 1 and not named_in(name, known):
            found[name] = None
    return list(found)


def sentences_naming(text: str, name: str) -> str:
    """The sentences of ``text`` that name ``name`` (what the story says of it), in order."""
    said = [s.strip() for s in _SENTENCE_END.split(text) if named_in(name, s)]
    return " ".join(dict.fromkeys(said)) or name

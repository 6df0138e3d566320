"""How a name is compared: lower case, punctuation ignored, a possessive its noun ("Korrin's"
is "korrin"), a leading article left out ("The Sunwoven Lute" is "Sunwoven Lute").  Entity
creation de-duplicates by it and keyword activation matches keys by it,
so both agree on when two names are the same."""

from __future__ import annotations

import re

_POSSESSIVE = re.compile(r"(?<=\w)['’]s?\b")
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(_POSSESSIVE.sub("", text.lower()))


_ARTICLES = frozenset({"the", "a", "an"})


def normalise_name(name: str) -> str:
    found = words(name)
    if len(found) > 1 and found[0] in _ARTICLES:
        found = found[1:]
    return " ".join(found)

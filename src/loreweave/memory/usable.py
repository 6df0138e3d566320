"""What makes an LLM's text usable beyond its shape: an answer can validate and still say
nothing, or say one thing over and over (a small model's loop).  Checked wherever a text from
an LLM is about to become memory."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_PLACEHOLDER = re.compile(r"<[^<>\n]{6,}>")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)
MIN_SENTENCE_WORDS = 3  # "Yes." twice is speech, not a loop
PHRASE_WORDS = 6
PHRASE_LOOP = 3  # the same six words three times over


def clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters (cut, and marked by "…"): a bound a
    schema cannot carry (:data:`~loreweave.llm.prompts.schema.GRAMMAR_REPEAT_LIMIT`) is kept
    after parsing."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# a sentence about the note rather than of it: the writer speaking ("I've added…", "Here is
# the note"), or saying nothing changed
_ABOUT_THE_NOTE = re.compile(
    r"^(?:(?:I|I've|I have) (?:added|updated|rewritten|rewrote|kept|incorporated|made|integrated)"
    r"\b|Here is\b|Here's\b|No changes?\b|Nothing (?:new|changed)\b"
    r"|The (?:session |current )?note (?:remains|is|stays) (?:unchanged|the same)\b)",
    re.IGNORECASE,
)


def without_labels(text: str, labels: Sequence[str]) -> str:
    """``text`` without ``labels`` that open a line or a sentence ("New Event: …",
    "[Current Session Note]: …") and without sentences about the note itself."""
    if labels:
        names = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
        opener = re.compile(
            rf"(?:^|(?<=[.!?…]\s))[ \t]*\[?(?:{names})\]?[ \t]*:[ \t]*",
            re.IGNORECASE | re.MULTILINE,
        )
        text = opener.sub("", text)
    kept = []
    for line in text.splitlines():
        sentences = _SENTENCE_END.split(line)
        about = [s for s in sentences if _ABOUT_THE_NOTE.match(s.strip())]
        if about:  # the line without them (else as it was)
            line = " ".join(s.strip() for s in sentences if s not in about and s.strip())
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def copied_placeholder(text: str) -> str | None:
    """A prompt's ``<...>`` placeholder copied into an answer (the prompts show the shape of an
    answer with placeholders, never story content a model could copy), or None."""
    found = _PLACEHOLDER.search(text)
    if found:
        return found.group()
    start = text.lstrip()
    return start[:40] if start.startswith("<") else None  # one cut before its ">"


def _key(sentence: str) -> list[str]:
    return _WORD.findall(sentence.lower())


def joined_without_repeats(texts: list[str], after: str = "") -> str:
    """``texts`` joined by spaces, each sentence said once (events that repeat one another,
    as a small model's often do, make a first note that says each thing once); behind
    ``after``, kept as it is, without the sentences it already says."""
    seen = {" ".join(_key(sentence)) for sentence in _SENTENCE_END.split(after.strip())}
    kept = [after.strip()] if after.strip() else []
    for text in texts:
        for sentence in _SENTENCE_END.split(text.strip()):
            words = _key(sentence)
            key = " ".join(words)
            if len(words) >= MIN_SENTENCE_WORDS and key in seen:
                continue
            seen.add(key)
            if sentence.strip():
                kept.append(sentence.strip())
    return " ".join(kept)


def _sentences(text: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sentence in _SENTENCE_END.split(text):
        words = _key(sentence)
        if len(words) >= MIN_SENTENCE_WORDS:
            counts[" ".join(words)] += 1
    return counts


def _phrases(text: str) -> Counter[str]:
    words = _WORD.findall(text.lower())
    return Counter(
        " ".join(words[i : i + PHRASE_WORDS]) for i in range(len(words) - PHRASE_WORDS + 1)
    )


def repetition(text: str, *, given: str = "") -> str | None:
    """Why ``text`` repeats itself (a sentence twice, or a phrase looping), or None.  What
    ``given`` (the inputs it was written from) already repeats is not held against it."""
    sentences, before = _sentences(text), _sentences(given)
    for sentence, count in sentences.items():
        if count > 1 and count > before[sentence]:
            return f"repeats a sentence {count} times: {sentence[:80]!r}"
    phrases, before_phrases = _phrases(text), _phrases(given)
    for phrase, count in phrases.items():
        if count >= PHRASE_LOOP and count > before_phrases[phrase]:
            return f"repeats a phrase {count} times: {phrase!r}"
    return None

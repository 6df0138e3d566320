"""SillyTavern's Prompt Post-Processing, written from ``src/prompt-converters.js``
(``mergeMessages``) for text messages: the shapes a request takes on its way to the model when
the connection's "Prompt Post-Processing" is set.  Test fixtures: the proxy must read every
shape as the plain one."""

from __future__ import annotations

from typing import Any

PLACEHOLDER = "Let's get started."
MODES = ("none", "merge", "semi", "strict")


def post_process(messages: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    if mode == "none":
        return [dict(m) for m in messages]
    return _merge(
        [dict(m) for m in messages],
        strict=mode in ("semi", "strict"),
        placeholders=mode == "strict",
    )


def _fold_names(messages: list[dict[str, Any]]) -> None:
    for message in messages:  # names go into the content
        name = message.pop("name", None)
        if name and message["role"] != "system" and not message["content"].startswith(f"{name}: "):
            message["content"] = f"{name}: {message['content']}"


def _merge(
    messages: list[dict[str, Any]], *, strict: bool, placeholders: bool
) -> list[dict[str, Any]]:
    _fold_names(messages)
    merged: list[dict[str, Any]] = []
    for message in messages:  # consecutive messages of one role become one
        if merged and merged[-1]["role"] == message["role"] and message["content"]:
            merged[-1]["content"] += "\n\n" + message["content"]
        else:
            merged.append(message)
    if strict:
        for i, message in enumerate(merged):
            if i > 0 and message["role"] == "system":  # only one system message, first
                message["role"] = "user"
        if merged and placeholders:
            if merged[0]["role"] == "system" and (len(merged) == 1 or merged[1]["role"] != "user"):
                merged.insert(1, {"role": "user", "content": PLACEHOLDER})
            elif merged[0]["role"] not in ("system", "user"):
                merged.insert(0, {"role": "user", "content": PLACEHOLDER})
        return _merge(merged, strict=False, placeholders=placeholders)
    return merged

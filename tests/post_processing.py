"""SillyTavern's prompt shapes as test fixtures: the proxy must read every one as the plain one.

- Prompt Post-Processing, written from ``src/prompt-converters.js``: ``mergeMessages`` (the
  "merge", "semi" and "strict" modes of 1.13+) and ``convertClaudeMessages`` (1.12.6's only
  mode besides None, "claude": every system message a user one, neighbours merged, so the main
  prompt, World Info, the card and ``[Start a new Chat]`` arrive as one leading user message).
- Text injected at a depth (World Info @depth, Author's Note, extensions), written from
  ``public/scripts/openai.js`` (``populationInjectionPrompts``)."""

from __future__ import annotations

from typing import Any

PLACEHOLDER = "Let's get started."
MODES = ("none", "merge", "semi", "strict", "claude")


def post_process(messages: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    if mode == "none":
        return [dict(m) for m in messages]
    if mode == "claude":
        return _claude([dict(m) for m in messages])
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


def _claude(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``convertClaudeMessages(messages, '', false, '')`` as the Custom endpoint calls it: no
    system prompt kept apart, so every system message becomes a user message; a ``name`` goes
    into the content; consecutive messages of one role are merged (empty ones too)."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "system":
            message["role"] = "user"
        name = message.pop("name", None)
        if name:
            message["content"] = f"{name}: {message['content']}"
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"] += "\n\n" + message["content"]
        else:
            merged.append(message)
    return merged


def inject(chat: list[dict[str, Any]], prompts: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """The chat history with ``prompts`` — (depth, role, content) — put in at their depths, as
    SillyTavern does before the nudges are added: depth 0 after the last message, depth d
    before the d-th message from the end (the messages put in at smaller depths count), beyond
    the chat's start at its top; at one depth the assistant's text, then the user's, then the
    system's (nearest the end), each role's texts joined by a newline."""
    messages = [dict(m) for m in reversed(chat)]
    inserted = 0
    for depth in sorted({d for d, _, _ in prompts}):
        here = []
        for role in ("system", "user", "assistant"):
            joint = "\n".join(c.strip() for d, r, c in prompts if d == depth and r == role and c)
            if joint:
                here.append({"role": role, "content": joint})
        at = depth + inserted
        messages[at:at] = here
        inserted += len(here)
    return list(reversed(messages))

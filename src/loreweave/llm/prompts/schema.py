"""The JSON schema a memory request sends with it, built for that request: the ids it shows as
an enum, the per-turn caps as ``maxItems``, every text with its length bound.  A server that
enforces schemas (Mistral, OpenAI, vLLM, llama.cpp) then cannot answer an invented id, a
missing turn or a runaway summary; the answer is validated with the prompt's pydantic model
all the same (servers exist that accept a schema and do not enforce it).

``max_tokens`` for the same request comes from the same bounds (:func:`tokens_for`), so an
answer that rambles past them is cut, and a cut answer is unusable, never saved.

A bound above :data:`GRAMMAR_REPEAT_LIMIT` is left out of the schema and kept after parsing
instead (the caller clips or refuses): a server that enforces a schema by a grammar repeats a
rule that many times, and llama.cpp refuses a large repetition ("number of rules … exceeds sane
defaults"); llama-cpp-python's server then dies, and every later call is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Schema = dict[str, Any]

# What the analysis prompt offers as entity types (its validation still takes any short name).
ENTITY_TYPES = ("Character", "Location", "Item", "Faction", "Creature", "Event", "Concept")

# About three characters a token for English prose inside JSON (escapes, quotes): generous,
# so a bound never cuts an answer that keeps within its lengths.
CHARS_PER_TOKEN = 3
JSON_OVERHEAD = 16  # tokens of keys, quotes and braces around one item
# The largest maxLength / maxItems a schema carries.  Measured on llama-cpp-python 0.3.36's
# server (bench/README.md, "Schemas a local server takes"): maxLength 1000 is taken, 1024 kills
# the server; half of that leaves room for other builds and for rules larger than a character.
GRAMMAR_REPEAT_LIMIT = 500


def tokens_for(chars: int) -> int:
    """The tokens an answer of at most ``chars`` characters may take."""
    return chars // CHARS_PER_TOKEN + JSON_OVERHEAD


def text(max_length: int) -> Schema:
    """A non-empty string of at most ``max_length`` characters; a bound above the grammar's
    limit is the caller's to keep after parsing (not in the schema)."""
    schema: Schema = {"type": "string", "minLength": 1}
    if max_length <= GRAMMAR_REPEAT_LIMIT:
        schema["maxLength"] = max_length
    return schema


def one_of(values: Sequence[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def array(items: Schema, max_items: int) -> Schema:
    """At most ``max_items`` of ``items`` (above the grammar's limit: kept after parsing)."""
    schema: Schema = {"type": "array", "items": items}
    if max_items <= GRAMMAR_REPEAT_LIMIT:
        schema["maxItems"] = max_items
    return schema


def obj(properties: Mapping[str, Schema], required: Iterable[str] | None = None) -> Schema:
    """An object of exactly these properties (all required unless ``required`` says which)."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }


def keyed(keys: Sequence[str], value: Schema, max_properties: int) -> Schema:
    """An object of at most ``max_properties`` of ``keys``, each mapped to ``value``.  The keys
    are named by ``propertyNames`` rather than as optional properties: optional properties make
    a grammar that grows with the square of their number (llama.cpp's, 18 MB for a batch that
    shows 200 entities), this stays linear; a server that does not enforce ``propertyNames``
    still bounds every value, and the keys are validated on our side all the same."""
    schema: Schema = {
        "type": "object",
        "additionalProperties": value,
        "maxProperties": max_properties,
    }
    if keys:
        schema["propertyNames"] = {"enum": list(keys)}
    else:
        schema["maxProperties"] = 0
    return schema


def strict_compatible(schema: Any) -> bool:
    """Whether ``schema`` meets OpenAI's strict mode (every object closed, every property
    required), which is when a provider is told ``"strict": true``."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and (
            schema.get("additionalProperties") is not False
            or set(schema.get("required", ())) != set(schema.get("properties", {}))
        ):
            return False
        return all(strict_compatible(value) for value in schema.values())
    if isinstance(schema, list):
        return all(strict_compatible(value) for value in schema)
    return True

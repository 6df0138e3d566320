"""The prompts: each one a Jinja2 template in this folder, beside the module that names its
response model and the settings of its model and temperature (graphiti's layout).

A :class:`PromptSpec` renders its template and builds the :class:`ChatRequest`, named after the
prompt, so providers, metrics, cassettes and fakes all know a request by its name (``analysis``,
``rewrite.batch``…), never by its wording.  Nothing else writes prompt text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Generic, TypeVar

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel

from loreweave.config import LLMConfig
from loreweave.llm.structured import complete_structured
from loreweave.llm.types import ChatModel, ChatRequest, ChatResponse, Message, Usage

R = TypeVar("R", bound=BaseModel)

# A batched prompt's answer, built from the answers to its single parts, in order.
Combine = Callable[[list[str]], Any]


def one_line(value: object) -> str:
    """A value put into one line of a prompt's structured list (an id, a type, a title): its
    whitespace, newlines included, collapsed to single spaces, so no title can forge a line."""
    return " ".join(str(value).split())


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("loreweave.llm", "prompts"),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - prompts are plain text for an LLM, not HTML
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["line"] = one_line
    return environment


@dataclass(frozen=True)
class PromptSpec(Generic[R]):
    """One prompt: its name, its template file, the model it answers with (None: plain text),
    and the :class:`~loreweave.config.LLMConfig` fields naming its model and temperature."""

    name: str
    template: str
    response: type[R] | None
    model_setting: str
    temperature_setting: str
    combine: Combine | None = None  # for a batched prompt

    def render(self, **context: Any) -> str:
        return _environment().get_template(f"{self.template}.j2").render(**context).strip()

    def wording(self) -> str:
        """The template's own words, without its placeholders and tags: what an answer may
        echo of the prompt (never a stranger in it, never the story's)."""
        return _wording(self.template)

    def labels(self) -> tuple[str, ...]:
        """The labels the template writes ("[New Event]:", "New Session Note:", its quoted
        'Session Note'): an answer that repeats one has copied the prompt, not the story."""
        return _labels(self.template)

    def request(
        self,
        config: LLMConfig,
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        parts: Sequence[ChatRequest] = (),
        **context: Any,
    ) -> ChatRequest:
        """The request for this prompt, with its model and temperature from ``config``, the
        JSON schema its answer must follow (built for this request: the ids it shows, its
        caps; :mod:`loreweave.llm.prompts.schema`) and the tokens it may take; a batched prompt
        names the single requests it stands for (``parts``)."""
        return ChatRequest(
            (Message("user", self.render(**context)),),
            str(getattr(config, self.model_setting)),
            float(getattr(config, self.temperature_setting)),
            prompt=self.name,
            json_schema=schema,
            max_tokens=max_tokens,
            parts=tuple(parts),
        )

    def ask(self, model: ChatModel, request: ChatRequest) -> R:
        """``model``'s answer to ``request`` (this prompt's, or its repair) as this prompt's
        response model: validated, with one repair request for an unusable answer
        (:func:`~loreweave.llm.structured.complete_structured`)."""
        if self.response is None:
            raise TypeError(f"the {self.name} prompt is answered in plain text")
        return complete_structured(model, request, self.response)


_TAG = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)
_BRACKETED = re.compile(r"\[([A-Z][^\]\n<>]*)\]")
_LINE_LABEL = re.compile(r"^([A-Z][\w ]*[\w)]):\s*$", re.MULTILINE)
_QUOTED = re.compile(r"'([A-Z][\w ]+)'")
_KEY_DESCRIPTION = re.compile(
    r"^- \w+: ([A-Z][\w ]*\w)\s*(?:\(.*)?$", re.MULTILINE
)  # "- title: Entity name"


@cache
def _wording(template: str) -> str:
    source = _environment().loader.get_source(_environment(), f"{template}.j2")[0]  # type: ignore[union-attr]
    return _TAG.sub(" ", source)


@cache
def _labels(template: str) -> tuple[str, ...]:
    wording = _wording(template)
    found = [
        *_BRACKETED.findall(wording),
        *_LINE_LABEL.findall(wording),
        *_QUOTED.findall(wording),
        *_KEY_DESCRIPTION.findall(wording),
    ]
    return tuple(dict.fromkeys(label.strip() for label in found))


def spec(name: str) -> PromptSpec[Any]:
    from loreweave.llm.prompts.catalogue import SPECS

    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown prompt {name!r}") from None


def render(name: str, **context: Any) -> str:
    """Render the prompt ``name`` with ``context``."""
    return spec(name).render(**context)


def answer_by_parts(
    request: ChatRequest, complete: Callable[[ChatRequest], ChatResponse]
) -> ChatResponse | None:
    """A batched request answered as its single parts would be, one ``complete`` call each,
    combined as the batched prompt asks (for fakes that know only the single prompts); None for
    a request that is not a batch."""
    batch = spec(request.prompt.removesuffix(".repair")) if request.parts else None
    if batch is None or batch.combine is None:
        return None
    answers = [complete(part) for part in request.parts]
    text = json.dumps(batch.combine([answer.text for answer in answers]))
    usage = Usage(
        sum(a.usage.prompt_tokens for a in answers),
        sum(a.usage.completion_tokens for a in answers),
    )
    return replace(answers[0], text=text, usage=usage)

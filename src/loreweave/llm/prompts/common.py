"""What the response models share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from loreweave.llm.structured import extract_json

__all__ = ["Name", "Output", "Text", "extract_json", "says_something"]


def says_something(value: str) -> str:
    """A text that holds no letter or digit (``"..."``, ``"-"``, ``"{}"``) says nothing: an
    answer that validates by shape alone is not a usable one."""
    if not any(character.isalnum() for character in value):
        raise ValueError("says nothing (no letter or digit)")
    return value


Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(says_something)
]
Name = Text  # a title: the same rule, its length bounded where it is used


class Output(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

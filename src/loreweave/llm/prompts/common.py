"""What the response models share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from loreweave.llm.structured import extract_json

__all__ = ["Output", "Text", "extract_json"]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Output(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

"""FastAPI dependencies: the loreweave container and its lore service.  (The API key is
checked before any route, by loreweave.api.guard.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from loreweave.app.lore import LoreService
from loreweave.container import Loreweave
from loreweave.memory.review import ReviewService


def get_loreweave(request: Request) -> Loreweave:
    container: Loreweave = request.app.state.loreweave
    return container


LW = Annotated[Loreweave, Depends(get_loreweave)]


def get_lore(lw: LW) -> LoreService:
    return lw.lore


Lore = Annotated[LoreService, Depends(get_lore)]


def get_review(lw: LW) -> ReviewService:
    return ReviewService(lw.database.uow, lw.vectors)


Review = Annotated[ReviewService, Depends(get_review)]

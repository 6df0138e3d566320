"""FastAPI dependencies: the loreweave container and the API-key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from loreweave.bootstrap import Loreweave
from loreweave.lore import LoreService


def get_loreweave(request: Request) -> Loreweave:
    container: Loreweave = request.app.state.loreweave
    return container


LW = Annotated[Loreweave, Depends(get_loreweave)]


def get_lore(lw: LW) -> LoreService:
    return LoreService(lw.database, lw.vectors)


Lore = Annotated[LoreService, Depends(get_lore)]


def require_api_key(request: Request, lw: LW) -> None:
    """With ``LOREWEAVE_API_KEYS`` set, every endpoint but /healthz needs a Bearer key."""
    keys = [key.get_secret_value() for key in lw.settings.api_keys]
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and any(hmac.compare_digest(token, key) for key in keys):
        return
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid API key: send 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )

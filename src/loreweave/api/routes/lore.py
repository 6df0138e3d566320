"""One lore entry: read, edit, delete, promote."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from loreweave.api.deps import Lore
from loreweave.api.schemas import EntryOut, EntryPatch

router = APIRouter(prefix="/api/lore-entries", tags=["lore"])


@router.get("/{entry_id}")
def get_entry(entry_id: uuid.UUID, lore: Lore) -> EntryOut:
    return EntryOut.model_validate(lore.get(entry_id))


@router.patch("/{entry_id}")
def update_entry(entry_id: uuid.UUID, body: EntryPatch, lore: Lore) -> EntryOut:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return EntryOut.model_validate(lore.update(entry_id, changes))


@router.delete("/{entry_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_entry(entry_id: uuid.UUID, lore: Lore) -> Response:
    lore.delete(entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{entry_id}/promote")
def promote_entry(entry_id: uuid.UUID, lore: Lore) -> EntryOut:
    return EntryOut.model_validate(lore.promote(entry_id))

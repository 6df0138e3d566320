"""What the request's API key may use: every world, or only some (``key@<world id>``).

One router dependency, :func:`enforce_scope`, resolves the world behind every path parameter —
a world, a session, an entry, a job — and answers 404 for one outside the key's worlds (as if it
did not exist); operations that span every world are refused to a limited key (403).  Lists are
filtered by their route."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from loreweave.api.deps import LW
from loreweave.api.guard import WORLDS
from loreweave.db.uow import UnitOfWork
from loreweave.errors import Forbidden, NotFound
from loreweave.queue.jobs import Kinds

# the only routes without a world of their own that a limited key may use (filtered there)
LISTS = {("GET", "/api/worlds")}
# ids looked up within the session of the same path (whose world is checked)
WITHIN_SESSION = {"change_id"}


class Access:
    def __init__(self, worlds: frozenset[uuid.UUID] | None) -> None:
        self.worlds = worlds

    @property
    def limited(self) -> bool:
        return self.worlds is not None

    def allows(self, world_id: uuid.UUID | None) -> bool:
        return self.worlds is None or world_id in self.worlds


def get_access(request: Request) -> Access:
    return Access(request.scope.get(WORLDS))


AccessTo = Annotated[Access, Depends(get_access)]


def _world_of(uow: UnitOfWork, kinds: Kinds, name: str, value: str) -> uuid.UUID | None:
    key = uuid.UUID(value)
    if name == "world_id":
        return key
    if name == "session_id":
        session = uow.sessions.get(key)
        return session.world_id if session else None
    if name in ("entry_id", "lore_entry_id"):
        entry = uow.entries.get(key)
        return entry.world_id if entry else None
    if name == "job_id":
        try:
            _, row = kinds.find(uow.session, key)
        except NotFound:
            return None
        session = uow.sessions.get(row.session_id)
        return session.world_id if session else None
    raise KeyError(name)


def enforce_scope(request: Request, lw: LW, access: AccessTo) -> None:
    if not access.limited:
        return
    names = [n for n in request.path_params if n.endswith("_id") and n not in WITHIN_SESSION]
    if not names:
        route = getattr(request.scope.get("route"), "path", request.url.path)
        if (request.method, route) not in LISTS:
            raise Forbidden("this API key is limited to some worlds; this spans them all")
        return
    with lw.database.uow(read_only=True) as uow:
        for name in names:
            try:
                world = _world_of(uow, lw.kinds, name, str(request.path_params[name]))
            except ValueError:
                continue  # not an id: the route answers 422
            if not access.allows(world):
                raise NotFound(
                    name.removesuffix("_id").replace("_", " "), request.path_params[name]
                )


Scoped = Depends(enforce_scope)

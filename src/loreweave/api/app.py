"""The FastAPI application: routers, authentication, CORS, errors as 4xx, and the UI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import InterfaceError, OperationalError

from loreweave import __version__
from loreweave.api.access import Scoped
from loreweave.api.errors import error_status
from loreweave.api.guard import EdgeGuard
from loreweave.api.progress import Imports
from loreweave.api.routes import lore, memory, openai, queue, sessions, system, worlds
from loreweave.container import Loreweave
from loreweave.errors import LoreweaveError
from loreweave.validation import excerpt

log = logging.getLogger("loreweave.api")
RETRY_AFTER = "5"  # seconds, on a 503
WEB = Path(__file__).parent.parent / "web"


def create_app(
    lw: Loreweave, *, start_workers: bool = False, allowed_hosts: list[str] | None = None
) -> FastAPI:
    """The service around one loreweave container; with ``start_workers`` the local backend's
    worker threads run inside it.  ``allowed_hosts`` (default: the setting, else any) are the
    ``Host`` names served."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Turns block on the LLM in worker threads: anyio's default of 40 would queue the 41st.
        to_thread.current_default_thread_limiter().total_tokens = lw.settings.http_threads
        if start_workers:
            lw.start_local_workers()
        lw.alerts.start()
        yield
        lw.close()

    # /docs and /redoc with their scripts served from the installed fastapi-offline package,
    # not a CDN: they work on a machine without internet
    app = FastAPIOffline(
        title="loreweave",
        version=__version__,
        description="A living world memory for AI storytelling and roleplay chat apps.",
        lifespan=lifespan,
        static_url="/docs-assets",
    )
    app.state.loreweave = lw
    app.state.imports = Imports()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each problem and where — never echoing the input back (it may be huge,
        or not even encodable)."""
        detail = [
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": excerpt(str(error.get("msg", "")), 200),
                "type": error.get("type", ""),
            }
            for error in exc.errors()[:20]
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(LoreweaveError)
    async def loreweave_error(_request: Request, exc: LoreweaveError) -> JSONResponse:
        code, message = error_status(exc)
        if code >= 500:
            log.warning("%s answered %d: %s", _request.url.path, code, exc)
        headers = {"Retry-After": RETRY_AFTER} if code == 503 else None
        return JSONResponse({"detail": message}, status_code=code, headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_gone(_request: Request, exc: Exception) -> JSONResponse:
        """The database is unreachable (or went away mid-request): 503, try again soon."""
        log.warning("%s answered 503: the database is unavailable: %s", _request.url.path, exc)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER},
        )

    if lw.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=lw.settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Loreweave-Session", "X-Loreweave-Changes"],
        )
    for router in (
        worlds.router,
        lore.router,
        sessions.router,
        memory.router,
        queue.router,
        system.metrics_router,
    ):
        app.include_router(router, dependencies=[Scoped])
    app.include_router(system.router)
    app.include_router(openai.router)  # the world comes from the model name: checked there
    if WEB.is_dir():
        app.mount("/", StaticFiles(directory=WEB, html=True), name="ui")
    # outermost: nothing runs, and no body is read, before the host and the key are checked
    app.add_middleware(
        EdgeGuard,
        keys=[key.get_secret_value() for key in lw.settings.api_keys],
        max_body=lw.settings.max_body_bytes,
        allowed_hosts=allowed_hosts or lw.settings.allowed_hosts or None,
    )
    return app

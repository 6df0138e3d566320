"""The HTTP service: FastAPI app, routers, and the browser UI it serves."""

from loreweave.api.app import create_app

__all__ = ["create_app"]

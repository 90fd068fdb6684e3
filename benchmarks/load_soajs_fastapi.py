"""The soajs FastAPI apps of the load benchmark: a module of its own, because FastAPI resolves
``SoajsContext`` from the module's globals and the bare app must not import soajs."""

from __future__ import annotations

from fastapi import FastAPI

from benchmarks.load_apps import soajs_container
from soajs import current_context
from soajs.fastapi import SoajsContext, setup_soajs


def add_routes(app: FastAPI, name: str) -> None:
    """``setup_soajs`` and the ``GET /hello`` of configuration ``name``."""
    setup_soajs(app, soajs_container(), register=False)
    if name == "not-read":

        @app.get("/hello")
        async def not_read() -> dict[str, str]:
            return {"tenant": "TTEN"}

    elif name == "dependency":

        @app.get("/hello")
        async def dependency(context: SoajsContext) -> dict[str, str]:
            return {"tenant": context.tenant.code}

    else:

        @app.get("/hello")
        async def current() -> dict[str, str]:
            context = current_context()
            return {"tenant": context.tenant.code if context is not None else "none"}

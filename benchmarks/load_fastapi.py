"""The FastAPI apps of the load benchmark (see :mod:`benchmarks.load_apps`): imports at module
level, because FastAPI resolves the handlers' annotations from the module's globals."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from benchmarks.load_apps import CONFIG_VARIABLE, FASTAPI_CONFIGS, HEADER, gc_counters


async def constant_tenant() -> str:
    """The least a dependency can do: what FastAPI's dependency machinery alone costs."""
    return "TTEN"


def create_fastapi_app() -> Any:
    """The FastAPI app of the configuration named by ``BENCH_LOAD_CONFIG``."""
    name = os.environ[CONFIG_VARIABLE]
    if name not in FASTAPI_CONFIGS:
        raise ValueError(f"{CONFIG_VARIABLE}={name!r}: expected one of {sorted(FASTAPI_CONFIGS)}")
    app = FastAPI(title=f"load-{name}", openapi_url=None)

    @app.get("/gc")
    async def counters() -> dict[str, int]:
        return gc_counters()

    if name == "bare":

        @app.get("/hello")
        async def bare() -> dict[str, str]:
            return {"tenant": "TTEN"}

    elif name == "floor-dependency":

        @app.get("/hello")
        async def floor(tenant: Annotated[str, Depends(constant_tenant)]) -> dict[str, str]:
            return {"tenant": tenant}

    elif name in ("not-read", "dependency", "current"):
        from benchmarks.load_soajs_fastapi import add_routes

        add_routes(app, name)
    elif name == "starlette-context":
        from starlette_context import context
        from starlette_context.middleware import RawContextMiddleware
        from starlette_context.plugins import Plugin

        class InjectPlugin(Plugin):
            key = HEADER

            async def process_request(self, request: Any) -> Any:
                raw = request.headers.get(HEADER)
                return None if raw is None else json.loads(raw)

        app.add_middleware(RawContextMiddleware, plugins=(InjectPlugin(),))

        @app.get("/hello")
        async def starlette_context() -> dict[str, str]:
            return {"tenant": context[HEADER]["tenant"]["code"]}

    else:
        from asgi_correlation_id import CorrelationIdMiddleware, correlation_id

        app.add_middleware(CorrelationIdMiddleware)

        @app.get("/hello")
        async def correlated(request: Request) -> dict[str, str]:
            if correlation_id.get() is None:
                raise RuntimeError("asgi-correlation-id set no id")
            return {"tenant": json.loads(request.headers[HEADER])["tenant"]["code"]}

    return app

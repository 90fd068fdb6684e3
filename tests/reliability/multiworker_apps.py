"""The services of the multi-worker tests, each built by a factory the server imports.

* ``create_caller()``: ``caller``, a Flask app, for ``gunicorn --workers 4``;
* ``create_hello()``: ``hello``, a FastAPI app, for ``uvicorn --workers 2 --factory``;
* ``create_orders()``: ``orders``, the FastAPI service both of them call through the mesh.

``/relay?hold=S`` waits ``S`` seconds (so concurrent requests overlap in the workers), calls
``orders``'s ``/whoami`` with :class:`~soajs.ServiceConnector`, and answers what it saw.

Everything comes from ``SOAJS_*`` variables, as in production: the gateway, the environment,
the port registered (``SOAJS_SERVICE_PORT``) and ``SOAJS_DEPLOY_MANUAL``. Every answer carries
the PID of the worker that served it, so a test can tell the workers apart.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from flask import Flask
from flask import request as flask_request

from soajs import Config, ContextData, RegistryManager
from soajs.container import SoajsContainer
from soajs.fastapi import SoajsConnector, SoajsContext, setup_soajs
from soajs.flask import Soajs, current_context

TARGET, TARGET_VERSION = "orders", "1"
# Longest pause a test may ask for with ?hold=, so concurrent requests overlap in the workers.
MAX_HOLD = 1.0


def _container(name: str, *, calls_target: bool) -> SoajsContainer:
    container = SoajsContainer()
    port = container.settings().service_port
    container.service_config.override(
        Config(
            name=name,
            group="Deploy tests",
            version="1",
            port=port,
            ext_key_required=True,
            inter_connect=[{"name": TARGET, "version": TARGET_VERSION}] if calls_target else None,
        )
    )
    return container


def _hold(seconds: float) -> float:
    return min(MAX_HOLD, max(0.0, seconds))


def _whoami(name: str, context: ContextData | None, registry: RegistryManager) -> dict[str, Any]:
    """What one worker knows: its PID, the request's tenant, its own registry."""
    status = registry.status
    return {
        "service": name,
        "pid": os.getpid(),
        "tenant": None if context is None else context.tenant.code,
        "config": None if context is None else context.services_config.get(name),
        "environment": registry.registry.environment,
        "registry_running": status.running,
    }


def create_caller() -> Flask:
    """``caller`` on Flask: ``/relay`` calls ``orders`` with the connector and reports both."""
    container = _container("caller", calls_target=True)
    app = Flask("caller")
    Soajs(app, container)

    @app.get("/relay")
    def relay() -> dict[str, Any]:
        time.sleep(_hold(flask_request.args.get("hold", 0.0, type=float)))
        connector = container.connector()
        target = connector.connect(TARGET, TARGET_VERSION)
        with connector.client(TARGET, TARGET_VERSION) as client:
            reply = client.get("/whoami")
        return {
            **_whoami("caller", current_context(), container.registry()),
            "via": "mesh" if target.mesh else "gateway",
            "url": target.url,
            "reply": reply.json(),
        }

    return app


def create_hello() -> FastAPI:
    """``hello`` on FastAPI: ``/relay`` calls ``orders`` with the connector and reports both."""
    container = _container("hello", calls_target=True)
    app = FastAPI()
    setup_soajs(app, container)

    @app.get("/relay")
    async def relay(
        context: SoajsContext, connector: SoajsConnector, response: Response, hold: float = 0.0
    ) -> dict[str, Any]:
        # The gateway keeps its connections open, and one connection stays with the worker
        # that accepted it: closing it lets the next request reach any worker.
        response.headers["Connection"] = "close"
        await asyncio.sleep(_hold(hold))
        target = connector.connect(TARGET, TARGET_VERSION)
        async with connector.async_client(TARGET, TARGET_VERSION) as client:
            reply = await client.get("/whoami")
        return {
            **_whoami("hello", context, container.registry()),
            "via": "mesh" if target.mesh else "gateway",
            "url": target.url,
            "reply": reply.json(),
        }

    return app


def create_orders() -> FastAPI:
    """``orders`` on FastAPI: ``/whoami``, also saying whether the caller sent a ``key``."""
    container = _container("orders", calls_target=False)
    app = FastAPI()
    setup_soajs(app, container)

    @app.get("/whoami")
    async def whoami(request: Request, context: SoajsContext) -> dict[str, Any]:
        # A call through the gateway carries the caller's key; a mesh call only soajsinjectobj.
        return {
            **_whoami("orders", context, container.registry()),
            "key_header": "key" in request.headers,
        }

    return app

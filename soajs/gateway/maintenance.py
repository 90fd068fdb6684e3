"""The maintenance API (data port + ``maintenanceInc``): registry, registration, heartbeat.

Every reply is HTTP 200 with the real envelope ``{"result", "ts", "service", ["data"]}``; a
refusal is ``result: false`` with no ``data`` and no ``errors``. An unknown path answers
``result: true`` with no data, as the real gateway's heartbeat fallback does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from soajs.gateway.state import RegistrationRejected, RegistryState
from soajs.gateway.wire import CONTROLLER_PACKAGE, CONTROLLER_VERSION, js_dumps, now_ms

__all__ = ["CallLog", "CallRecord", "create_maintenance_app", "envelope"]

logger = logging.getLogger("soajs.gateway")

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_MISSING: Any = object()


@dataclass(frozen=True)
class CallRecord:
    """One call the maintenance API received (kept for tests)."""

    route: str
    method: str
    query: dict[str, str]
    body: Any
    received_at: float


class CallLog:
    """The ``/getRegistry`` and ``/register`` calls received, safe to read from any thread."""

    ROUTES = ("/getRegistry", "/register")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        """Remember one call."""
        with self._lock:
            self._records.append(record)

    def all(self, route: str | None = None) -> list[CallRecord]:
        """Every call so far, or only those to ``route``."""
        with self._lock:
            return [item for item in self._records if route is None or item.route == route]

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._records.clear()


def envelope(route: str, result: bool, data: Any = _MISSING) -> dict[str, Any]:
    """The maintenance API's reply object."""
    reply: dict[str, Any] = {
        "result": result,
        "ts": now_ms(),
        "service": {
            "service": CONTROLLER_PACKAGE,
            "version": CONTROLLER_VERSION,
            "type": "rest",
            "route": route,
        },
    }
    if data is not _MISSING:
        reply["data"] = data
    return reply


def _reply(route: str, result: bool, data: Any = _MISSING) -> Response:
    return Response(js_dumps(envelope(route, result, data)), media_type="application/json")


def create_maintenance_app(state: RegistryState, calls: CallLog) -> Starlette:
    """The maintenance API as an ASGI app over ``state``."""

    async def get_registry(request: Request) -> Response:
        query = dict(request.query_params)
        calls.add(CallRecord("/getRegistry", request.method, query, None, time.time()))
        env = (query.get("env") or state.env).lower()
        if env != state.env:
            # The real gateway would load that environment from its database; there is none.
            logger.info("getRegistry for unknown environment %r refused", env)
            return _reply("/getRegistry", False)
        name = query.get("name") or query.get("serviceName")
        kind = query.get("type") or "service"
        return _reply("/getRegistry", True, state.registry_view(name, kind))

    async def register(request: Request) -> Response:
        raw = await request.body()
        body: Any
        if request.method == "POST" and raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        else:
            body = dict(request.query_params)
        calls.add(
            CallRecord("/register", request.method, dict(request.query_params), body, time.time())
        )
        if not isinstance(body, dict):
            logger.warning("register refused: the body is not a JSON object")
            return _reply("/register", False)
        try:
            entry = state.register(body)
        except RegistrationRejected as exc:
            logger.warning("register refused for %r: %s", body.get("name"), exc)
            return _reply("/register", False)
        logger.info(
            "registered %s v%s at %s:%s%s",
            body.get("name"),
            body.get("version"),
            body.get("ip"),
            entry.get("port"),
            " (mw)" if body.get("mw") else "",
        )
        return _reply("/register", True, entry)

    async def reload_registry(request: Request) -> Response:
        state.rebuild()
        logger.info("registry rebuilt; registrations without mw dropped")
        return _reply("/reloadRegistry", True, state.full_registry())

    async def awareness_stat(request: Request) -> Response:
        return _reply("/awarenessStat", True, state.awareness_view())

    async def fallback(request: Request) -> Response:
        # /heartbeat, /loadProvision and every unknown path: result true, no data.
        return _reply(request.url.path, True)

    return Starlette(
        routes=[
            Route("/getRegistry", get_registry, methods=_ALL_METHODS),
            Route("/register", register, methods=_ALL_METHODS),
            Route("/reloadRegistry", reload_registry, methods=_ALL_METHODS),
            Route("/awarenessStat", awareness_stat, methods=_ALL_METHODS),
            Route("/{path:path}", fallback, methods=_ALL_METHODS),
        ]
    )

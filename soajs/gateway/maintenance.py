"""The maintenance API (data port + ``maintenanceInc``): registry, registration, heartbeat.

Every reply is HTTP 200 with the real envelope ``{"result", "ts", "service", ["data"]}``; a
refusal is ``result: false`` with no ``data`` and no ``errors``. An unknown path answers
``result: true`` with no data, as the real gateway's heartbeat fallback does.

Unlike the real gateway, it guards itself for a laptop, where any web page can reach it: a
request sent by a browser is refused, ``/register`` takes only JSON, from loopback (or
``gateway.registerAllow``), within a size and nesting limit, and ``/reloadRegistry`` and
``/awarenessStat`` hide secrets. These refusals use the data port's error format and codes
190-197 (:data:`soajs.gateway.access.ERRORS`).
"""

from __future__ import annotations

import ipaddress
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

from soajs.gateway.access import ERRORS
from soajs.gateway.config import GatewayOptions
from soajs.gateway.proxy import error_payload
from soajs.gateway.registration_checks import (
    RegistrationInvalid,
    address_allowed,
    check_registration,
)
from soajs.gateway.registry_views import awareness_view, full_registry, registry_view
from soajs.gateway.state import RegistrationRejected, RegistryState
from soajs.gateway.wire import (
    CONTROLLER_PACKAGE,
    CONTROLLER_VERSION,
    js_dumps,
    now_ms,
    redact_secrets,
)

__all__ = ["BrowserRequestGuard", "CallLog", "CallRecord", "create_maintenance_app", "envelope"]

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


def _refuse(code: int) -> Response:
    return Response(error_payload(code), status_code=ERRORS[code][0], media_type="application/json")


def _from_a_browser(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a browser sent the request on behalf of a web page.

    Browsers send ``Origin`` with every cross-origin request and every POST, and
    ``Sec-Fetch-Site`` with every request; services, curl and the SOAJS libraries send neither.
    ``Sec-Fetch-Site: none`` (a URL typed in the address bar) is the user, not a page.
    """
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"origin":
            return True
        if lowered == b"sec-fetch-site" and value.lower() in (b"cross-site", b"same-site"):
            return True
    return False


def _host_name(host: str) -> str:
    """The name or address of a ``Host`` header, without its port or IPv6 brackets."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _known_host(headers: list[tuple[bytes, bytes]], names: frozenset[str]) -> bool:
    """Whether ``Host`` names this gateway: an IP address, ``localhost``, or a listed name.

    A page whose own domain was re-pointed at 127.0.0.1 (DNS rebinding) sends its requests as
    same-origin, without ``Origin``; only its ``Host`` header gives it away.
    """
    for name, value in headers:
        if name.lower() == b"host":
            host = _host_name(value.decode("latin-1").strip().lower())
            if host in names:
                return True
            try:
                ipaddress.ip_address(host)
            except ValueError:
                return False
            return True
    return True  # HTTP/1.0 without Host: no browser sends that


class BrowserRequestGuard:
    """Refuse what a web page can make a browser send: 403 with code 190, or 197 for a
    ``Host`` that is not this gateway's (DNS rebinding), before ``app`` sees the request.

    Args:
        app: the maintenance API.
        hosts: host names it answers to besides IP addresses and ``localhost``.
    """

    def __init__(self, app: Any, *, hosts: list[str] | None = None) -> None:
        self.app = app
        self.hosts = frozenset({"localhost", *(name.lower() for name in hosts or [])})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            code = None
            if _from_a_browser(scope["headers"]):
                code = 190
            elif not _known_host(scope["headers"], self.hosts):
                code = 197
            if code is not None:
                logger.warning("maintenance request from a web page refused: %s", scope["path"])
                await _refuse(code)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: Any, limit: int) -> bool:
    """Whether objects and arrays in ``value`` nest deeper than ``limit`` (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in children)
    return False


def _parse_object(raw: bytes, max_depth: int) -> dict[str, Any] | None:
    """A JSON object within the nesting limit, or None (NaN and Infinity are not JSON)."""
    try:
        parsed = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict) or _too_deep(parsed, max_depth):
        return None
    return parsed


async def _registration_body(request: Request, options: GatewayOptions) -> dict[str, Any]:
    """The ``/register`` payload, read within the limits of ``options``.

    Raises:
        RegistrationInvalid: 191 for a caller outside loopback and ``registerAllow``, 196 for
            the query form when it is off, 192 for a body that is not JSON, 193 for one over
            ``maintenanceMaxBody``, 194 for one that is not an object within
            ``maintenanceMaxDepth``.
    """
    peer = request.client.host if request.client is not None else ""
    if not address_allowed(peer, options.register_allow):
        raise RegistrationInvalid(
            191, f"the caller {peer} is not loopback nor inside gateway.registerAllow"
        )
    if request.method != "POST":
        if not options.register_query_form:
            raise RegistrationInvalid(196, "the query-string form is off (registerQueryForm)")
        return dict(request.query_params)
    if not _is_json(request.headers.get("content-type")):
        raise RegistrationInvalid(192, "the body is not application/json")
    raw = await _read_body(request, options.maintenance_max_body)
    if raw is None:
        raise RegistrationInvalid(
            193, f"the body is over maintenanceMaxBody ({options.maintenance_max_body} bytes)"
        )
    body = _parse_object(raw, options.maintenance_max_depth)
    if body is None:
        raise RegistrationInvalid(
            194,
            f"the body is not a JSON object nesting at most {options.maintenance_max_depth} deep",
        )
    return body


def create_maintenance_app(state: RegistryState, calls: CallLog) -> BrowserRequestGuard:
    """The maintenance API as an ASGI app over ``state``."""
    options = state.config.gateway

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
        return _reply("/getRegistry", True, registry_view(state, name, kind))

    async def register(request: Request) -> Response:
        try:
            body = await _registration_body(request, options)
            calls.add(
                CallRecord(
                    "/register", request.method, dict(request.query_params), body, time.time()
                )
            )
            check_registration(body, options.register_allow)
        except RegistrationInvalid as exc:
            logger.warning("register refused: %s", exc)
            return _refuse(exc.code)
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
        # Unlike /getRegistry, nobody needs the secrets from here: it only shows the result.
        return _reply("/reloadRegistry", True, redact_secrets(full_registry(state)))

    async def awareness_stat(request: Request) -> Response:
        return _reply("/awarenessStat", True, redact_secrets(awareness_view(state)))

    async def fallback(request: Request) -> Response:
        # /heartbeat, /loadProvision and every unknown path: result true, no data.
        return _reply(request.url.path, True)

    app = Starlette(
        routes=[
            Route("/getRegistry", get_registry, methods=_ALL_METHODS),
            Route("/register", register, methods=_ALL_METHODS),
            Route("/reloadRegistry", reload_registry, methods=_ALL_METHODS),
            Route("/awarenessStat", awareness_stat, methods=_ALL_METHODS),
            Route("/{path:path}", fallback, methods=_ALL_METHODS),
        ]
    )
    return BrowserRequestGuard(app, hosts=options.maintenance_hosts)

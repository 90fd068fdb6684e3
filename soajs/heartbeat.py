"""The ``/heartbeat`` responder the gateway health-checks, for any ASGI or WSGI server.

The gateway routes only to hosts that answer HTTP 200 on ``/heartbeat`` (first on the service
port + maintenanceInc, then on the service port) or on the registered ``maintenance.readiness``
path (docs/protocol.md §3.5). A service that answers neither is never reached: callers get the
gateway's error 133 ("not reachable at this moment"). The integrations mount these responders on
the service port.

The body mirrors the gateway's own maintenance replies, e.g.
``{"result": true, "ts": 1795684299062, "service": {"service": "hello", "type": "rest",
"route": "/heartbeat"}}``. Given a ``ready`` check (:func:`soajs.readiness.readiness_of`), the
responders answer 503 with the gateway's error body while it is false: an instance whose
registry has not loaded yet is not routed to.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from soajs.readiness import NOT_LOADED

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from soajs._asgi_types import (
        ASGIApp,
        Receive,
        Scope,
        Send,
        StartResponse,
        WSGIApplication,
        WSGIEnvironment,
    )
    from soajs.settings import Settings

__all__ = [
    "HEARTBEAT_PATH",
    "asgi_heartbeat",
    "heartbeat_body",
    "heartbeat_reply",
    "is_heartbeat",
    "make_asgi_heartbeat",
    "make_wsgi_heartbeat",
    "service_name_of",
    "wsgi_heartbeat",
]

HEARTBEAT_PATH = "/heartbeat"
_METHODS = ("GET", "HEAD")
_ALLOW = ", ".join(_METHODS)


def is_heartbeat(method: str, path: str) -> bool:
    """Tell whether a request is the gateway's health check: GET or HEAD on exactly /heartbeat."""
    return method in _METHODS and path == HEARTBEAT_PATH


def heartbeat_body(service_name: str | None = None) -> bytes:
    """The JSON reply, in the style of the gateway's maintenance API.

    Args:
        service_name: included as ``service.service`` when given.
    """
    service: dict[str, str] = {}
    if service_name is not None:
        service["service"] = service_name
    service.update(type="rest", route=HEARTBEAT_PATH)
    payload = {"result": True, "ts": time.time_ns() // 1_000_000, "service": service}
    return json.dumps(payload, separators=(",", ":")).encode()


def service_name_of(registry: object | None, settings: Settings) -> str | None:
    """The name a heartbeat reply gives: the registry's, else the settings'."""
    name = getattr(registry, "service_name", None) or settings.service_name
    return name if isinstance(name, str) else None


def _headers(body: bytes) -> list[tuple[str, str]]:
    # Probes must see the service's current state, never a cached answer.
    return [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]


def heartbeat_reply(
    service_name: str | None, ready: Callable[[], bool] | None
) -> tuple[int, bytes]:
    """The heartbeat's status and body: 200 and :func:`heartbeat_body`, or 503 while not ready."""
    if ready is not None and not ready():
        return NOT_LOADED.status, NOT_LOADED.body()
    return 200, heartbeat_body(service_name)


def make_asgi_heartbeat(
    service_name: str | None = None, ready: Callable[[], bool] | None = None
) -> ASGIApp:
    """Build a pure ASGI app that answers the heartbeat, naming ``service_name`` in its body.

    The app answers every HTTP request it receives (mount it where :func:`is_heartbeat` holds):
    200 JSON for GET and HEAD (503 while ``ready()`` is false), 405 otherwise. It also
    completes the lifespan protocol, so it can run on its own, e.g. as a separate
    maintenance-port listener.
    """

    async def heartbeat(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _run_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method in _METHODS:
            status, body = heartbeat_reply(service_name, ready)
            headers = _headers(body)
        else:
            body = b""
            status, headers = 405, [("allow", _ALLOW), ("content-length", "0")]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(name.encode(), value.encode()) for name, value in headers],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return heartbeat


async def _run_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_asgi_anonymous = make_asgi_heartbeat()


async def asgi_heartbeat(scope: Scope, receive: Receive, send: Send) -> None:
    """Pure ASGI heartbeat without a service name (see :func:`make_asgi_heartbeat`)."""
    await _asgi_anonymous(scope, receive, send)


def make_wsgi_heartbeat(
    service_name: str | None = None, ready: Callable[[], bool] | None = None
) -> WSGIApplication:
    """Build a PEP 3333 app that answers the heartbeat, naming ``service_name`` in its body.

    Like the ASGI app: 200 JSON for GET and HEAD (no body for HEAD; 503 while ``ready()`` is
    false), 405 for other methods.
    """

    def heartbeat(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in _METHODS:
            start_response("405 Method Not Allowed", [("Allow", _ALLOW), ("Content-Length", "0")])
            return []
        status, body = heartbeat_reply(service_name, ready)
        phrase = "200 OK" if status == 200 else f"{status} Service Unavailable"
        start_response(phrase, [(name.title(), value) for name, value in _headers(body)])
        return [] if method == "HEAD" else [body]

    return heartbeat


_wsgi_anonymous = make_wsgi_heartbeat()


def wsgi_heartbeat(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """PEP 3333 heartbeat without a service name (see :func:`make_wsgi_heartbeat`)."""
    return _wsgi_anonymous(environ, start_response)

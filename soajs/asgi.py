"""Pure ASGI middleware: the SOAJS request context for Starlette, FastAPI or any ASGI app.

Per HTTP request and WebSocket connection it captures the scope in a
:class:`~soajs.request.RequestContext` (nothing is read, decoded or parsed until someone asks:
the ``soajsinjectobj`` header, ``access_token``, ``traceparent``/``tracestate`` and the client
address), stores it in the scope as
``scope["soajs.request"]``, and makes it current (:func:`soajs.current_context`) for the
downstream call. Its ``.context`` is the parsed :class:`~soajs.models.context.ContextData`,
parsed on first read; ``soajs.middleware.get_soajs_context(request)`` reads it too.

The header policy (``SOAJS_HEADER_POLICY``, ``SOAJS_TRUSTED_GATEWAYS``, ``trust_header``) and
its rejections (status, gateway code, message; a WebSocket is closed with 1008 before it is
accepted) are :mod:`soajs.header_policy`'s, shared with the WSGI and Django middlewares and the
FastAPI dependency.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from soajs.current import request_var
from soajs.header_policy import HeaderGuard, Rejection
from soajs.heartbeat import HEARTBEAT_PATH, is_heartbeat, make_asgi_heartbeat, service_name_of
from soajs.readiness import readiness_of
from soajs.request import REQUEST_KEY
from soajs.settings import resolve_settings

if TYPE_CHECKING:
    from soajs._asgi_types import ASGIApp, Receive, Scope, Send
    from soajs.settings import Settings

__all__ = ["SOAJSMiddleware", "SoajsASGIMiddleware"]

logger = logging.getLogger("soajs.asgi")

# request_var's own methods, bound once: a name bound by an import is called through a fresh
# bound method each time (CPython skips LOAD_METHOD for it). They act on the calling context.
_set_current = request_var.set
_reset_current = request_var.reset

# RFC 6455 close code for a message that violates the endpoint's policy.
_POLICY_VIOLATION = 1008


class SoajsASGIMiddleware:
    """Give every HTTP request and WebSocket its SOAJS context (see the module docstring).

    Args:
        app: the ASGI application to wrap.
        settings: header policy, trusted gateways and size limit; by default the registry's
            settings, else read from the ``SOAJS_*`` environment variables.
        registry: the service's :class:`~soajs.RegistryManager`; it names the heartbeat reply.
        trust_header: ``False`` for a public (``extKeyRequired: false``) service: the header is
            then never trusted, since the gateway passes a client's own through.
        heartbeat: answer ``GET``/``HEAD /heartbeat`` before the app sees it: 200, or 503
            while the registry has not loaded (:mod:`soajs.readiness`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | None = None,
        registry: object | None = None,
        trust_header: bool = True,
        heartbeat: bool = True,
    ) -> None:
        self.app = app
        self.registry = registry
        self.settings = resolve_settings(settings, registry)
        self.guard = HeaderGuard(self.settings, trust_header=trust_header)
        self.heartbeat: ASGIApp | None = None
        if heartbeat:
            self.heartbeat = make_asgi_heartbeat(
                service_name_of(registry, self.settings), readiness_of(registry)
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if (
                path == HEARTBEAT_PATH
                and self.heartbeat is not None
                and is_heartbeat(scope["method"], path)
            ):
                await self.heartbeat(scope, receive, send)
                return
        elif kind != "websocket":
            await self.app(scope, receive, send)
            return

        request = self.guard.admit_scope(scope)
        if isinstance(request, Rejection):
            if kind == "http":
                await _refuse(request, send)
            else:
                await _refuse_websocket(request, send)
            return
        scope[REQUEST_KEY] = request
        token = _set_current(request)
        try:
            await self.app(scope, receive, send)
        finally:
            _reset_current(token)


async def _refuse(refused: Rejection, send: Send) -> None:
    """Answer with the gateway's error body instead of calling the app."""
    logger.info("refused a request (%s): %s", refused.code, refused.message)
    body = refused.body()
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(refused: Rejection, send: Send) -> None:
    """Close the WebSocket before accepting it: the server answers the handshake with 403."""
    logger.info("refused a websocket (%s): %s", refused.code, refused.message)
    await send({"type": "websocket.close", "code": _POLICY_VIOLATION})


SOAJSMiddleware = SoajsASGIMiddleware
"""The seed's name: ``app.add_middleware(SOAJSMiddleware, registry=registry)``."""

"""PEP 3333 middleware: the SOAJS request context for Flask or any WSGI app.

The same semantics as :mod:`soajs.asgi` (the header policy and rejections of
:mod:`soajs.header_policy`, ``trust_header``, ``/heartbeat``), for WSGI. Per request it
captures the ``soajsinjectobj`` value (a Latin-1 ``str``, per PEP 3333), ``access_token``
(query string, then header), ``traceparent``/``tracestate`` and ``REMOTE_ADDR`` into a
:class:`~soajs.request.RequestContext`, makes it current for the app call, and passes a copy of
the environ (:class:`~soajs.request.SoajsEnviron`) where ``environ["soajs.request"]`` is the
request context and ``environ["soajs.context"]`` the parsed
:class:`~soajs.models.context.ContextData` (the seed's key), parsed on first read.

The current request is reset when the app returns its response. A generator body runs later,
while the server sends it: wrap it in :func:`soajs.stream_with_context` when its code reads the
context, as Flask's own request context needs ``flask.stream_with_context``. Nothing else pays
for streaming.

Some WSGI servers drop headers whose names contain ``_`` (gunicorn by default), so an
``access_token`` *header* may never arrive; the ``?access_token=`` query form always does.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import TYPE_CHECKING

from soajs.current import request_var
from soajs.header_policy import HeaderGuard, Rejection
from soajs.heartbeat import HEARTBEAT_PATH, is_heartbeat, make_wsgi_heartbeat, service_name_of
from soajs.readiness import readiness_of
from soajs.request import REQUEST_KEY, SoajsEnviron
from soajs.settings import resolve_settings

if TYPE_CHECKING:
    from collections.abc import Iterable

    from soajs._asgi_types import StartResponse, WSGIApplication, WSGIEnvironment
    from soajs.settings import Settings

__all__ = ["SOAJSWSGIMiddleware", "SoajsWSGIMiddleware"]

logger = logging.getLogger("soajs.wsgi")

# request_var's own methods, bound once: a name bound by an import is called through a fresh
# bound method each time (CPython skips LOAD_METHOD for it). They act on the calling context.
_set_current = request_var.set
_reset_current = request_var.reset


class SoajsWSGIMiddleware:
    """Give every request its SOAJS context (see :mod:`soajs.asgi` for the policy).

    Args:
        app: the WSGI application to wrap (Flask: ``app.wsgi_app``).
        registry: the service's :class:`~soajs.RegistryManager`; it names the heartbeat reply.
            Positional, as in the seed: ``SOAJSWSGIMiddleware(app.wsgi_app, registry)``.
        settings: header policy, trusted gateways and size limit; by default the registry's
            settings, else read from the ``SOAJS_*`` environment variables.
        trust_header: ``False`` for a public (``extKeyRequired: false``) service.
        heartbeat: answer ``GET``/``HEAD /heartbeat`` before the app sees it: 200, or 503
            while the registry has not loaded (:mod:`soajs.readiness`).
        environ_context: provide the seed's ``environ["soajs.context"]``, parsed on first
            read. That takes a copy of the environ in a ``dict`` subclass whose ``get`` is
            Python code (its cost: docs/performance.md, P1). ``False`` passes the server's
            own environ (the plain ``dict`` PEP 3333 asks for, which ``wsgiref.validate``
            checks) with only ``environ["soajs.request"]`` added; ``current_context()``,
            ``get_soajs_context`` and the Flask integration's providers work the same.
    """

    def __init__(
        self,
        app: WSGIApplication,
        registry: object | None = None,
        *,
        settings: Settings | None = None,
        trust_header: bool = True,
        heartbeat: bool = True,
        environ_context: bool = True,
    ) -> None:
        self.app = app
        self.environ_context = environ_context
        self.registry = registry
        self.settings = resolve_settings(settings, registry)
        self.guard = HeaderGuard(self.settings, trust_header=trust_header)
        self.heartbeat: WSGIApplication | None = None
        if heartbeat:
            self.heartbeat = make_wsgi_heartbeat(
                service_name_of(registry, self.settings), readiness_of(registry)
            )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request."""
        path = environ.get("PATH_INFO", "")
        if (
            path == HEARTBEAT_PATH
            and self.heartbeat is not None
            and is_heartbeat(environ.get("REQUEST_METHOD", "GET"), path)
        ):
            return self.heartbeat(environ, start_response)

        request = self.guard.admit_environ(environ)
        if isinstance(request, Rejection):
            logger.info("refused a request (%s): %s", request.code, request.message)
            body = request.body()
            start_response(
                f"{request.status} {HTTPStatus(request.status).phrase}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        app_environ: WSGIEnvironment
        if self.environ_context:
            app_environ = SoajsEnviron(environ)
        else:
            # Stored in the server's own dict, the request must not refer back to that dict.
            request.read_now()
            app_environ = environ
        app_environ[REQUEST_KEY] = request
        token = _set_current(request)
        try:
            return self.app(app_environ, start_response)
        finally:
            _reset_current(token)


SOAJSWSGIMiddleware = SoajsWSGIMiddleware
"""The seed's name: ``app.wsgi_app = SOAJSWSGIMiddleware(app.wsgi_app, registry)``."""

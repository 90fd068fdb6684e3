"""The request context's historical import path: ``from soajs.context import current_context``.

Each name lives in the module that owns its job, and is importable here as before:

- :mod:`soajs.request`: :class:`RequestContext` (capture one request, parse on first read),
  :class:`SoajsEnviron`, :data:`REQUEST_KEY`, :data:`WSGI_CONTEXT_KEY`,
  :func:`query_access_token`, :func:`current_context`;
- :mod:`soajs.current`: the request being served (:func:`current_request`,
  :func:`set_current_request`, :func:`reset_current_request`, :func:`stream_with_context`);
- :mod:`soajs.header_policy`: :class:`HeaderGuard` and :class:`Rejection`, whether a request
  is served;
- :func:`soajs.settings.resolve_settings` and :func:`soajs.heartbeat.service_name_of`.
"""

from __future__ import annotations

from soajs.current import (
    current_request,
    reset_current_request,
    set_current_request,
    stream_with_context,
)
from soajs.header_policy import HeaderGuard, Rejection
from soajs.heartbeat import service_name_of
from soajs.request import (
    REQUEST_KEY,
    WSGI_CONTEXT_KEY,
    RequestContext,
    SoajsEnviron,
    current_context,
    query_access_token,
)
from soajs.settings import resolve_settings

__all__ = [
    "REQUEST_KEY",
    "WSGI_CONTEXT_KEY",
    "HeaderGuard",
    "Rejection",
    "RequestContext",
    "SoajsEnviron",
    "current_context",
    "current_request",
    "query_access_token",
    "reset_current_request",
    "resolve_settings",
    "service_name_of",
    "set_current_request",
    "stream_with_context",
]

"""The seed's import path: ``from soajs.middleware import SOAJSMiddleware, get_soajs_context``.

``SOAJSMiddleware`` is :class:`soajs.asgi.SoajsASGIMiddleware`, ``SOAJSWSGIMiddleware`` is
:class:`soajs.wsgi.SoajsWSGIMiddleware`, and ``ServiceConnector`` is
:class:`soajs.connector.ServiceConnector` (imported on first use).
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from typing import TYPE_CHECKING, Any

from soajs.asgi import SoajsASGIMiddleware, SOAJSMiddleware
from soajs.models.context import ContextData
from soajs.request import REQUEST_KEY, WSGI_CONTEXT_KEY, RequestContext
from soajs.wsgi import SOAJSWSGIMiddleware, SoajsWSGIMiddleware

if TYPE_CHECKING:
    from soajs.connector import ServiceConnector

_UPSTREAM_SCOPE_KEY = "soajs"
"""Where the upstream Python middleware stored an (eagerly parsed) context in the ASGI scope."""

__all__ = [
    "ContextGetter",
    "SOAJSMiddleware",
    "SOAJSWSGIMiddleware",
    "ServiceConnector",
    "SoajsASGIMiddleware",
    "SoajsWSGIMiddleware",
    "get_soajs_context",
]


class ContextGetter:
    """The type of :data:`get_soajs_context`: a plain function that FastAPI can also inject.

    FastAPI reads a dependency's parameters from its signature; this one's parameter is typed
    ``starlette.requests.HTTPConnection`` (looked up only when FastAPI asks, so this module
    imports no framework), which FastAPI fills with the request. FastAPI runs such a sync
    dependency in its threadpool: :func:`soajs.fastapi.get_soajs_context` is the same
    dependency as a coroutine, without the thread hop.
    """

    __slots__ = ()

    def __call__(self, request: Any) -> ContextData | None:
        """The SOAJS context of a framework request, or ``None`` when it has none.

        Works with a Starlette/FastAPI ``Request`` (its ``scope``), a Flask/werkzeug request
        (its ``environ``), a Django request handled by :class:`soajs.django.SoajsMiddleware`
        (``request.soajs``), or a bare ASGI scope or WSGI environ. The header is parsed here if
        nothing read it before; a missing or unusable header gives ``None``, never an error.
        """
        for attribute, alias in (("scope", _UPSTREAM_SCOPE_KEY), ("environ", WSGI_CONTEXT_KEY)):
            mapping = getattr(request, attribute, None)
            if isinstance(mapping, dict):
                return _from_mapping(mapping, alias)
        if isinstance(request, dict):
            alias = _UPSTREAM_SCOPE_KEY if "type" in request else WSGI_CONTEXT_KEY
            return _from_mapping(request, alias)
        found = getattr(request, "soajs", None)
        return found if isinstance(found, ContextData) else None

    @property
    def __signature__(self) -> inspect.Signature:
        """What FastAPI reads: one ``request`` parameter typed as Starlette's connection."""
        return _dependency_signature()

    def __repr__(self) -> str:
        return "soajs.middleware.get_soajs_context"


@cache
def _dependency_signature() -> inspect.Signature:
    try:
        from starlette.requests import (
            HTTPConnection,  # only when FastAPI asks: no framework at import
        )
    except ImportError:
        annotation: Any = Any
    else:
        annotation = HTTPConnection
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature(
        [request.replace(annotation=annotation)], return_annotation=ContextData | None
    )


get_soajs_context = ContextGetter()
"""``get_soajs_context(request)``: the SOAJS context of any framework's request, or ``None``.

Also a FastAPI dependency: ``context: ContextData | None = Depends(get_soajs_context)``.
"""


def _from_mapping(mapping: dict[str, Any], alias: str) -> ContextData | None:
    found = mapping.get(REQUEST_KEY)
    if isinstance(found, RequestContext):
        return found.context
    stored = mapping.get(alias)
    return stored if isinstance(stored, ContextData) else None


def __getattr__(name: str) -> Any:
    """Import ``ServiceConnector`` from :mod:`soajs.connector` on first use."""
    if name == "ServiceConnector":
        value = importlib.import_module("soajs.connector").ServiceConnector
        globals()[name] = value
        return value
    raise AttributeError(f"module 'soajs.middleware' has no attribute {name!r}")

"""The request being served: one :class:`~contextvars.ContextVar` and its small public API.

The middlewares make each request's :class:`~soajs.request.RequestContext` current for the
downstream call and reset it when the call returns. A ``ContextVar`` follows asyncio tasks, the
threads Starlette runs sync handlers in, and WSGI worker threads; :func:`stream_with_context`
carries it into a streamed WSGI body.

- read: :func:`current_request`; the request's context: :func:`soajs.current_context`
  (:func:`soajs.request.current_context`, beside the cache it reads);
- set and reset (custom integrations, tests): :func:`set_current_request` /
  :func:`reset_current_request`, or :data:`request_var` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from soajs.request import RequestContext

__all__ = [
    "current_request",
    "request_var",
    "reset_current_request",
    "set_current_request",
    "stream_with_context",
]

request_var: ContextVar[RequestContext | None] = ContextVar("soajs_request", default=None)
"""The request being served, or ``None``. Set it with ``token = request_var.set(request)`` and
always reset it with ``request_var.reset(token)`` when the call returns (what the middlewares
do); :func:`set_current_request` and :func:`reset_current_request` are the same two steps."""

_END: Any = object()
_Chunk = TypeVar("_Chunk")


def current_request() -> RequestContext | None:
    """The :class:`~soajs.request.RequestContext` of the request being served, or ``None``."""
    return request_var.get()


def set_current_request(request: RequestContext | None) -> Token[RequestContext | None]:
    """Make ``request`` current; pass the returned token to :func:`reset_current_request`."""
    return request_var.set(request)


def reset_current_request(token: Token[RequestContext | None]) -> None:
    """Restore what was current before the matching :func:`set_current_request`."""
    request_var.reset(token)


def stream_with_context(body: Iterable[_Chunk]) -> Iterator[_Chunk]:
    """Make the current request current again while a streamed response body is produced.

    A WSGI generator body runs after the app returned, when the server sends it, so the
    middleware no longer holds the request current there (like Flask's own request context,
    which needs ``flask.stream_with_context``). Wrap such a body when its code reads
    :func:`soajs.current_context` or builds a :class:`~soajs.ServiceConnector`::

        return Response(soajs.stream_with_context(generate()))

    Call it inside the request: it captures the request that is current then, and makes it
    current around each chunk only, so nothing stays current between chunks or after the
    server stops iterating. ASGI streaming responses run inside the request and need no wrapper.
    """
    return _chunks_with(request_var.get(), body, iter(body))


def _chunks_with(
    request: RequestContext | None, body: Iterable[_Chunk], chunks: Iterator[_Chunk]
) -> Iterator[_Chunk]:
    """Yield ``chunks``, each produced with ``request`` current; close ``body`` when done."""
    try:
        while True:
            token = request_var.set(request)
            try:
                # A sentinel rather than StopIteration: next() returns it without raising.
                chunk = next(chunks, _END)
            finally:
                request_var.reset(token)
            if chunk is _END:
                return
            yield chunk
    finally:
        # Closed by the server (PEP 3333), exhausted or dropped: the body's own clean-up runs
        # too, with the request current, as its chunks did.
        close = getattr(body, "close", None)
        if close is not None:
            token = request_var.set(request)
            try:
                close()
            finally:
                request_var.reset(token)

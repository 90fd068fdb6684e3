"""Capture one request: what :class:`RequestContext` keeps, and its header parsed on first read.

The middlewares build one :class:`RequestContext` per request (:mod:`soajs.header_policy`
decides whether it is served). Capturing keeps references to the request's headers (a few
attribute stores): they are read the first time a value is asked for, and the
``soajsinjectobj`` header is decoded and validated the first time
:attr:`RequestContext.context` is read, and never again.

Where handlers find it:

- anywhere: :func:`current_context` (``soajs.current_context``) /
  :func:`soajs.current.current_request`;
- ASGI: ``scope["soajs.request"]``, the :class:`RequestContext` (its ``.context`` is the
  :class:`~soajs.models.context.ContextData`), or ``soajs.middleware.get_soajs_context(request)``;
- WSGI: ``environ["soajs.request"]`` and ``environ["soajs.context"]`` (the seed's key, resolved
  lazily by :class:`SoajsEnviron`).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import parse_qs

from soajs.current import request_var
from soajs.errors import InjectHeaderError
from soajs.inject import DEFAULT_MAX_SIZE, parse_inject_header
from soajs.models.context import ContextData

if TYPE_CHECKING:
    from soajs.header_policy import HeaderGuard

__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "REQUEST_KEY",
    "WSGI_CONTEXT_KEY",
    "RequestContext",
    "SoajsEnviron",
    "current_context",
    "query_access_token",
]

logger = logging.getLogger("soajs.context")

REQUEST_KEY: Final = "soajs.request"
"""Key of the :class:`RequestContext` in an ASGI scope or a WSGI environ."""

WSGI_CONTEXT_KEY: Final = "soajs.context"
"""Key that resolves to the :class:`ContextData` in a WSGI environ (the seed's location)."""

_INJECT_HEADER: Final = b"soajsinjectobj"
_TRACEPARENT: Final = b"traceparent"
_TRACESTATE: Final = b"tracestate"
_ACCESS_TOKEN: Final = b"access_token"
_AUTHORIZATION: Final = b"authorization"
_X_REQUEST_ID: Final = b"x-request-id"

MAX_REQUEST_ID_LENGTH: Final = 128
"""The longest incoming ``x-request-id`` kept; a longer one is replaced by a generated id."""

# A request id is logged and forwarded as a header: word characters and a few separators only,
# so it can carry no control character, blank or quote into a log line or a header.
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_REQUEST_ID_LENGTH}}}")
# W3C trace context: version "-" 32 lowercase hex trace id (not all zeros) "-" parent id "-" flags.
_TRACE_ID = re.compile(r"[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")

# request_var's own getter, bound once: a name bound by an import is called through a fresh
# bound method each time (CPython skips LOAD_METHOD for it). It acts on the calling context.
_get_current = request_var.get
_UNRESOLVED: Any = object()
_new_request = object.__new__


class RequestContext:
    """What the middleware captured for one request, with a lazy, cached :attr:`context`.

    Build it with keyword values (tests, custom integrations), or let the middlewares build
    it from an ASGI scope (:meth:`from_scope`) or a WSGI environ (:meth:`from_environ`): then
    it only keeps a reference to the request and its :class:`~soajs.header_policy.HeaderGuard`,
    and reads the headers, the peer and the trust decision the first time one of them is
    asked for. Reading is idempotent, so two threads reading at once at worst work it out
    twice and agree.

    Attributes:
        peer: the client address the server saw (the gateway's, behind a gateway), or ``None``.
        trusted: whether the header may be trusted; when false the header is treated as
            absent (an untrusted peer, or a public service built with ``trust_header=False``).
        max_size: the largest header accepted, in bytes.
    """

    # The middlewares set the request's source; the read values are set by _capture() on first
    # use, and the context slot by _resolve(). Nothing here refers back to the scope or environ
    # the request is stored in: no reference cycle to leave to the collector.
    __slots__ = (
        "_access_token",
        "_authorization",
        "_captured",
        "_client",
        "_context",
        "_duplicates",
        "_environ",
        "_error",
        "_guard",
        "_headers",
        "_max_size",
        "_peer",
        "_query",
        "_raw",
        "_request_id",
        "_traceparent",
        "_tracestate",
        "_trusted",
        "_x_request_id",
    )
    _headers: list[tuple[bytes, bytes]] | None
    _query: bytes
    _client: tuple[str, int] | None
    _environ: Mapping[str, Any]
    _guard: HeaderGuard
    _captured: bool
    _raw: bytes | str | None
    _duplicates: int
    _access_token: str | None
    _authorization: str | None
    _traceparent: str | None
    _tracestate: str | None
    _x_request_id: str | None
    _request_id: str | None
    _peer: str | None
    _trusted: bool
    _max_size: int
    _context: ContextData | None
    _error: InjectHeaderError | None

    SCOPE_KEY: ClassVar[str] = REQUEST_KEY
    ENVIRON_KEY: ClassVar[str] = REQUEST_KEY

    def __init__(
        self,
        raw_header: bytes | str | None = None,
        *,
        access_token: str | None = None,
        authorization: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
        x_request_id: str | None = None,
        peer: str | None = None,
        trusted: bool = True,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self._raw = raw_header
        self._duplicates = 0
        self._access_token = access_token
        self._authorization = authorization
        self._traceparent = traceparent
        self._tracestate = tracestate
        self._x_request_id = x_request_id
        self._request_id = None
        self._peer = peer
        self._trusted = trusted
        self._max_size = max_size
        self._captured = True
        self._context = _UNRESOLVED
        self._error = None

    @classmethod
    def from_scope(cls, scope: Any, guard: HeaderGuard) -> RequestContext:
        """Capture an ASGI HTTP scope under ``guard``'s policy; nothing is decoded until asked."""
        self = _new_request(cls)
        self._headers = scope["headers"]
        self._query = scope.get("query_string", b"")
        self._client = scope.get("client")
        self._guard = guard
        self._captured = False
        self._context = _UNRESOLVED
        self._request_id = None
        return self

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any], guard: HeaderGuard) -> RequestContext:
        """Capture a WSGI environ (or Django's ``request.META``) under ``guard``'s policy.

        Pass the environ the server gave, not a copy the request is stored in: the values are
        read from it later, as they arrived.
        """
        self = _new_request(cls)
        self._headers = None
        self._environ = environ
        self._guard = guard
        self._captured = False
        self._context = _UNRESOLVED
        self._request_id = None
        return self

    def __repr__(self) -> str:
        # Never the header (it carries keys) nor the token or the Authorization value.
        state = "parsed" if self.parsed else "unparsed"
        return f"RequestContext(peer={self.peer!r}, trusted={self.trusted}, header {state})"

    def read_now(self) -> None:
        """Read what is kept from the scope or environ now, and drop the reference to it.

        For a request stored in the server's own environ, which would otherwise refer back to
        the dict that holds it (a reference cycle per request for the collector).
        """
        if not self._captured:
            self._capture()

    @property
    def peer(self) -> str | None:
        """The client address the server saw, or ``None`` (a Unix socket, or not given)."""
        if not self._captured:
            self._capture()
        return self._peer

    @property
    def trusted(self) -> bool:
        """Whether the header may be trusted (see the class docstring)."""
        if not self._captured:
            self._capture()
        return self._trusted

    @property
    def max_size(self) -> int:
        """The largest header accepted, in bytes."""
        if not self._captured:
            self._capture()
        return self._max_size

    @property
    def raw_header(self) -> bytes | None:
        """The ``soajsinjectobj`` value as received (Latin-1 bytes), or ``None`` if absent or
        untrusted."""
        if not self._captured:
            self._capture()
        if not self._trusted:
            return None
        raw = self._raw
        if isinstance(raw, str):
            return raw.encode("latin-1", "replace")
        return raw

    @property
    def access_token(self) -> str | None:
        """The caller's ``access_token`` (query string first, then header), as soajs core reads
        it."""
        if not self._captured:
            self._capture()
        return self._access_token

    @property
    def authorization(self) -> str | None:
        """The incoming ``Authorization`` header (``Bearer <token>`` of a logged-in user),
        forwarded on gateway calls; never shown by :func:`repr`."""
        if not self._captured:
            self._capture()
        return self._authorization

    @property
    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` header, forwarded on calls to other services."""
        if not self._captured:
            self._capture()
        return self._traceparent

    @property
    def tracestate(self) -> str | None:
        """The W3C ``tracestate`` header, forwarded with ``traceparent``."""
        if not self._captured:
            self._capture()
        return self._tracestate

    @property
    def x_request_id(self) -> str | None:
        """The incoming ``x-request-id`` header as received, or ``None``."""
        if not self._captured:
            self._capture()
        return self._x_request_id

    @property
    def request_id(self) -> str:
        """The id that names this request in logs and on the calls it makes.

        The trace id of a valid W3C ``traceparent`` (32 hex digits), else a well-formed incoming
        ``x-request-id`` (at most :data:`MAX_REQUEST_ID_LENGTH` characters among letters,
        digits and ``._:@/+=-``), else a random UUID4 in hex, made once per request.
        """
        request_id = self._request_id
        if request_id is None:
            request_id = self._request_id = _request_id_of(self.traceparent, self.x_request_id)
        return request_id

    @property
    def context(self) -> ContextData | None:
        """The parsed header; ``None`` when it is absent, untrusted or invalid (see
        :attr:`error`)."""
        context = self._context
        if context is _UNRESOLVED:
            context = self._resolve()
        return context

    @property
    def error(self) -> InjectHeaderError | None:
        """Why a present, trusted header gave no context; ``None`` otherwise."""
        if self._context is _UNRESOLVED:
            self._resolve()
        return self._error

    @property
    def parsed(self) -> bool:
        """Whether :attr:`context` has been worked out (the header is parsed at most once)."""
        return self._context is not _UNRESOLVED

    @property
    def has_header(self) -> bool:
        """Whether the request carried a ``soajsinjectobj`` header, trusted or not."""
        if not self._captured:
            self._capture()
        return self._raw is not None

    def _resolve(self) -> ContextData | None:
        if not self._captured:
            self._capture()
        raw = self._raw
        context = None
        if raw is not None and self._trusted:
            try:
                context = self._parse(raw)
            except InjectHeaderError as exc:
                self._error = exc
                logger.warning(
                    "ignored the soajsinjectobj header from %s (%s): %s", self._peer, exc.code, exc
                )
        self._context = context
        return context

    def _parse(self, raw: bytes | str) -> ContextData:
        duplicates = self._duplicates
        # The lines are joined as WSGI servers join them and measured first, so two lines get
        # the same answer on every server: 431 when together they are too large, else 400.
        if duplicates and len(raw) <= self._max_size:
            raise InjectHeaderError(
                f"the request has {duplicates + 1} soajsinjectobj headers; the gateway sends one",
                code="duplicate",
            )
        return parse_inject_header(raw, max_size=self._max_size)

    def _capture(self) -> None:
        """Read what this class needs from the scope or environ, and apply the guard, once."""
        headers = self._headers
        if headers is not None:
            self._capture_headers(headers)
            self._headers = None
        else:
            self._capture_environ(self._environ)
            del self._environ  # read once: no reference kept to the server's dict
        guard = self._guard
        self._trusted = guard.is_trusted(self._peer)
        self._max_size = guard.max_size
        self._error = None
        self._captured = True

    def _capture_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._traceparent = self._tracestate = self._authorization = header_token = raw = None
        self._x_request_id = None
        duplicates = 0
        for name, value in headers:
            if name == _INJECT_HEADER:
                if raw is None:
                    raw = value
                else:
                    # Never "the last one wins": a client could append a forged line.
                    raw += b"," + value
                    duplicates += 1
            elif name == _TRACEPARENT:
                self._traceparent = value.decode("latin-1")
            elif name == _TRACESTATE:
                self._tracestate = value.decode("latin-1")
            elif name == _ACCESS_TOKEN:
                header_token = value.decode("latin-1")
            elif name == _AUTHORIZATION:
                self._authorization = value.decode("latin-1")
            elif name == _X_REQUEST_ID:
                self._x_request_id = value.decode("latin-1")
        self._raw = raw
        self._duplicates = duplicates
        self._access_token = query_access_token(self._query) or header_token
        client = self._client
        self._peer = client[0] if client else None

    def _capture_environ(self, environ: Mapping[str, Any]) -> None:
        # The header is kept as the Latin-1 text PEP 3333 gives; nothing is parsed here.
        get = environ.get
        # Two header lines arrive joined with "," (PEP 3333 servers, Django): never one JSON
        # object when either line is the gateway's whole header, so the parser refuses it.
        self._raw = get("HTTP_SOAJSINJECTOBJ")
        self._duplicates = 0
        query = get("QUERY_STRING")
        # An empty query string (most requests) has no token: no call to find none.
        from_query = query_access_token(query) if query else None
        self._access_token = from_query or get("HTTP_ACCESS_TOKEN")
        self._authorization = get("HTTP_AUTHORIZATION")
        self._traceparent = get("HTTP_TRACEPARENT")
        self._tracestate = get("HTTP_TRACESTATE")
        self._x_request_id = get("HTTP_X_REQUEST_ID")
        self._peer = get("REMOTE_ADDR") or None


def current_context() -> ContextData | None:
    """The SOAJS context of the request being served (:data:`soajs.current.request_var`).

    Returns ``None`` outside a request, or when the request has no valid, trusted header. It
    lives beside :class:`RequestContext` because it reads the request's cached context directly.
    """
    request = _get_current()
    if request is None:
        return None
    # The context property's own body: safe here, the module that keeps that cache.
    context = request._context
    if context is _UNRESOLVED:
        return request._resolve()
    return context


def _request_id_of(traceparent: str | None, x_request_id: str | None) -> str:
    if traceparent:
        trace = _TRACE_ID.fullmatch(traceparent.strip())
        if trace is not None:
            return trace.group(1)
    if x_request_id and _REQUEST_ID.fullmatch(x_request_id):
        return x_request_id
    return uuid.uuid4().hex


def query_access_token(query: bytes | str) -> str | None:
    """The ``access_token`` query parameter of a raw query string, if any."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    if "access_token=" not in text:
        return None
    values = parse_qs(text, keep_blank_values=False).get("access_token")
    return values[0] if values else None


_Contains = Callable[[dict[str, Any], object], bool]


class SoajsEnviron(dict[str, Any]):
    """A copy of a WSGI environ in which ``"soajs.context"`` resolves lazily to the context.

    The key is computed from ``self["soajs.request"]`` on ``[]``, ``get`` and ``in`` (so the
    header is parsed only if someone asks); it is absent from iteration and from plain-``dict``
    copies, which keep ``"soajs.request"``. Every other key is a plain ``dict`` lookup. The
    frameworks call ``get`` and ``in`` many times per request, so those bind what they need
    as default arguments: no attribute lookup on the hot path.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> Any:
        if key == WSGI_CONTEXT_KEY:
            context = self._context()
            if context is not None:
                return context
        raise KeyError(key)

    def get(self, key: str, default: Any = None, _get: Any = dict.get) -> Any:
        """``dict.get``, resolving ``"soajs.context"`` lazily."""
        if key != WSGI_CONTEXT_KEY:
            return _get(self, key, default)
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        context = self._context()
        return default if context is None else context

    def __contains__(self, key: object, _contains: _Contains = dict.__contains__) -> bool:
        if key != WSGI_CONTEXT_KEY:
            return _contains(self, key)
        return _contains(self, key) or self._context() is not None

    def _context(self) -> ContextData | None:
        request = dict.get(self, REQUEST_KEY)
        return request.context if isinstance(request, RequestContext) else None

"""Per-request state: what the middleware captured, parsed only when someone asks.

The middlewares build one :class:`RequestContext` per request and make it current for the
downstream call (a :class:`~contextvars.ContextVar`, so it follows asyncio tasks, the threads
Starlette runs sync handlers in, and WSGI worker threads; :func:`stream_with_context` carries
it into a streamed WSGI body). Capturing keeps references to the request's headers (a few
attribute stores): they are read the first time a value is asked for, and the
``soajsinjectobj`` header is decoded and validated the first time
:attr:`RequestContext.context` (or :func:`current_context`) is read, and never again.

Where handlers find it:

- anywhere: :func:`current_context` / :func:`current_request`;
- ASGI: ``scope["soajs.request"]``, the :class:`RequestContext` (its ``.context`` is the
  :class:`~soajs.models.context.ContextData`), or ``soajs.middleware.get_soajs_context(request)``;
- WSGI: ``environ["soajs.request"]`` and ``environ["soajs.context"]`` (the seed's key, resolved
  lazily by :class:`SoajsEnviron`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from typing import Any, ClassVar, Final, NamedTuple, TypeVar
from urllib.parse import parse_qs

from soajs.errors import InjectHeaderError
from soajs.inject import DEFAULT_MAX_SIZE, parse_inject_header
from soajs.models.context import ContextData
from soajs.settings import Settings

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
    "set_current_request",
    "stream_with_context",
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

_UNRESOLVED: Any = object()
_END: Any = object()
_new_request = object.__new__
_Chunk = TypeVar("_Chunk")


class RequestContext:
    """What the middleware captured for one request, with a lazy, cached :attr:`context`.

    Build it with keyword values (tests, custom integrations), or let the middlewares build
    it from an ASGI scope (:meth:`from_scope`) or a WSGI environ (:meth:`from_environ`): then
    it only keeps a reference to the request and its :class:`HeaderGuard`, and reads the
    headers, the peer and the trust decision the first time one of them is asked for.
    Reading is idempotent, so two threads reading at once at worst work it out twice and agree.

    Attributes:
        peer: the client address the server saw (the gateway's, behind a gateway), or ``None``.
        trusted: whether the header may be trusted; when false the header is treated as
            absent (an untrusted peer, or a public service built with ``trust_header=False``).
        max_size: the largest header accepted, in bytes.
    """

    # The middlewares set the request's source and the context's sentinel; the read values
    # are set by _capture() on first use. Nothing here refers back to the scope or environ the
    # request is stored in: no reference cycle to leave to the collector.
    __slots__ = (
        "_access_token",
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
        "_traceparent",
        "_tracestate",
        "_trusted",
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
    _traceparent: str | None
    _tracestate: str | None
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
        traceparent: str | None = None,
        tracestate: str | None = None,
        peer: str | None = None,
        trusted: bool = True,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self._raw = raw_header
        self._duplicates = 0
        self._access_token = access_token
        self._traceparent = traceparent
        self._tracestate = tracestate
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
        return self

    def __repr__(self) -> str:
        # Never the header (it carries keys) nor the token.
        state = "parsed" if self.parsed else "unparsed"
        return f"RequestContext(peer={self.peer!r}, trusted={self.trusted}, header {state})"

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
        self._traceparent = self._tracestate = header_token = raw = None
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
        self._access_token = query_access_token(get("QUERY_STRING", "")) or get("HTTP_ACCESS_TOKEN")
        self._traceparent = get("HTTP_TRACEPARENT")
        self._tracestate = get("HTTP_TRACESTATE")
        self._peer = get("REMOTE_ADDR") or None


def query_access_token(query: bytes | str) -> str | None:
    """The ``access_token`` query parameter of a raw query string, if any."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    if "access_token=" not in text:
        return None
    values = parse_qs(text, keep_blank_values=False).get("access_token")
    return values[0] if values else None


class Rejection(NamedTuple):
    """Why the ``reject`` policy refuses a request: HTTP status, gateway error code, message."""

    status: int
    code: int
    message: str

    def body(self) -> bytes:
        """The gateway's error body: ``{"result": false, "errors": {"codes", "details"}}``."""
        payload = {
            "result": False,
            "errors": {
                "codes": [self.code],
                "details": [{"code": self.code, "message": self.message}],
            },
        }
        return json.dumps(payload, separators=(",", ":")).encode()


_MISSING = Rejection(403, 132, "A valid key is needed to access any API: no soajsinjectobj header")
_UNTRUSTED = Rejection(
    403,
    132,
    "A valid key is needed to access any API: the soajsinjectobj header did not come from a "
    "trusted gateway",
)
_TOO_LARGE_STATUS: Final = 431
_BAD_HEADER_STATUS: Final = 400
_BAD_HEADER_CODE: Final = 135


class HeaderGuard:
    """The header policy of one middleware, from :class:`~soajs.settings.Settings`.

    ``trusted_gateways`` (IPs/CIDRs) lists the peers that may send the header; empty trusts
    every peer, and the first guard built so in a process logs a warning saying that any peer
    can assert a tenant. IPv4-mapped IPv6 peers (``::ffff:10.0.0.1``) are their IPv4 address.
    Answers are cached per address (bounded), so a check costs one dictionary lookup.
    ``trust_header=False`` (public services) trusts no one, and then the ``reject`` policy does
    not apply: such a service never gets a header it could use.

    A request carries one ``soajsinjectobj`` header. Two or more are one invalid header
    (``InjectHeaderError`` code ``"duplicate"`` where the server passes each line, as ASGI
    servers do; not JSON where it joins them with ``,``, as WSGI servers and Django do): no
    context, or 400 with code 135 under ``reject``, on every server.

    With the defaults (``ignore``, every peer trusted) a request is only captured, and read
    when someone asks; with ``reject`` or ``trusted_gateways`` (:attr:`eager`) it is checked
    as it arrives.

    Args:
        settings: ``header_policy``, ``trusted_gateways`` and ``max_inject_header_size``.
        trust_header: whether the header may be trusted at all.
    """

    _CACHE_LIMIT: ClassVar[int] = 4096

    def __init__(self, settings: Settings, *, trust_header: bool = True) -> None:
        self.trust_header = trust_header
        self.networks = settings.trusted_gateways
        self.reject = trust_header and settings.header_policy == "reject"
        self.max_size = settings.max_inject_header_size
        # Checking now costs every request a header scan: only when a policy depends on it.
        self.eager = trust_header and (self.reject or bool(self.networks))
        self._cache: dict[str | None, bool] = {}
        if trust_header and not self.networks:
            _warn_open_allowlist()

    def is_trusted(self, peer: str | None) -> bool:
        """Tell whether a header from ``peer`` (an IP; ``None`` for a Unix socket) is trusted."""
        if not self.trust_header:
            return False
        if not self.networks:
            return True
        trusted = self._cache.get(peer)
        if trusted is None:
            trusted = self._in_networks(peer)
            if len(self._cache) < self._CACHE_LIMIT:
                self._cache[peer] = trusted
        return trusted

    def _in_networks(self, peer: str | None) -> bool:
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def capture_scope(self, scope: Any) -> RequestContext:
        """Capture an ASGI HTTP scope under this policy (see :meth:`capture_environ`)."""
        request = RequestContext.from_scope(scope, self)
        if self.eager:
            self.note_untrusted(request)
        return request

    def capture_environ(self, environ: Mapping[str, Any]) -> RequestContext:
        """Capture a WSGI environ (or Django's ``request.META``) under this policy.

        Nothing is read until someone asks, unless the policy needs it now (:attr:`eager`):
        the trust decision is then made on the address the request arrived with, before the
        app (or a proxy-header fix inside it) could change it, and a header from an untrusted
        peer is noted in the log.
        """
        request = RequestContext.from_environ(environ, self)
        if self.eager:
            self.note_untrusted(request)
        return request

    def note_untrusted(self, request: RequestContext) -> None:
        """Log a header dropped because its peer is not a trusted gateway (never its content)."""
        if self.trust_header and not request.trusted and request.has_header:
            logger.warning("dropped a soajsinjectobj header from untrusted peer %s", request.peer)

    def check(self, request: RequestContext) -> Rejection | None:
        """Under the ``reject`` policy, why ``request`` must be refused; ``None`` to serve it.

        This parses the header (the price of rejecting); the context stays cached.
        """
        if not self.reject:
            return None
        if not request.trusted and request.has_header:
            return _UNTRUSTED
        if request.context is not None:
            return None
        error = request.error
        if error is None or error.code == "missing":
            return _MISSING
        status = _TOO_LARGE_STATUS if error.code == "too_large" else _BAD_HEADER_STATUS
        return Rejection(status, _BAD_HEADER_CODE, f"Invalid soajsinjectobj header: {error}")


_open_allowlist_warned = False
_open_allowlist_lock = threading.Lock()


def _warn_open_allowlist() -> None:
    """Say once per process that the header is believed from any peer."""
    global _open_allowlist_warned  # noqa: PLW0603 - one flag per process is the point
    with _open_allowlist_lock:
        if _open_allowlist_warned:
            return
        _open_allowlist_warned = True
    logger.warning(
        "SOAJS_TRUSTED_GATEWAYS is empty: any peer that reaches this service can send a "
        "soajsinjectobj header and assert a tenant and a user; list the gateways (and the "
        "services that call this one through the mesh) allowed to send it"
    )


def resolve_settings(settings: Settings | None, registry: object | None) -> Settings:
    """The settings to use: the given ones, else the registry's, else the environment's."""
    if settings is not None:
        return settings
    registry_settings = getattr(registry, "settings", None)
    if isinstance(registry_settings, Settings):
        return registry_settings
    return Settings()


def service_name_of(registry: object | None, settings: Settings) -> str | None:
    """The service's name for replies such as ``/heartbeat``: the registry's, else the settings'."""
    name = getattr(registry, "service_name", None) or settings.service_name
    return name if isinstance(name, str) else None


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


_current: ContextVar[RequestContext | None] = ContextVar("soajs_request", default=None)


def current_request() -> RequestContext | None:
    """The :class:`RequestContext` of the request being served, or ``None`` outside one."""
    return _current.get()


def current_context() -> ContextData | None:
    """The SOAJS context of the request being served.

    Returns ``None`` outside a request, or when the request has no valid, trusted header.
    """
    request = _current.get()
    if request is None:
        return None
    # RequestContext.context inlined: this runs on every read, the property would add a call.
    context = request._context
    if context is _UNRESOLVED:
        return request._resolve()
    return context


def stream_with_context(body: Iterable[_Chunk]) -> Iterator[_Chunk]:
    """Make the current request current again while a streamed response body is produced.

    A WSGI generator body runs after the app returned, when the server sends it, so the
    middleware no longer holds the request current there (like Flask's own request context,
    which needs ``flask.stream_with_context``). Wrap such a body when its code reads
    :func:`current_context` or builds a :class:`~soajs.ServiceConnector`::

        return Response(soajs.stream_with_context(generate()))

    Call it inside the request: it captures the request that is current then, and makes it
    current around each chunk only, so nothing stays current between chunks or after the
    server stops iterating. ASGI streaming responses run inside the request and need no wrapper.
    """
    return _chunks_with(_current.get(), body, iter(body))


def _chunks_with(
    request: RequestContext | None, body: Iterable[_Chunk], chunks: Iterator[_Chunk]
) -> Iterator[_Chunk]:
    """Yield ``chunks``, each produced with ``request`` current; close ``body`` when done."""
    try:
        while True:
            token = _current.set(request)
            try:
                # A sentinel, not StopIteration: raising and catching it costs more than a chunk.
                chunk = next(chunks, _END)
            finally:
                _current.reset(token)
            if chunk is _END:
                return
            yield chunk
    finally:
        # Closed by the server (PEP 3333), exhausted or dropped: the body's own clean-up runs
        # too, with the request current, as its chunks did.
        close = getattr(body, "close", None)
        if close is not None:
            token = _current.set(request)
            try:
                close()
            finally:
                _current.reset(token)


def set_current_request(request: RequestContext | None) -> Token[RequestContext | None]:
    """Make ``request`` current; pass the returned token to :func:`reset_current_request`."""
    return _current.set(request)


def reset_current_request(token: Token[RequestContext | None]) -> None:
    """Restore what was current before the matching :func:`set_current_request`."""
    _current.reset(token)

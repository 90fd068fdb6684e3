"""Service-to-service calls: reach another service directly (mesh) or through the gateway.

:class:`ServiceConnector` addresses a call exactly as soajs core and the Node middleware do
(``docs/protocol.md`` §6):

* **Mesh**: when the request's ``awareness.interConnect`` lists the service (with the asked
  version, or with ``version === latest`` when none is asked, JavaScript's ``null`` and
  ``undefined`` kept apart), the call goes straight to ``host:port`` and carries the incoming
  ``soajsinjectobj`` header byte for byte, so the callee finds its own ``servicesConfig`` in it.
* **Gateway**: otherwise the call goes to ``gw:4000/<service>[/v<version>]`` with the caller's
  ``key`` and, when the incoming request had them, its ``access_token`` and its
  ``Authorization`` header (the gateway reads a logged-in user only from
  ``Authorization: Bearer <token>``); the gateway itself is ``gw:4000``.

W3C ``traceparent``/``tracestate`` headers of the incoming request are forwarded in both modes,
with ``x-request-id``: the request's :attr:`~soajs.request.RequestContext.request_id`, always, so
the callee logs under the same id whether or not the request carried a ``traceparent`` (with
one, the id is its trace id, which the callee reads from ``traceparent`` first anyway).

Those headers carry the caller's credentials and identity, so they go only to the origin
(scheme, host and port) :meth:`ServiceConnector.connect` resolved: the clients the connector
builds drop them, and the caller's ``key``/``access_token`` values from the query string, from
every request bound elsewhere (a followed redirect, an absolute URL). A header value no HTTP
header can carry is refused with :class:`~soajs.errors.ConnectError` when the call is addressed.

Deliberate differences from soajs core (``tests/parity`` checks every other case against it):

* a gateway call forwards the incoming ``Authorization`` header, with or without an
  ``access_token``: soajs core means to (``req.headers.Authorization``) but Node lowercases
  header names, so its branch never runs and a logged-in user is lost on the second hop;

* a version that is not a number (``"latest"``, ``"v1"``) adds no ``/v…`` segment: soajs core
  builds ``/vlatest``, which the gateway cannot route;
* without ``awareness.host``, or without ``awareness.port`` for a gateway call, :meth:`connect`
  raises :class:`~soajs.errors.ConnectError` naming the field (soajs core answers ``{}`` or
  ``host:undefined/...``);
* an interConnect entry without ``host`` or ``port``, or one the model cannot read, is skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol

import httpx

from soajs.current import current_request
from soajs.errors import ConnectError, RegistryError
from soajs.models.context import ContextData, InterConnect
from soajs.request import RequestContext

__all__ = ["GATEWAY_SERVICE", "ConnectResponse", "RegistrySource", "ServiceConnector"]

logger = logging.getLogger("soajs.connector")

GATEWAY_SERVICE = "controller"
"""The registry key of the gateway's own entry; its ``name`` is the gateway's service name."""


# soajs appends "/v<version>" only when JavaScript's parseInt(version) is a number: optional
# leading blanks and sign, then a decimal digit or a hex literal ("0x" with a hex digit).
_VERSION_IN_PATH = re.compile(r"\s*[+-]?(?:0[xX][0-9a-fA-F]|(?!0[xX])[0-9])")

# The httpx.Client options that configure its transport; kept when the connector builds one.
_TRANSPORT_OPTIONS = ("verify", "cert", "trust_env", "http1", "http2", "limits")

# The headers that carry the caller's credentials or identity: sent to the resolved origin only.
_CREDENTIAL_HEADERS: Final = (
    "key",
    "access_token",
    "authorization",
    "soajsinjectobj",
    "traceparent",
    "tracestate",
    "x-request-id",
)
# The credential headers whose values must not reach another origin in a query string either.
_SECRET_HEADERS: Final = ("key", "access_token")

# What an HTTP header may carry (RFC 9110 field-value, as Node and h11 check it): Latin-1 text
# without control characters (tab aside), and no blank at either end.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL_BYTES: Final = bytes(range(0x20)).replace(b"\t", b"") + b"\x7f"
_BLANKS: Final = (b" ", b"\t")


class _ServiceEntry(Protocol):
    @property
    def name(self) -> str | None: ...


class _RegistryView(Protocol):
    @property
    def services(self) -> Mapping[str, _ServiceEntry] | None: ...


class RegistrySource(Protocol):
    """What the connector reads from a registry: the gateway's own entry (``services.controller``).

    :class:`soajs.RegistryManager` fits; so does any object with the same shape.
    """

    @property
    def registry(self) -> _RegistryView | None: ...


@dataclass(frozen=True, slots=True)
class ConnectResponse:
    """Where to send a call to another service and which headers to send with it.

    Attributes:
        host: ``host:port`` of the service itself (mesh), or the gateway address with the
            service's path (``gw:4000/urac/v2``); use it as ``f"http://{host}/api"``.
        headers: The headers to send (read-only; copy them with ``dict(...)`` to add more).
            The ``soajsinjectobj`` value is Latin-1 text: send it with :meth:`httpx_headers`,
            or a client from :meth:`ServiceConnector.client`, when it may hold non-ASCII bytes.
        mesh: True when the call goes straight to the service, False through the gateway.
    """

    host: str
    headers: Mapping[str, str] = field(repr=False)
    mesh: bool = False

    def __post_init__(self) -> None:
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name) or not _is_header_value(value):
                # Never the value: it may be a token or a key.
                raise ConnectError(
                    f"cannot send the {name!r} header: its value holds a control character, a "
                    "character beyond Latin-1 or a leading/trailing blank, which no HTTP header "
                    "can carry; check where it comes from (the incoming request, the context "
                    "or the connector's arguments)"
                )

    @property
    def url(self) -> str:
        """The base URL of the call: ``"http://" + host``."""
        return "http://" + self.host

    def httpx_headers(self) -> httpx.Headers:
        """The headers encoded as Latin-1, so the forwarded header goes out byte for byte."""
        return httpx.Headers(self.headers, encoding="latin-1")


class ServiceConnector:
    """Addresses calls to other services from inside a request, mesh first, then the gateway.

    A connector belongs to one incoming request. Whatever is not passed explicitly (the context,
    the access token, the ``Authorization`` header, the trace headers) is taken from the current
    request, as recorded by the soajs middleware, when the connector is created. Results are
    cached per connector, so calling :meth:`connect` again for the same service costs a
    dictionary lookup.

    Args:
        context: The request's parsed ``soajsinjectobj`` header.
        registry: Where to read the gateway's own service name (``services.controller.name``);
            without it the name is ``"controller"``.
        access_token: The caller's token, forwarded on gateway calls.
        authorization: The caller's ``Authorization`` header value (``"Bearer <token>"``),
            forwarded on gateway calls, never on mesh calls; by default the incoming
            request's.
        trace_headers: Headers forwarded on every call (by default the incoming request's
            ``traceparent``, ``tracestate`` and its request id as ``x-request-id``).
        timeout: Timeout of the clients built by :meth:`client` and :meth:`async_client`.
        retries: How many times those clients retry a connection that could not be made
            (httpx transport retries: only failed connects are retried, never a sent request).
    """

    __slots__ = (
        "_access_token",
        "_authorization",
        "_context",
        "_no_context_reason",
        "_registry",
        "_responses",
        "_retries",
        "_timeout",
        "_trace_headers",
    )

    def __init__(
        self,
        context: ContextData | None = None,
        *,
        registry: RegistrySource | None = None,
        access_token: str | None = None,
        authorization: str | None = None,
        trace_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout = 10.0,
        retries: int = 0,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        request = None
        if (
            context is None
            or access_token is None
            or authorization is None
            or trace_headers is None
        ):
            request = current_request()
        if request is not None:
            if context is None:
                context = request.context
            if access_token is None:
                access_token = request.access_token
            if authorization is None:
                authorization = request.authorization
            if trace_headers is None:
                trace_headers = _incoming_trace_headers(request)
        self._context = context
        self._no_context_reason = _no_context_reason(request) if context is None else ""
        self._registry = registry
        self._access_token = access_token
        self._authorization = authorization
        self._trace_headers: dict[str, str] = dict(trace_headers or {})
        self._timeout = timeout
        self._retries = retries
        # By service name, then version: a repeated connect() builds no tuple key.
        self._responses: dict[str | None, dict[str | None, ConnectResponse]] = {}

    def __repr__(self) -> str:
        tenant = self._context.tenant.code if self._context is not None else None
        return f"<ServiceConnector tenant={tenant!r}>"

    @property
    def context(self) -> ContextData | None:
        """The request context the connector addresses calls for."""
        return self._context

    def connect(
        self, service_name: str | None = None, version: str | None = None
    ) -> ConnectResponse:
        """Address a call to ``service_name`` (the gateway itself when it is empty).

        Versions are compared as soajs core compares them (``===``): ``"1"`` matches neither
        ``"1.0"`` nor an interConnect entry whose version is the number ``1``. A call without a
        version goes direct to the entry whose ``version`` equals its ``latest``, which includes
        an entry whose ``version`` is ``null`` (the target configured none) and one with
        neither key; a call with a version never matches a ``null`` entry.

        Raises:
            ConnectError: There is no request context, its ``awareness`` has no ``host``, the
                call goes through the gateway and ``awareness`` has no ``port``, or a header to
                send (``key``, ``access_token``, ``Authorization``, a trace header) holds a control
                character or text beyond Latin-1; the message names the header, never its value.
        """
        try:
            return self._responses[service_name][version]
        except KeyError:
            pass  # resolved below, outside the handler: a ConnectError must not chain a KeyError
        response = self._resolve(service_name, version)
        self._responses.setdefault(service_name, {})[version] = response
        return response

    def client(
        self, service_name: str | None = None, version: str | None = None, **httpx_kwargs: Any
    ) -> httpx.Client:
        """An ``httpx.Client`` for ``service_name``: base URL, headers and timeout already set.

        Use it as a context manager so its connections are closed::

            with connector.client("hello", "1") as client:
                reply = client.get("/echo")

        Args:
            service_name: As for :meth:`connect`.
            version: As for :meth:`connect`.
            **httpx_kwargs: Passed to ``httpx.Client``; ``headers`` are added to the connect
                headers, ``event_hooks`` run before the connector's own request hook, anything
                else replaces the connector's choice.

        The client sends the connect headers (``key``, ``access_token``, ``Authorization``,
        ``soajsinjectobj``, ``traceparent``, ``tracestate``) only to the origin :meth:`connect`
        resolved: a request to any other origin (a followed redirect, an absolute URL) goes
        without them, and without query parameters holding the caller's key or token. Add
        request hooks through ``event_hooks`` rather than by replacing ``client.event_hooks``,
        which would drop that check.

        Raises:
            ConnectError: As for :meth:`connect`.
        """
        connection = self.connect(service_name, version)
        guard = _CredentialGuard(connection)
        options = self._client_options(connection, httpx_kwargs, guard)
        if self._retries and "transport" not in options:
            options["transport"] = httpx.HTTPTransport(
                retries=self._retries, **_transport_options(options)
            )
        return httpx.Client(**options)

    def async_client(
        self, service_name: str | None = None, version: str | None = None, **httpx_kwargs: Any
    ) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for ``service_name``, set up as :meth:`client` does.

        Use it as an async context manager::

            async with connector.async_client("hello", "1") as client:
                reply = await client.get("/echo")

        Its credentials stay on the resolved origin, as with :meth:`client`.

        Raises:
            ConnectError: As for :meth:`connect`.
        """
        connection = self.connect(service_name, version)
        guard = _CredentialGuard(connection)
        options = self._client_options(connection, httpx_kwargs, guard.async_hook)
        if self._retries and "transport" not in options:
            options["transport"] = httpx.AsyncHTTPTransport(
                retries=self._retries, **_transport_options(options)
            )
        return httpx.AsyncClient(**options)

    def _client_options(
        self,
        connection: ConnectResponse,
        httpx_kwargs: dict[str, Any],
        guard: Callable[[httpx.Request], object],
    ) -> dict[str, Any]:
        headers = connection.httpx_headers()
        extra_headers = httpx_kwargs.pop("headers", None)
        if extra_headers:
            headers.update(extra_headers)
        hooks = dict(httpx_kwargs.pop("event_hooks", None) or {})
        # Last, so no hook of the caller's can add a credential back after the check.
        hooks["request"] = [*hooks.get("request", ()), guard]
        return {
            "base_url": connection.url,
            "timeout": self._timeout,
            **httpx_kwargs,
            "headers": headers,
            "event_hooks": hooks,
        }

    def _resolve(self, service_name: str | None, version: str | None) -> ConnectResponse:
        context = self._context
        if context is None:
            raise ConnectError(
                f"cannot address {_describe(service_name)}: {self._no_context_reason}"
            )
        awareness = context.awareness
        # soajs core answers nothing (not even a mesh target) when awareness has no host.
        if awareness is None or not awareness.host:
            raise ConnectError(
                f"cannot address {_describe(service_name)}: the request's soajsinjectobj header "
                "has no 'awareness.host' (the gateway adds awareness only when it has a healthy "
                "gateway host)"
            )
        if service_name:
            for item in awareness.inter_connect:
                if item.name == service_name and _is_mesh_match(item, version):
                    logger.debug(
                        "connect %s version %s: mesh %s:%s",
                        service_name,
                        version,
                        item.host,
                        item.port,
                    )
                    headers = {"soajsinjectobj": _forwarded_header(context), **self._trace_headers}
                    return ConnectResponse(
                        f"{item.host}:{item.port}", MappingProxyType(headers), mesh=True
                    )
        if not awareness.host or awareness.port is None:
            raise ConnectError(
                f"cannot address {_describe(service_name)}: the request's soajsinjectobj header "
                "has no gateway address ('awareness.host' and 'awareness.port')"
            )
        host = f"{awareness.host}:{awareness.port}"
        if service_name and service_name.lower() != self._gateway_name().lower():
            host += "/" + service_name
            if version and _VERSION_IN_PATH.match(str(version)):
                host += f"/v{version}"
        headers = {}
        if context.key.e_key:
            headers["key"] = context.key.e_key
        if self._access_token:
            headers["access_token"] = self._access_token
        # Without an access_token too: the gateway reads the user from the Bearer header alone.
        if self._authorization:
            headers["Authorization"] = self._authorization
        headers.update(self._trace_headers)
        logger.debug("connect %s version %s: gateway %s", service_name, version, host)
        return ConnectResponse(host, MappingProxyType(headers))

    def _gateway_name(self) -> str:
        if self._registry is None:
            return GATEWAY_SERVICE
        try:
            snapshot = self._registry.registry
        except RegistryError:
            # Not loaded yet (a manager built with autostart=False): the default name holds.
            return GATEWAY_SERVICE
        services = snapshot.services if snapshot is not None else None
        entry = services.get(GATEWAY_SERVICE) if services else None
        return (entry.name if entry is not None else None) or GATEWAY_SERVICE


class _CredentialGuard:
    """A request hook that keeps the connect headers on the origin ``connect()`` resolved.

    httpx runs request hooks on every request it sends, each hop of a redirect included, after
    the request is built and before it reaches a transport, mount or proxy. httpx itself only
    drops ``Authorization`` when a redirect leaves the origin.
    """

    __slots__ = ("_origin", "_secrets")

    def __init__(self, connection: ConnectResponse) -> None:
        self._origin = _origin_of(httpx.URL(connection.url))
        headers = connection.headers
        self._secrets = frozenset(headers[name] for name in _SECRET_HEADERS if headers.get(name))

    def __call__(self, request: httpx.Request) -> None:
        """Drop the credentials from ``request`` unless it goes to the resolved origin."""
        url = request.url
        if _origin_of(url) == self._origin:
            return
        request_headers = request.headers
        dropped = [name for name in _CREDENTIAL_HEADERS if name in request_headers]
        for name in dropped:
            del request_headers[name]
        if self._secrets and url.query:
            params = url.params.multi_items()
            kept = [(name, value) for name, value in params if value not in self._secrets]
            if len(kept) != len(params):
                request.url = url.copy_with(params=kept)
                dropped.append("query parameters")
        if dropped:
            # Names and the origin only: the rest of the URL may hold what was just removed.
            logger.debug(
                "did not send %s to %s://%s (not the resolved origin)",
                ", ".join(dropped),
                url.scheme,
                url.netloc.decode("ascii"),
            )

    async def async_hook(self, request: httpx.Request) -> None:
        """The same check, as the coroutine an ``httpx.AsyncClient`` hook must be."""
        self(request)


def _is_header_value(value: str) -> bool:
    try:
        data = value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    # bytes.translate runs in C: a header of a few kilobytes is checked in about a microsecond.
    return (
        len(data.translate(None, _CONTROL_BYTES)) == len(data)
        and not data.startswith(_BLANKS)
        and not data.endswith(_BLANKS)
    )


def _origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    # httpx.URL lowercases scheme and host and gives None for the scheme's default port.
    return url.scheme, url.host, url.port


_ABSENT: Any = object()
"""JavaScript's ``undefined``: a key the interConnect entry does not have."""


def _is_mesh_match(item: InterConnect, version: str | None) -> bool:
    """Tell whether ``item`` is the mesh target, as soajs core's ``connect`` decides.

    soajs core: ``(!version && item.version === item.latest) || version === item.version``.
    A call without a version is JavaScript's ``null``; a missing key is ``undefined``, which
    equals only itself. An entry without a host or port cannot be called and is passed over.
    """
    if not item.host or item.port is None:
        return False
    item_version = item.version if item.has_version else _ABSENT
    if not version and _js_strict_equal(item_version, item.latest if item.has_latest else _ABSENT):
        return True
    return _js_strict_equal(version, item_version)


def _js_strict_equal(left: object, right: object) -> bool:
    """JavaScript's ``===`` on JSON scalars: ``null``/``undefined`` only equal themselves, and
    text never equals a number."""
    if left is None or right is None or left is _ABSENT or right is _ABSENT:
        return left is right
    if isinstance(left, str) is not isinstance(right, str):
        return False
    return left == right


def _forwarded_header(context: ContextData) -> str:
    raw = context.raw_header
    if raw:
        return raw
    # A context built in code has no received header: send its JSON (ASCII, so header-safe).
    return json.dumps(
        context.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":")
    )


def _incoming_trace_headers(request: RequestContext) -> dict[str, str]:
    headers = {}
    traceparent = request.traceparent
    if traceparent:
        headers["traceparent"] = traceparent
    tracestate = request.tracestate
    if tracestate:
        headers["tracestate"] = tracestate
    headers["x-request-id"] = request.request_id
    return headers


def _no_context_reason(request: RequestContext | None) -> str:
    if request is None:
        return (
            "no request context; pass a ContextData (soajs.parse_inject_header(...)) or create "
            "the connector inside a request served through the soajs middleware (in a WSGI "
            "generator body, wrap the generator in soajs.stream_with_context)"
        )
    if request.has_header and not request.trusted:
        return "the current request's soajsinjectobj header is not trusted (it was ignored)"
    if request.error is not None:
        return f"the current request's soajsinjectobj header is invalid ({request.error})"
    return (
        "the current request has no soajsinjectobj header (the gateway sends it only to "
        "services registered with extKeyRequired: true)"
    )


def _transport_options(client_options: dict[str, Any]) -> dict[str, Any]:
    return {name: client_options[name] for name in _TRANSPORT_OPTIONS if name in client_options}


def _describe(service_name: str | None) -> str:
    return f"service {service_name!r}" if service_name else "the gateway"

"""HTTP client for the gateway's maintenance API: ``GET /getRegistry`` and ``POST /register``."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from soajs._fork import call_in_forked_child
from soajs.errors import (
    GatewayUnavailable,
    RegistryDeadlineExceeded,
    RegistryFetchStopped,
    RegistryRejected,
    RegistryReplyMalformed,
    RegistryReplyTooLarge,
)
from soajs.models.registry import Registry, parse_registry_reply
from soajs.settings import REGISTRY_FETCH_DEADLINE, REGISTRY_MAX_REPLY_SIZE, Settings
from soajs.validation import describe_validation_error

__all__ = ["STOP_POLL_INTERVAL", "RegistryClient"]

STOP_POLL_INTERVAL = 0.05
"""Seconds between two looks at a call's deadline and stop event while it waits on the network."""

# The stop event of the calls made by this thread (see RegistryClient.stop_when).
_STOP_EVENT: ContextVar[threading.Event | None] = ContextVar("soajs_registry_stop", default=None)

# The gateway's default serviceConfig.ports.maintenanceInc: maintenance port minus data port.
_MAINTENANCE_INC = 1000


class RegistryClient:
    """Talks to the gateway maintenance API (``SOAJS_REGISTRY_API``, e.g. port 5000).

    One ``httpx.Client`` is reused for every call. It ignores proxy environment variables, as
    the Node and Go clients do, because the maintenance port is an internal address. A forked
    child gets a fresh connection pool, never the parent's sockets.

    Every call is bounded: ``timeout`` for each step (connect, each read, each write),
    ``deadline`` for the whole call however slowly the reply trickles in, and
    ``max_reply_size`` bytes for the reply, read in chunks and never buffered past the limit.
    A call past its deadline has its socket shut down by a watchdog thread, so even a gateway
    that drips its headers a byte at a time cannot hold it. Each call opens its own
    connection (calls are rare: one per reload or registration), which lets that watchdog
    reach the socket.

    Error messages name the URL (never a query string or a body), so they are safe to log.

    Args:
        base_url: ``http://host:port`` of the maintenance API (see ``Settings.registry_url``).
        timeout: seconds allowed for each step of a call (``SOAJS_REGISTRY_TIMEOUT``).
        deadline: seconds allowed for a whole call (``SOAJS_REGISTRY_FETCH_DEADLINE``).
        max_reply_size: the longest reply accepted, in bytes
            (``SOAJS_REGISTRY_MAX_REPLY_SIZE``).
        transport: an httpx transport to use instead of the network one (the deadline is then
            checked between chunks only, as no socket is at hand).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        deadline: float = REGISTRY_FETCH_DEADLINE,
        max_reply_size: int = REGISTRY_MAX_REPLY_SIZE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.deadline = deadline
        self.max_reply_size = max_reply_size
        self._transport = transport
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        call_in_forked_child(self._forget_pool_after_fork)

    def _forget_pool_after_fork(self) -> None:
        """Give a forked child its own lock and connection pool."""
        # The inherited pool shares sockets with the parent and its lock may be held by a
        # parent thread that does not exist here: drop both, without closing the sockets.
        self._lock = threading.Lock()
        self._http = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryClient:
        """A client for ``SOAJS_REGISTRY_API`` with the ``SOAJS_REGISTRY_*`` limits.

        Raises:
            SettingsError: ``SOAJS_REGISTRY_API`` is not set.
        """
        return cls(
            settings.registry_url,
            timeout=settings.registry_timeout,
            deadline=settings.registry_fetch_deadline,
            max_reply_size=settings.registry_max_reply_size,
        )

    def __repr__(self) -> str:
        return f"RegistryClient(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def fetch(self, env: str, service_name: str) -> Registry:
        """Fetch the registry of ``env`` as seen by ``service_name``.

        Sends ``type=service`` (never ``mdaemon``, which crashes the gateway's handler).

        Raises:
            GatewayUnavailable: no connection, a timeout, or an HTTP error status.
            RegistryDeadlineExceeded: the call took longer than ``deadline`` in all.
            RegistryRejected: the gateway answered ``result: false`` (e.g. an unknown env).
            RegistryReplyMalformed: the reply is not a registry (not JSON, nested too deep, no
                ``data``, no ``environment``, or a shape the models refuse).
            RegistryReplyTooLarge: the reply is longer than ``max_reply_size``.
            RegistryFetchStopped: the stop event of :meth:`stop_when` was set.
        """
        url = f"{self.base_url}/getRegistry"
        params = {"env": env, "serviceName": service_name, "type": "service"}
        response = self._exchange("GET", url, params=params)
        registry = parse_registry_reply(response.content)
        if registry is not None:
            return registry
        # Not a plain success: decode it again, only to say what is wrong with it.
        reply = _decode(response.content, "GET", url)
        if reply.get("result") is not True:
            _check_result(reply, "GET", url)
            raise RegistryRejected(
                f"GET {url} answered result: false for env {env!r} (is the environment known "
                f"to the gateway?)",
                url=url,
            )
        data = reply.get("data")
        if not isinstance(data, dict) or "environment" not in data:
            raise RegistryReplyMalformed(
                f"GET {url} answered without a registry (no data.environment); is "
                f"SOAJS_REGISTRY_API the gateway maintenance port (data port + maintenanceInc)?",
                url=url,
            )
        try:
            return Registry.from_wire(data)
        except ValidationError as exc:
            raise RegistryReplyMalformed(
                f"GET {url} answered a registry the models refuse: {_describe(exc)}", url=url
            ) from None

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Register this service instance (manual deployment).

        Returns:
            The gateway's in-memory entry for the service (the reply's ``data``).

        Raises:
            GatewayUnavailable: no connection, a timeout, or an HTTP error status (and
                :class:`~soajs.errors.RegistryDeadlineExceeded` past the deadline).
            RegistryRejected: ``result: false`` (an HA gateway always refuses; so does a port
                already taken by another service).
            RegistryReplyMalformed: the reply is not the gateway's register reply (or is
                longer than ``max_reply_size``: :class:`~soajs.errors.RegistryReplyTooLarge`).
            RegistryFetchStopped: the stop event of :meth:`stop_when` was set.
        """
        url = f"{self.base_url}/register"
        reply = self._call("POST", url, json=body)
        if reply.get("result") is not True:
            _check_result(reply, "POST", url)
            raise RegistryRejected(
                f"POST {url} answered result: false for service {body.get('name')!r} (the "
                f"gateway refuses registrations when it runs with SOAJS_DEPLOY_HA, or when "
                f"the port belongs to another service)",
                url=url,
            )
        data = reply.get("data")
        if not isinstance(data, dict):
            raise RegistryReplyMalformed(
                f"POST {url} answered result: true without the registered entry; is "
                f"SOAJS_REGISTRY_API the gateway maintenance port?",
                url=url,
            )
        return data

    @contextlib.contextmanager
    def stop_when(self, event: threading.Event) -> Iterator[None]:
        """End this thread's calls made inside the block as soon as ``event`` is set.

        A call in flight then raises :class:`~soajs.errors.RegistryFetchStopped` within
        :data:`STOP_POLL_INTERVAL` seconds (a connection still being set up within its connect
        timeout). :meth:`RegistryManager.stop` uses it so that it never waits on a slow gateway.
        """
        token = _STOP_EVENT.set(event)
        try:
            yield
        finally:
            _STOP_EVENT.reset(token)

    def close(self) -> None:
        """Close the connection pool; a later call opens a new one."""
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    transport=self._transport,
                    # A new connection per call: its socket is then always at hand for the
                    # watchdog (a pooled one would be reused without a connect event).
                    limits=httpx.Limits(max_keepalive_connections=0),
                    trust_env=False,
                    follow_redirects=False,
                    # Identity: the size limit then counts the bytes that are kept in memory.
                    headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                )
            return self._http

    def _call(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        return _decode(self._exchange(method, url, **options).content, method, url)

    def _exchange(self, method: str, url: str, **options: Any) -> httpx.Response:
        """Send one request within the deadline; the reply, whose status is below 400.

        The returned response holds the whole body, read in chunks up to ``max_reply_size``.
        """
        call = _Call(method, url, self.deadline, _STOP_EVENT.get())
        call.check()
        watchdog = threading.Thread(target=call.watch, name="soajs-registry-deadline", daemon=True)
        watchdog.start()
        try:
            remaining = call.remaining()
            timeout = httpx.Timeout(max(0.001, min(self.timeout, remaining)))
            with self._client().stream(
                method, url, timeout=timeout, extensions={"trace": call.trace}, **options
            ) as response:
                status = response.status_code
                if status >= 400:
                    hint = f": {self._data_port_hint()}" if status == 404 else ""
                    raise GatewayUnavailable(
                        f"{method} {url} answered HTTP {status}{hint}", url=url, status_code=status
                    )
                body = self._read(response, call)
        except httpx.TimeoutException as exc:
            call.check()
            if remaining < self.timeout:
                # The step timeout was cut to what the deadline left: the deadline ran out.
                raise call.deadline_exceeded() from exc
            raise GatewayUnavailable(
                f"{method} {url} timed out after {self.timeout:g}s ({type(exc).__name__})", url=url
            ) from exc
        except httpx.TransportError as exc:
            # A socket shut down by the watchdog surfaces here as a closed connection.
            call.check()
            raise GatewayUnavailable(
                f"{method} {url} failed: cannot reach the gateway maintenance API "
                f"({type(exc).__name__}); check SOAJS_REGISTRY_API",
                url=url,
            ) from exc
        finally:
            call.finish()
        return httpx.Response(response.status_code, content=body, request=response.request)

    def _read(self, response: httpx.Response, call: _Call) -> bytes:
        """The body, chunk by chunk, refused as soon as it is longer than the limit."""
        limit = self.max_reply_size
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise call.too_large(limit, f"Content-Length {declared}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise call.too_large(limit, f"more than {limit} bytes")
            call.check()
        return bytes(body)

    def _data_port_hint(self) -> str:
        """Explain a 404: the maintenance API answers every path, a gateway's data port does not."""
        address = httpx.URL(self.base_url)
        hint = (
            "this looks like the gateway's data port; the maintenance API listens on the data "
            "port + maintenanceInc (1000 by default)"
        )
        if address.port is None or address.port + _MAINTENANCE_INC > 65535:
            return hint
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"{hint}: try SOAJS_REGISTRY_API={host}:{address.port + _MAINTENANCE_INC}"


class _Call:
    """One call in flight: its deadline, its stop event, and the socket to shut down when
    either passes. :meth:`watch` runs in a watchdog thread; the rest in the calling one."""

    def __init__(
        self, method: str, url: str, deadline: float, stop: threading.Event | None
    ) -> None:
        self.method = method
        self.url = url
        self.deadline = deadline
        self.ends_at = time.monotonic() + deadline
        self.stop = stop
        self.ended_by: Literal["deadline", "stop"] | None = None
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._finished = threading.Event()

    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self.ends_at - time.monotonic()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's ``trace`` extension: keep the socket of the connection once it is open."""
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        found = None if stream is None else stream.get_extra_info("socket")
        if isinstance(found, socket.socket):
            with self._lock:
                self._socket = found
            if self.ended_by is not None:
                self._shut()

    def watch(self) -> None:
        """Wait for the call to end; shut its socket down if the deadline or a stop comes first."""
        poll = STOP_POLL_INTERVAL if self.stop is not None else None
        while True:
            wait = max(0.0, self.remaining())
            if self._finished.wait(wait if poll is None else min(poll, wait)):
                return
            reason = self._reason()
            if reason is not None:
                self.ended_by = reason
                self._shut()
                return

    def check(self) -> None:
        """Raise the typed error if the deadline passed or a stop was asked for.

        Raises:
            RegistryDeadlineExceeded: past the deadline.
            RegistryFetchStopped: the stop event is set.
        """
        reason = self.ended_by or self._reason()
        if reason is None:
            return
        self.ended_by = reason
        if reason == "stop":
            raise RegistryFetchStopped(
                f"{self.method} {self.url} was stopped before the gateway answered", url=self.url
            )
        raise self.deadline_exceeded()

    def deadline_exceeded(self) -> RegistryDeadlineExceeded:
        """The error for a call that outlived its deadline."""
        return RegistryDeadlineExceeded(
            f"{self.method} {self.url} did not complete within SOAJS_REGISTRY_FETCH_DEADLINE="
            f"{self.deadline:g}s; the gateway maintenance API answers too slowly",
            url=self.url,
            limit=self.deadline,
        )

    def too_large(self, limit: int, seen: str) -> RegistryReplyTooLarge:
        """The error for a reply over ``limit`` bytes (``seen`` says how that was known)."""
        return RegistryReplyTooLarge(
            f"{self.method} {self.url} answered a reply longer than "
            f"SOAJS_REGISTRY_MAX_REPLY_SIZE={limit} bytes ({seen}); raise the limit only for "
            f"a registry measured larger",
            url=self.url,
            limit=limit,
        )

    def finish(self) -> None:
        """Mark the call done: the watchdog leaves the socket alone from now on."""
        with self._lock:
            self._socket = None
        self._finished.set()

    def _reason(self) -> Literal["deadline", "stop"] | None:
        if self.stop is not None and self.stop.is_set():
            return "stop"
        if time.monotonic() >= self.ends_at:
            return "deadline"
        return None

    def _shut(self) -> None:
        # shutdown(), unlike close(), wakes a recv() blocked in the calling thread. The plain
        # socket method, so that a TLS socket is shut at the TCP level too.
        with self._lock:
            sock = self._socket
            if sock is not None:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _decode(body: bytes, method: str, url: str) -> dict[str, Any]:
    """The reply body as a JSON object."""
    try:
        reply = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RegistryReplyMalformed(
            f"{method} {url} answered with a body that is not JSON", url=url
        ) from None
    except RecursionError:
        # The stdlib decoder recurses once per level: a hostile reply only costs this error.
        raise RegistryReplyMalformed(
            f"{method} {url} answered JSON nested too deeply to be a gateway reply", url=url
        ) from None
    if not isinstance(reply, dict):
        raise RegistryReplyMalformed(f"{method} {url} answered JSON that is not an object", url=url)
    return reply


def _check_result(reply: dict[str, Any], method: str, url: str) -> None:
    """Refuse a reply whose ``result`` is neither true nor false: it is not the gateway's."""
    if reply.get("result") is not False:
        raise RegistryReplyMalformed(
            f"{method} {url} answered JSON without a boolean result; is SOAJS_REGISTRY_API the "
            f"gateway maintenance port?",
            url=url,
        )


def _describe(exc: ValidationError) -> str:
    """Name the refused fields without echoing their values (they may hold credentials)."""
    return describe_validation_error(exc, root="data", limit=5)

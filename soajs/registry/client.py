"""HTTP client for the gateway's maintenance API: ``GET /getRegistry`` and ``POST /register``."""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx
from pydantic import ValidationError

from soajs.errors import GatewayUnavailable, RegistryRejected, RegistryReplyMalformed
from soajs.models.registry import Registry, parse_registry_reply

__all__ = ["RegistryClient"]

# The gateway's default serviceConfig.ports.maintenanceInc: maintenance port minus data port.
_MAINTENANCE_INC = 1000


class RegistryClient:
    """Talks to the gateway maintenance API (``SOAJS_REGISTRY_API``, e.g. port 5000).

    One ``httpx.Client`` is reused for every call. It ignores proxy environment variables, as
    the Node and Go clients do, because the maintenance port is an internal address. A forked
    child gets a fresh connection pool, never the parent's sockets.

    Error messages name the URL (never a query string or a body), so they are safe to log.

    Args:
        base_url: ``http://host:port`` of the maintenance API (see ``Settings.registry_url``).
        timeout: seconds allowed for each phase of a call (connect, read, write, pool).
        transport: an httpx transport to use instead of the network one.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._transport = transport
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        os.register_at_fork(after_in_child=_forget_pool_after_fork(weakref.ref(self)))

    def __repr__(self) -> str:
        return f"RegistryClient(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def fetch(self, env: str, service_name: str) -> Registry:
        """Fetch the registry of ``env`` as seen by ``service_name``.

        Sends ``type=service`` (never ``mdaemon``, which crashes the gateway's handler).

        Raises:
            GatewayUnavailable: no connection, a timeout, or an HTTP error status.
            RegistryRejected: the gateway answered ``result: false`` (e.g. an unknown env).
            RegistryReplyMalformed: the reply is not a registry (not JSON, no ``data``, no
                ``environment``, or a shape the models refuse).
        """
        url = f"{self.base_url}/getRegistry"
        params = {"env": env, "serviceName": service_name, "type": "service"}
        response = self._exchange("GET", url, params=params)
        registry = parse_registry_reply(response.content)
        if registry is not None:
            return registry
        # Not a plain success: decode it again, only to say what is wrong with it.
        reply = _decode(response, "GET", url)
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
            GatewayUnavailable: no connection, a timeout, or an HTTP error status.
            RegistryRejected: ``result: false`` (an HA gateway always refuses; so does a port
                already taken by another service).
            RegistryReplyMalformed: the reply is not the gateway's register reply.
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
                    trust_env=False,
                    follow_redirects=False,
                    headers={"Accept": "application/json"},
                )
            return self._http

    def _call(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        return _decode(self._exchange(method, url, **options), method, url)

    def _exchange(self, method: str, url: str, **options: Any) -> httpx.Response:
        """Send one request; the reply, whose status is below 400."""
        try:
            response = self._client().request(method, url, **options)
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable(
                f"{method} {url} timed out after {self.timeout:g}s ({type(exc).__name__})", url=url
            ) from exc
        except httpx.TransportError as exc:
            raise GatewayUnavailable(
                f"{method} {url} failed: cannot reach the gateway maintenance API "
                f"({type(exc).__name__}); check SOAJS_REGISTRY_API",
                url=url,
            ) from exc
        status = response.status_code
        if status >= 400:
            hint = f": {self._data_port_hint()}" if status == 404 else ""
            raise GatewayUnavailable(
                f"{method} {url} answered HTTP {status}{hint}", url=url, status_code=status
            )
        return response

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


def _decode(response: httpx.Response, method: str, url: str) -> dict[str, Any]:
    """The reply body as a JSON object."""
    try:
        reply = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RegistryReplyMalformed(
            f"{method} {url} answered HTTP {response.status_code} with a body that is not JSON",
            url=url,
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


def _forget_pool_after_fork(ref: weakref.ref[RegistryClient]) -> Callable[[], None]:
    """Build the after-fork hook that gives a forked child its own lock and connection pool."""

    def forget() -> None:
        client = ref()
        if client is not None:
            # The inherited pool shares sockets with the parent and its lock may be held by a
            # parent thread that does not exist here: drop both, without closing the sockets.
            client._lock = threading.Lock()
            client._http = None

    return forget


def _describe(exc: ValidationError) -> str:
    """Name the refused fields without echoing their values (they may hold credentials)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:5]:
        location = ".".join(str(part) for part in error["loc"]) or "data"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")

"""The data port: route ``/<service>[/v<ver>]/<path>`` to a healthy host, as the gateway does.

A pure ASGI app. It checks the key, the package ACL and the user token in the real gateway's
order, builds ``soajsinjectobj`` for ``extKeyRequired`` services, proxies with httpx and
streams the reply back. Refusals use the gateway's error reply and codes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from soajs.gateway.access import (
    ERRORS,
    GatewayError,
    ResolvedKey,
    api_check,
    api_is_public,
    authenticate_user,
    find_key,
    resolve_acl,
)
from soajs.gateway.injection import (
    InterConnectHost,
    ServiceParams,
    build_inject_object,
    encode_inject_header,
    merge_config,
)
from soajs.gateway.state import RegistryState
from soajs.gateway.wire import GATEWAY_NAME, js_dumps, js_truthy

__all__ = ["DataPortApp", "Route", "error_payload", "has_dot_segment", "parse_route"]

logger = logging.getLogger("soajs.gateway")

Scope = dict[str, Any]
Message = dict[str, Any]

_VERSION_SEGMENT = re.compile(r"/v[0-9]+(.[0-9]+)?/")
_COLON_VERSION = re.compile(r":[0-9]+(.[0-9]+)?")
# Hop-by-hop headers are the connection's, not the request's; the rest are passed through.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"transfer-encoding",
    }
)
MAX_INJECT_HEADER_SIZE = 65536


@dataclass(frozen=True)
class Route:
    """A data-port URL split the gateway's way."""

    service: str
    version: str | None
    path: str


def parse_route(path: str) -> Route:
    """Split ``/<service>[/v<ver>]/<api>`` or ``/<service>:<ver>/<api>`` (``lib/parseURL.js``).

    The version segment needs a following segment: ``/hello/v1/echo`` is version ``1`` of
    ``hello`` at ``/echo``, while ``/hello/v1`` is ``/v1`` of the latest version.
    """
    segments = path.split("/")
    service = segments[1] if len(segments) > 1 else ""
    name, version = service, None
    match = _VERSION_SEGMENT.search(path)
    if match:
        hit = match.group(0).replace("/", "")
        if len(segments) > 3 and segments[2] == hit:
            version = hit.replace("v", "", 1)
            del segments[2]
    if version is None and ":" in service:
        index = service.index(":")
        if _COLON_VERSION.search(service):
            version = service[index + 1 :]
        name = service[:index]
    rest = "/".join(segments[2:])
    return Route(service=name, version=version, path="/" + rest)


def has_dot_segment(path: str) -> bool:
    """Whether ``path`` holds a ``.`` or ``..`` segment, once percent-decoded.

    httpx removes such segments from the URL it sends, so ``/hello/x/../admin`` would reach
    ``/admin`` after the ACL was checked for ``/x/../admin``; a server may decode ``%2e`` and
    do the same. The gateway refuses them instead of guessing what the service will see.
    """
    return any(segment in (".", "..") for segment in unquote(path).split("/"))


def error_payload(code: int) -> bytes:
    """The body of the gateway's error reply for ``code``."""
    message = ERRORS[code][1]
    reply = {
        "result": False,
        "errors": {"codes": [code], "details": [{"code": code, "message": message}]},
    }
    return js_dumps(reply).encode("utf-8")


def _redacted_target(path: str, query_string: str) -> str:
    """The request target for the log, query hidden: it carries ``key`` and ``access_token``,
    and a bare ``?<token>`` has no name that would tell it apart from a harmless one."""
    return f"{path}?***" if query_string else path


class DataPortApp:
    """The gateway's data port over a registry state.

    Args:
        state: the registry, hosts and health the gateway keeps.
        client: the httpx client used for proxying (set before serving).
    """

    def __init__(self, state: RegistryState, client: httpx.AsyncClient | None = None) -> None:
        self.state = state
        self.client = client

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_and_watch)
        except GatewayError as exc:
            await self._send_error(send_and_watch, exc.code)
        finally:
            # The one line per request; query values can hold the key or the user's token.
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
            target = _redacted_target(
                raw_path.decode("latin-1").split("?", 1)[0],
                scope.get("query_string", b"").decode("latin-1"),
            )
            logger.info("%s %s %s", scope["method"], target, status or "aborted")

    def _cors_headers(self) -> list[tuple[bytes, bytes]]:
        cors = self.state.cors
        if cors is None:
            return []
        pairs = [
            ("Access-Control-Allow-Origin", cors.get("origin", "*")),
            ("Access-Control-Allow-Credentials", cors.get("credentials", "true")),
            ("Access-Control-Expose-Headers", cors.get("headers", "")),
        ]
        return [(name.encode(), str(value).encode("latin-1")) for name, value in pairs]

    async def _send_error(self, send: Any, code: int) -> None:
        status = ERRORS[code][0]
        body = error_payload(code)
        headers = [*self._cors_headers(), (b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _preflight(self, send: Any) -> None:
        cors = self.state.cors or {}
        headers = [
            *self._cors_headers(),
            (b"Access-Control-Allow-Methods", str(cors.get("methods", "")).encode("latin-1")),
            (b"Access-Control-Allow-Headers", str(cors.get("headers", "")).encode("latin-1")),
            (b"Access-Control-Max-Age", str(cors.get("maxage", "")).encode("latin-1")),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _handle(self, scope: Scope, receive: Any, send: Any) -> None:
        state = self.state
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        path = raw_path.decode("latin-1").split("?", 1)[0]
        query_string = scope.get("query_string", b"").decode("latin-1")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        header_map: dict[str, str] = {}
        for raw_name, raw_value in headers:
            header_map.setdefault(raw_name.decode("latin-1").lower(), raw_value.decode("latin-1"))
        if method == "OPTIONS" and state.cors is not None:
            await self._preflight(send)
            return

        if has_dot_segment(path):
            raise GatewayError(195)
        route = parse_route(path)
        entry = state.services.get(route.service)
        if not route.service or entry is None or route.service == GATEWAY_NAME:
            raise GatewayError(130)
        key_value = header_map.get("key") or query.get("key")
        resolved = self._resolve_key(key_value)

        final_acl: dict[str, Any] | None = None
        version = route.version
        if resolved is not None:
            decision = resolve_acl(resolved, state.env, route.service, route.version, method)
            final_acl, version = decision.final_acl, decision.version
        version = version or state.latest(route.service)
        info = (entry.get("versions") or {}).get(version or "")
        if not isinstance(info, dict):
            raise GatewayError(133)
        params = ServiceParams.from_version(info)

        # Only a trigger for OAuth on public APIs; the user comes from Authorization (access.py).
        access_token = query.get("access_token") or header_map.get("access_token")

        inject_header: bytes | None = None
        if params.on("extKeyRequired"):
            inject_header = self._admit_private(
                resolved,
                route,
                params,
                final_acl=final_acl,
                access_token=access_token,
                header_map=header_map,
                scope=scope,
            )
        elif resolved is None and state.config.gateway.emulate_public_no_key_bug:
            # soajs.controller 4.3.3 sets the header `key` to undefined and the proxy fails.
            raise GatewayError(135)

        ip = state.pick_host(route.service, version)
        if ip is None:
            raise GatewayError(133)
        outgoing = _outgoing_headers(
            headers,
            header_map,
            inject_header=inject_header,
            query_key=None if header_map.get("key") else key_value,
        )
        target = route.path + (f"?{query_string}" if query_string else "")
        await self._proxy(
            scope,
            receive,
            send,
            ip=ip,
            entry=entry,
            target=target,
            headers=outgoing,
            header_map=header_map,
        )

    def _admit_private(
        self,
        resolved: ResolvedKey | None,
        route: Route,
        params: ServiceParams,
        *,
        final_acl: dict[str, Any] | None,
        access_token: str | None,
        header_map: dict[str, str],
        scope: Scope,
    ) -> bytes:
        """The ``extKeyRequired`` checks (key, OAuth, package ACL, API ACL) and the header."""
        if resolved is None:
            raise GatewayError(132)
        user = None
        services_config = resolved.env_config(self.state.env)
        tenant_oauth = resolved.tenant.oauth
        oauth_on = params.on("oauth") and not (tenant_oauth is not None and tenant_oauth.disabled)
        # The ACL is checked on the path as the service will read it (percent-decoded).
        api_path = unquote(route.path)
        if oauth_on and (access_token or not api_is_public(final_acl, api_path)):
            user = authenticate_user(tenant_oauth, header_map.get("authorization"))
            user_config = _user_key_config(user, resolved.key.i_key)
            services_config = merge_config(services_config, user_config)
        if final_acl is None:
            raise GatewayError(154)
        api_check(final_acl, api_path, user)
        return self._inject_header(
            resolved,
            route.service,
            params,
            services_config,
            device=header_map.get("user-agent"),
            client=scope.get("client"),
            user=user,
        )

    def _resolve_key(self, key_value: str | None) -> ResolvedKey | None:
        if not key_value:
            return None
        resolved = find_key(self.state.config, key_value)
        if resolved is None:
            raise GatewayError(148)
        if resolved.ext_key.env and resolved.ext_key.env.lower() != self.state.env:
            raise GatewayError(144)
        if resolved.package is None:
            raise GatewayError(149)
        return resolved

    def _user_acl(self, resolved: ResolvedKey, user: dict[str, Any] | None) -> tuple[Any, Any]:
        if user is None:
            return None, None
        groups_config = user.get("groupsConfig")
        allowed = (
            (groups_config.get("allowedPackages") or {}).get(resolved.application.product)
            if isinstance(groups_config, dict)
            else None
        )
        if not isinstance(allowed, list):
            return None, None
        merged: dict[str, Any] = {}
        for code in allowed:
            package = self.state.config.package(str(code))
            if package is not None:
                merged = merge_config(merged, package.acl)
        if not merged:
            return None, None
        return merged.get(self.state.env), merged

    def _inject_header(
        self,
        resolved: ResolvedKey,
        service: str,
        params: ServiceParams,
        services_config: dict[str, Any],
        *,
        device: str | None,
        client: tuple[str, int] | None,
        user: dict[str, Any] | None,
    ) -> bytes:
        state = self.state

        def locate(name: str, version: str | None) -> InterConnectHost | None:
            target = state.services.get(name)
            if target is None or not js_truthy(target.get("port")):
                return None
            return InterConnectHost(
                host=state.pick_host(name, version), port=target["port"], latest=state.latest(name)
            )

        inject = build_inject_object(
            resolved=resolved,
            env=state.env,
            service=service,
            params=params,
            services_config=services_config,
            device=device,
            client_ip=client[0] if client else None,
            user=user,
            user_acl=self._user_acl(resolved, user),
            awareness=(state.host, state.data_port),
            locate=locate,
        )
        try:
            encoded = encode_inject_header(inject)
        except UnicodeEncodeError:
            logger.warning("soajsinjectobj for %s holds characters above U+00FF", service)
            raise GatewayError(135) from None
        if len(encoded) > MAX_INJECT_HEADER_SIZE:
            logger.warning("soajsinjectobj for %s is larger than %d", service, len(encoded))
            raise GatewayError(135)
        return encoded

    async def _proxy(
        self,
        scope: Scope,
        receive: Any,
        send: Any,
        *,
        ip: str,
        entry: dict[str, Any],
        target: str,
        headers: list[tuple[bytes, bytes]],
        header_map: dict[str, str],
    ) -> None:
        if self.client is None:
            raise RuntimeError("the data port needs its httpx client before it serves")
        url = httpx.URL(
            scheme="http", host=ip, port=int(entry["port"]), raw_path=target.encode("latin-1")
        )
        has_body = "content-length" in header_map or "transfer-encoding" in header_map
        request = self.client.build_request(
            scope["method"],
            url,
            headers=headers,
            content=_request_body(receive) if has_body else None,
            timeout=_timeout(entry),
        )
        request.headers = httpx.Headers(_final_headers(headers, request.headers))
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            logger.warning("request to %s at %s timed out", url.path, ip)
            raise GatewayError(134) from None
        except httpx.HTTPError as exc:
            logger.warning("request to %s at %s failed: %s", url.path, ip, type(exc).__name__)
            raise GatewayError(135) from None
        try:
            reply_headers = self._cors_headers() + [
                (name, value)
                for name, value in response.headers.raw
                if name.lower() not in _HOP_BY_HOP
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": reply_headers,
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def _outgoing_headers(
    headers: list[tuple[bytes, bytes]],
    header_map: dict[str, str],
    *,
    inject_header: bytes | None,
    query_key: str | None,
) -> list[tuple[bytes, bytes]]:
    """The client's headers plus ``soajsinjectobj`` and an empty ``cookie``, as proxied."""
    outgoing: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            continue
        if inject_header is not None and lowered == b"soajsinjectobj":
            continue
        outgoing.append((name, value))
    if query_key:
        outgoing.append((b"key", query_key.encode("latin-1")))
    if inject_header is not None:
        outgoing.append((b"soajsinjectobj", inject_header))
    if "cookie" not in header_map:
        outgoing.append((b"cookie", b""))
    return outgoing


def _final_headers(
    outgoing: list[tuple[bytes, bytes]], built: httpx.Headers
) -> list[tuple[bytes, bytes]]:
    """The client's headers in their order, without httpx's defaults, framed like Node does.

    httpx adds its own Accept, Accept-Encoding and User-Agent and reorders; the gateway sends
    exactly the client's headers, then ``Connection: keep-alive``.
    """
    names = {name.lower() for name, _ in outgoing}
    final = list(outgoing)
    if b"host" not in names:
        final.insert(0, (b"Host", built["host"].encode("latin-1")))
    for name, value in built.raw:
        if name.lower() in (b"content-length", b"transfer-encoding") and name.lower() not in names:
            final.append((name, value))
    final.append((b"Connection", b"keep-alive"))
    return final


def _user_key_config(user: dict[str, Any], i_key: str) -> dict[str, Any]:
    config = user.get("config")
    keys = config.get("keys") if isinstance(config, dict) else None
    entry = keys.get(i_key) if isinstance(keys, dict) else None
    found = entry.get("config") if isinstance(entry, dict) else None
    return found if isinstance(found, dict) else {}


def _timeout(entry: dict[str, Any]) -> httpx.Timeout:
    given = entry.get("requestTimeout")
    seconds = given if isinstance(given, int) and given > 0 else 30
    given_renewals = entry.get("requestTimeoutRenewal")
    renewals = given_renewals if isinstance(given_renewals, int) and given_renewals > 0 else 0
    return httpx.Timeout(5.0, read=float(seconds * (renewals + 1)))


async def _request_body(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return

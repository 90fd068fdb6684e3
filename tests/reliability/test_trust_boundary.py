"""Trust boundary: a soajsinjectobj header from outside the allowlist, over real sockets.

The service listens on 127.0.0.1. The trusted gateway connects from 127.0.0.1; the forger from
127.0.0.2 (Linux routes all of 127/8 to the loopback interface), so the middleware sees the
real source address of a real TCP connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from helpers import UvicornThread, WSGIThread

from soajs import Settings, current_context
from soajs.asgi import SoajsASGIMiddleware
from soajs.wsgi import SoajsWSGIMiddleware

from .conftest import Figures
from .wire import RAW_HEADERS

GATEWAY = "127.0.0.1"
FORGER = "127.0.0.2"
ALLOWLIST = "127.0.0.1/32"
HEADER = {"soajsinjectobj": RAW_HEADERS["hello-get"]}
REQUESTS = 10  # per source address and test


def _reading() -> bytes:
    context = current_context()
    return json.dumps({"tenant": None if context is None else context.tenant.code}).encode()


async def asgi_handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = _reading()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def wsgi_handler(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = _reading()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


Serve = Callable[..., str]


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """Start the service (uvicorn + ASGI middleware, or werkzeug + WSGI middleware)."""
    running: list[UvicornThread | WSGIThread] = []

    def start(**options: Any) -> str:
        if request.param == "asgi":
            server: UvicornThread | WSGIThread = UvicornThread(
                SoajsASGIMiddleware(asgi_handler, **options)
            )
        else:
            server = WSGIThread(SoajsWSGIMiddleware(wsgi_handler, **options))
        running.append(server.start())
        return server.url

    yield start
    for server in running:
        server.stop()


_clients: dict[str, httpx.Client] = {}


@pytest.fixture(scope="module", autouse=True)
def clients() -> Iterator[None]:
    """One client per source address (building an httpx client costs an SSL context)."""
    for source in (GATEWAY, FORGER):
        _clients[source] = httpx.Client(transport=httpx.HTTPTransport(local_address=source))
    yield
    for client in _clients.values():
        client.close()
    _clients.clear()


def call_from(source: str, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET ``url`` over a connection whose source address is ``source``."""
    client = _clients[source]
    return client.get(url + "/hello", headers=headers if headers is not None else HEADER)


class TestSecondLoopbackAddress:
    def test_the_forger_address_is_what_the_service_sees(self, serve: Serve) -> None:
        """A connection from 127.0.0.2 reaches 127.0.0.1 and keeps its source address."""
        url = serve(settings=Settings(trusted_gateways=FORGER))
        assert call_from(FORGER, url).json() == {"tenant": "TTEN"}
        assert call_from(GATEWAY, url).json() == {"tenant": None}


class TestAllowlist:
    def test_ignore_policy_drops_a_forged_header(
        self, serve: Serve, caplog: pytest.LogCaptureFixture, figures: Figures
    ) -> None:
        """Under "ignore" the forged header gives no context (and a warning); the gateway's does."""
        caplog.set_level(logging.WARNING, logger="soajs")
        url = serve(settings=Settings(trusted_gateways=ALLOWLIST))
        forged = [call_from(FORGER, url) for _ in range(REQUESTS)]
        genuine = [call_from(GATEWAY, url) for _ in range(REQUESTS)]
        assert {(r.status_code, r.json()["tenant"]) for r in forged} == {(200, None)}
        assert {(r.status_code, r.json()["tenant"]) for r in genuine} == {(200, "TTEN")}
        dropped = [r for r in caplog.records if "untrusted peer 127.0.0.2" in r.getMessage()]
        assert len(dropped) == REQUESTS
        figures.record("trust/ignore", forged=REQUESTS, forged_accepted=0, genuine=REQUESTS)

    def test_reject_policy_refuses_a_forged_header(self, serve: Serve, figures: Figures) -> None:
        """Under "reject" the forged header gets the gateway's 403; the gateway's is served."""
        url = serve(settings=Settings(trusted_gateways=ALLOWLIST, header_policy="reject"))
        forged = [call_from(FORGER, url) for _ in range(REQUESTS)]
        genuine = [call_from(GATEWAY, url) for _ in range(REQUESTS)]
        assert {r.status_code for r in forged} == {403}
        assert {r.json()["errors"]["codes"][0] for r in forged} == {132}
        assert all(r.json()["result"] is False for r in forged)
        assert {(r.status_code, r.json()["tenant"]) for r in genuine} == {(200, "TTEN")}
        figures.record("trust/reject", forged=REQUESTS, forged_accepted=0, genuine=REQUESTS)

    def test_forwarded_for_does_not_launder_a_forger(self, serve: Serve) -> None:
        """X-Forwarded-For naming the gateway, sent straight from 127.0.0.2, changes nothing."""
        url = serve(settings=Settings(trusted_gateways=ALLOWLIST, header_policy="reject"))
        headers = {**HEADER, "X-Forwarded-For": GATEWAY, "X-Real-IP": GATEWAY}
        assert call_from(FORGER, url, headers).status_code == 403

    def test_public_service_never_trusts_the_header(self, serve: Serve) -> None:
        """With trust_header=False even the allowlisted gateway's header gives no context."""
        url = serve(settings=Settings(trusted_gateways=ALLOWLIST), trust_header=False)
        assert call_from(GATEWAY, url).json() == {"tenant": None}
        assert call_from(FORGER, url).json() == {"tenant": None}

    def test_without_an_allowlist_every_peer_is_trusted(self, serve: Serve) -> None:
        """The default (no SOAJS_TRUSTED_GATEWAYS) trusts the header from any address."""
        url = serve(settings=Settings())
        assert call_from(FORGER, url).json() == {"tenant": "TTEN"}


class TestUvicornProxyHeaders:
    """Uvicorn rewrites ``scope["client"]`` from X-Forwarded-For for its trusted proxies.

    By default (``--proxy-headers``, ``--forwarded-allow-ips=127.0.0.1``) a connection from
    127.0.0.1 may name any address in X-Forwarded-For, and the middleware then sees that
    address. Here the allowlist holds 127.0.0.2 (standing for the gateway) and the forger
    connects from 127.0.0.1, a local process uvicorn counts as a proxy.
    """

    def test_default_proxy_headers_let_a_trusted_proxy_name_the_peer(self) -> None:
        """With uvicorn's defaults the forwarded address decides: the forged header passes."""
        app = SoajsASGIMiddleware(asgi_handler, settings=Settings(trusted_gateways=FORGER))
        server = UvicornThread(app, forwarded_allow_ips="127.0.0.1").start()
        try:
            headers = {**HEADER, "X-Forwarded-For": FORGER}
            assert call_from(GATEWAY, server.url, headers).json() == {"tenant": "TTEN"}
        finally:
            server.stop()

    def test_without_proxy_headers_the_socket_peer_decides(self) -> None:
        """With ``--no-proxy-headers`` the same request is judged by its real source address."""
        app = SoajsASGIMiddleware(asgi_handler, settings=Settings(trusted_gateways=FORGER))
        server = UvicornThread(app, proxy_headers=False).start()
        try:
            headers = {**HEADER, "X-Forwarded-For": FORGER}
            assert call_from(GATEWAY, server.url, headers).json() == {"tenant": None}
        finally:
            server.stop()

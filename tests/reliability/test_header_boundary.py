"""One header, one meaning: duplicate headers, IPv4-mapped addresses, WebSockets, an open allowlist.

Duplicates go over real sockets where a server is involved (uvicorn, gunicorn, werkzeug), so
each server hands the app what it really makes of two ``soajsinjectobj`` lines: uvicorn gives
both pairs, the WSGI servers join them with ``,`` into one value.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path
from helpers import UvicornThread, WSGIThread, configure_django
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from werkzeug.test import Client as WerkzeugClient

import soajs.django
from soajs import Settings, current_context, header_policy
from soajs.asgi import SoajsASGIMiddleware
from soajs.container import SoajsContainer
from soajs.context import HeaderGuard
from soajs.testing import FakeRegistryManager
from soajs.wsgi import SoajsWSGIMiddleware

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from .services import Gunicorn
from .wire import RAW_HEADERS

configure_django()

GENUINE = RAW_HEADERS["hello-get"]
_forged = json.loads(GENUINE)
_forged["tenant"]["code"] = "FORGED"
FORGED = json.dumps(_forged, separators=(",", ":"))
ORDERS = {"genuine-then-forged": (GENUINE, FORGED), "forged-then-genuine": (FORGED, GENUINE)}
POLICY_VIOLATION = 1008  # WebSocket close code


def _tenant() -> bytes:
    context = current_context()
    return json.dumps({"tenant": None if context is None else context.tenant.code}).encode()


async def asgi_tenant(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = _tenant()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def wsgi_tenant(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = _tenant()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def raw_get(port: int, *headers: tuple[str, str]) -> tuple[int, Any]:
    """GET /hello over a raw socket, each header on its own line; the status and JSON body."""
    lines = ["GET /hello HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        # The standard library's parser reads the reply, chunked or not.
        reply = http.client.HTTPResponse(sock)
        reply.begin()
        return reply.status, json.loads(reply.read())


def refusal_code(body: Any) -> int:
    """The gateway error code of a refusal body."""
    assert body["result"] is False
    code: int = body["errors"]["codes"][0]
    return code


@pytest.fixture(params=["uvicorn", "werkzeug", "gunicorn"])
def server_port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Start the tenant service on a real server under a policy; yield its port."""
    started: list[Any] = []

    def start(policy: str) -> int:
        settings = Settings(header_policy=policy)
        if request.param == "uvicorn":
            server: Any = UvicornThread(SoajsASGIMiddleware(asgi_tenant, settings=settings))
        elif request.param == "werkzeug":
            server = WSGIThread(SoajsWSGIMiddleware(wsgi_tenant, settings=settings))
        else:
            gunicorn = Gunicorn(
                "reliability.gunicorn_tenant_app:app",
                tmp_path / "gunicorn.log",
                "--workers",
                "1",
                env={"SOAJS_HEADER_POLICY": policy},
            )
            started.append(gunicorn)
            gunicorn.wait_listening()
            return gunicorn.port
        started.append(server.start())
        return int(server.port)

    yield start
    for server in started:
        server.stop()


class TestDuplicateHeaders:
    """Two ``soajsinjectobj`` lines are one invalid header, on every server."""

    @pytest.mark.parametrize("order", sorted(ORDERS))
    def test_ignore_policy_gives_no_context(self, server_port: Any, order: str) -> None:
        """Under "ignore" a request with two headers has no context, whichever comes last."""
        port = server_port("ignore")
        first, second = ORDERS[order]
        assert raw_get(port, ("soajsinjectobj", GENUINE)) == (200, {"tenant": "TTEN"})
        status, body = raw_get(port, ("soajsinjectobj", first), ("soajsinjectobj", second))
        assert (status, body) == (200, {"tenant": None})

    @pytest.mark.parametrize("order", sorted(ORDERS))
    def test_reject_policy_answers_400_135(self, server_port: Any, order: str) -> None:
        """Under "reject" two headers get 400 with code 135, the invalid-header answer."""
        port = server_port("reject")
        first, second = ORDERS[order]
        assert raw_get(port, ("soajsinjectobj", GENUINE)) == (200, {"tenant": "TTEN"})
        status, body = raw_get(port, ("soajsinjectobj", first), ("soajsinjectobj", second))
        assert status == 400
        assert refusal_code(body) == 135

    def test_the_asgi_refusal_names_the_duplicate(self) -> None:
        """The ASGI middleware, which sees each line, says there were two headers."""
        app = SoajsASGIMiddleware(asgi_tenant, settings=Settings(header_policy="reject"))
        server = UvicornThread(app).start()
        try:
            headers = ("soajsinjectobj", GENUINE), ("soajsinjectobj", FORGED)
            status, body = raw_get(server.port, *headers)
        finally:
            server.stop()
        assert status == 400
        assert "2 soajsinjectobj headers" in body["errors"]["details"][0]["message"]


class TestSameAnswerEverywhere:
    """ASGI (each line) and WSGI (the joined value) give the same status and code."""

    @pytest.mark.parametrize(
        ("padding", "status"), [(0, 400), (40_000, 431)], ids=["small", "together-too-large"]
    )
    def test_asgi_and_wsgi_agree(self, padding: int, status: int) -> None:
        """Two lines get 400/135, or 431/135 when together they exceed the size limit."""
        header = json.loads(GENUINE)
        header["padding"] = "x" * padding
        line = json.dumps(header, separators=(",", ":"))
        settings = Settings(header_policy="reject")

        async def asgi_reply() -> httpx.Response:
            app = SoajsASGIMiddleware(asgi_tenant, settings=settings)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
                lines = [("soajsinjectobj", line), ("soajsinjectobj", line)]
                return await client.get("/hello", headers=lines)

        asgi = asyncio.run(asgi_reply())
        wsgi = WerkzeugClient(SoajsWSGIMiddleware(wsgi_tenant, settings=settings)).get(
            "/hello", environ_overrides={"HTTP_SOAJSINJECTOBJ": f"{line},{line}"}
        )
        assert (asgi.status_code, refusal_code(asgi.json())) == (status, 135)
        assert (wsgi.status_code, refusal_code(wsgi.get_json())) == (status, 135)


def django_tenant(request: HttpRequest) -> HttpResponse:
    context = request.soajs  # type: ignore[attr-defined]
    return JsonResponse({"tenant": None if context is None else context.tenant.code})


urlpatterns = [path("hello", django_tenant)]


@pytest.fixture
def django_service() -> Iterator[Any]:
    """This module's Django view behind SoajsMiddleware, configured per test with a policy."""
    containers: list[SoajsContainer] = []

    def configure(policy: str) -> None:
        container = SoajsContainer()
        container.settings.override(Settings(header_policy=policy))
        container.registry.override(FakeRegistryManager(autostart=False))
        soajs.django.configure(container, trust_header=True)
        containers.append(container)

    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["soajs.django.SoajsMiddleware"]):
        yield configure
    soajs.django.stop()
    for container in containers:
        container.reset_override()


class TestDuplicateHeadersDjango:
    """Django puts two header lines into META joined with ``,``, as the WSGI servers do."""

    @pytest.mark.parametrize("order", sorted(ORDERS))
    def test_ignore_policy_gives_no_context(self, django_service: Any, order: str) -> None:
        """Under "ignore" the joined value gives no context."""
        django_service("ignore")
        joined = ",".join(ORDERS[order])
        assert Client().get("/hello", HTTP_SOAJSINJECTOBJ=GENUINE).json() == {"tenant": "TTEN"}
        assert Client().get("/hello", HTTP_SOAJSINJECTOBJ=joined).json() == {"tenant": None}

    @pytest.mark.parametrize("order", sorted(ORDERS))
    def test_reject_policy_answers_400_135(self, django_service: Any, order: str) -> None:
        """Under "reject" the joined value gets 400 with code 135, as on ASGI."""
        django_service("reject")
        response = Client().get("/hello", HTTP_SOAJSINJECTOBJ=",".join(ORDERS[order]))
        assert response.status_code == 400
        assert refusal_code(response.json()) == 135


class TestIPv4MappedAddresses:
    """``::ffff:a.b.c.d`` means the IPv4 address, in the allowlist and as a peer."""

    @pytest.mark.parametrize(
        ("written", "network"),
        [
            ("::ffff:127.0.0.1", "127.0.0.1/32"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::FFFF:7f00:2", "127.0.0.2/32"),
        ],
    )
    def test_allowlist_entries_are_read_as_ipv4(self, written: str, network: str) -> None:
        """SOAJS_TRUSTED_GATEWAYS entries written as IPv4-mapped IPv6 become IPv4 networks."""
        settings = Settings(trusted_gateways=f"{written},::1")
        assert [str(item) for item in settings.trusted_gateways] == [network, "::1/128"]

    @pytest.mark.parametrize(
        ("allowlist", "peer", "trusted"),
        [
            ("::ffff:127.0.0.1", "127.0.0.1", True),
            ("::ffff:127.0.0.1", "::ffff:127.0.0.1", True),
            ("127.0.0.1", "::ffff:127.0.0.1", True),
            ("::ffff:127.0.0.0/104", "127.0.0.9", True),
            ("::ffff:127.0.0.1", "127.0.0.2", False),
            ("127.0.0.1", "::ffff:127.0.0.2", False),
        ],
    )
    def test_peer_comparison(self, allowlist: str, peer: str, trusted: bool) -> None:
        """A mapped peer matches an IPv4 entry and an IPv4 peer matches a mapped entry."""
        guard = HeaderGuard(Settings(trusted_gateways=allowlist))
        assert guard.is_trusted(peer) is trusted

    def test_a_mapped_allowlist_over_a_real_socket(self) -> None:
        """uvicorn on 127.0.0.1 with the allowlist ``::ffff:127.0.0.1`` trusts 127.0.0.1 only."""
        settings = Settings(trusted_gateways="::ffff:127.0.0.1", header_policy="reject")
        server = UvicornThread(SoajsASGIMiddleware(asgi_tenant, settings=settings)).start()
        try:
            header = {"soajsinjectobj": GENUINE}
            genuine = httpx.get(server.url + "/hello", headers=header)
            forger = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
            with forger:
                forged = forger.get(server.url + "/hello", headers=header)
        finally:
            server.stop()
        assert (genuine.status_code, genuine.json()) == (200, {"tenant": "TTEN"})
        assert forged.status_code == 403


async def websocket_tenant(websocket: WebSocket) -> None:
    """Accept, send the context's tenant, close."""
    await websocket.accept()
    context = current_context()
    await websocket.send_json({"tenant": None if context is None else context.tenant.code})
    await websocket.close()


def websocket_app(**settings: Any) -> SoajsASGIMiddleware:
    """A Starlette WebSocket endpoint behind the ASGI middleware."""
    app = Starlette(routes=[WebSocketRoute("/ws", websocket_tenant)])
    return SoajsASGIMiddleware(app, settings=Settings(**settings))


def websocket_tenant_of(
    app: SoajsASGIMiddleware, headers: dict[str, str], client: tuple[str, int]
) -> Any:
    """Open /ws from ``client`` with ``headers``; the tenant the endpoint reports."""
    with (
        TestClient(app, client=client) as test_client,
        test_client.websocket_connect("/ws", headers=headers) as websocket,
    ):
        return websocket.receive_json()["tenant"]


def websocket_close_code(
    app: SoajsASGIMiddleware, headers: dict[str, str], client: tuple[str, int]
) -> int:
    """Open /ws and return the code it was closed with before being accepted."""
    with (
        TestClient(app, client=client) as test_client,
        pytest.raises(WebSocketDisconnect) as closed,
        test_client.websocket_connect("/ws", headers=headers),
    ):
        pass
    return closed.value.code


class TestWebSockets:
    GATEWAY = ("127.0.0.1", 50000)
    FORGER = ("127.0.0.2", 50000)

    def test_reject_closes_a_websocket_from_an_untrusted_peer(self) -> None:
        """Under "reject" a WebSocket from outside the allowlist is closed with 1008, unaccepted."""
        app = websocket_app(header_policy="reject", trusted_gateways="127.0.0.1")
        code = websocket_close_code(app, {"soajsinjectobj": GENUINE}, self.FORGER)
        assert code == POLICY_VIOLATION

    @pytest.mark.parametrize(
        "headers",
        [{}, {"soajsinjectobj": "not json"}, {"soajsinjectobj": "{}"}],
        ids=["missing", "malformed", "invalid"],
    )
    def test_reject_closes_a_websocket_without_a_valid_header(
        self, headers: dict[str, str]
    ) -> None:
        """Under "reject" a WebSocket without a valid header is closed with 1008."""
        app = websocket_app(header_policy="reject", trusted_gateways="127.0.0.1")
        assert websocket_close_code(app, headers, self.GATEWAY) == POLICY_VIOLATION

    def test_reject_serves_a_websocket_with_a_trusted_header(self) -> None:
        """Under "reject" the gateway's WebSocket is accepted and its handler has the context."""
        app = websocket_app(header_policy="reject", trusted_gateways="127.0.0.1")
        tenant = websocket_tenant_of(app, {"soajsinjectobj": GENUINE}, self.GATEWAY)
        assert tenant == "TTEN"

    def test_ignore_drops_the_header_of_an_untrusted_websocket(self) -> None:
        """Under "ignore" an untrusted peer's WebSocket runs with no context."""
        app = websocket_app(trusted_gateways="127.0.0.1")
        assert websocket_tenant_of(app, {"soajsinjectobj": GENUINE}, self.FORGER) is None
        assert websocket_tenant_of(app, {"soajsinjectobj": GENUINE}, self.GATEWAY) == "TTEN"


@pytest.fixture
def first_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget that this process already warned about an open allowlist."""
    monkeypatch.setattr(header_policy, "_open_allowlist_warned", False)


def open_allowlist_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records warning that any peer can assert a tenant."""
    return [record for record in caplog.records if "any peer" in record.getMessage()]


class TestOpenAllowlistWarning:
    def test_one_warning_per_process(
        self, first_warning: None, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without SOAJS_TRUSTED_GATEWAYS the first middleware logs one warning; later ones none."""
        caplog.set_level(logging.WARNING, logger="soajs")
        SoajsASGIMiddleware(asgi_tenant, settings=Settings())
        SoajsWSGIMiddleware(wsgi_tenant, settings=Settings())
        SoajsASGIMiddleware(asgi_tenant, settings=Settings(header_policy="reject"))
        warned = open_allowlist_warnings(caplog)
        assert len(warned) == 1
        assert warned[0].levelno == logging.WARNING
        assert warned[0].name.startswith("soajs")
        assert "SOAJS_TRUSTED_GATEWAYS" in warned[0].getMessage()

    def test_django_setup_warns_too(
        self, first_warning: None, caplog: pytest.LogCaptureFixture, django_service: Any
    ) -> None:
        """The Django integration, set up without an allowlist, logs the same warning."""
        caplog.set_level(logging.WARNING, logger="soajs")
        django_service("ignore")
        assert len(open_allowlist_warnings(caplog)) == 1

    @pytest.mark.parametrize(
        "options",
        [{"settings": Settings(trusted_gateways="10.0.0.1")}, {"trust_header": False}],
        ids=["allowlist", "public-service"],
    )
    def test_no_warning_when_the_header_is_guarded(
        self, first_warning: None, caplog: pytest.LogCaptureFixture, options: dict[str, Any]
    ) -> None:
        """With an allowlist, or for a public service that never trusts the header, no warning."""
        caplog.set_level(logging.WARNING, logger="soajs")
        SoajsASGIMiddleware(asgi_tenant, **{"settings": Settings(), **options})
        assert open_allowlist_warnings(caplog) == []

"""Credentials never leave for another host: redirects and absolute URLs from connector clients.

The called service (or the gateway relaying it) listens on 127.0.0.1; a second server on
127.0.0.2 (Linux routes all of 127/8 to loopback) stands for any other host. The connector's
clients follow redirects when asked to; the other host must receive none of the headers that
carry the caller's credentials or identity, nor the token in its query string.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import UvicornThread

from soajs.connector import ServiceConnector
from soajs.errors import ConnectError
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData

from .wire import RAW_HEADERS

TOKEN = "user-token-6f1b"
AUTHORIZATION = "Bearer user-jwt-9c2d"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "congo=t61rcWkgMzE"
CREDENTIALS = (
    "key",
    "access_token",
    "authorization",
    "soajsinjectobj",
    "traceparent",
    "tracestate",
)


class Recorder:
    """An ASGI app that records every request and answers from a table of routes.

    Served by uvicorn, which hands over every header as received (werkzeug's server drops
    names with ``_``, such as ``access_token``, so it could not tell whether one was sent).
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, list[tuple[bytes, bytes]]]] = {}
        self.log: list[tuple[str, str, httpx.Headers]] = []

    def route(self, path: str, status: int = 200, location: str | None = None) -> None:
        """Answer ``path`` with ``status`` (and ``Location: location``)."""
        headers = [] if location is None else [(b"location", location.encode())]
        self.routes[path] = (status, headers)

    def received(self, path: str) -> tuple[str, httpx.Headers]:
        """The query string and headers of the one request received for ``path``."""
        found = [(query, headers) for seen, query, headers in self.log if seen == path]
        assert len(found) == 1, [seen for seen, _, _ in self.log]
        return found[0]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        headers = httpx.Headers(scope["headers"], encoding="latin-1")
        self.log.append((path, scope["query_string"].decode("latin-1"), headers))
        status, extra = self.routes.get(path, (404, []))
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b""})


class Server:
    """A :class:`Recorder` served by uvicorn on ``host``."""

    def __init__(self, host: str) -> None:
        self.app = Recorder()
        self.thread = UvicornThread(self.app, host)

    def url_for(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.thread.url + path

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.thread.port


@pytest.fixture(scope="module")
def service_server() -> Iterator[Server]:
    """The called service (or gateway) on 127.0.0.1, for the whole module."""
    server = Server("127.0.0.1")
    server.thread.start()
    yield server
    server.thread.stop()


@pytest.fixture(scope="module", params=["127.0.0.2", "127.0.0.1"])
def elsewhere_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Another origin: a second host (127.0.0.2), or the same host on another port."""
    server = Server(request.param)
    server.thread.start()
    yield server
    server.thread.stop()


def cleared(server: Server) -> Server:
    """``server`` with no routes and an empty log."""
    server.app.routes.clear()
    server.app.log.clear()
    return server


@pytest.fixture
def service(service_server: Server) -> Server:
    """The called service, fresh for the test."""
    return cleared(service_server)


@pytest.fixture
def elsewhere(elsewhere_server: Server) -> Server:
    """The other origin, fresh for the test."""
    return cleared(elsewhere_server)


def caller(service: Server, *, mesh: bool) -> ContextData:
    """A context whose gateway (with ``mesh``: whose ``hello`` target) is ``service``."""
    header = json.loads(RAW_HEADERS["hello-get"])
    awareness: dict[str, Any] = {"host": "127.0.0.1", "port": service.port, "interConnect": []}
    if mesh:
        awareness["interConnect"].append(
            {
                "name": "hello",
                "version": "1",
                "latest": "1",
                "host": "127.0.0.1",
                "port": service.port,
            }
        )
    header["awareness"] = awareness
    return parse_inject_header(json.dumps(header))


def connector(service: Server, *, mesh: bool = False) -> ServiceConnector:
    """A connector with a token, an Authorization header and trace headers to forward."""
    return ServiceConnector(
        caller(service, mesh=mesh),
        access_token=TOKEN,
        authorization=AUTHORIZATION,
        trace_headers={"traceparent": TRACEPARENT, "tracestate": TRACESTATE},
    )


def credentials_in(headers: httpx.Headers) -> dict[str, str]:
    """The credential headers among ``headers``."""
    return {name: headers[name] for name in CREDENTIALS if name in headers}


def call(client_kind: str, connector: ServiceConnector, path: str, **options: Any) -> int:
    """GET ``path`` through the connector's sync or async ``hello`` client, redirects followed."""
    if client_kind == "sync":
        with connector.client("hello", "1", follow_redirects=True) as client:
            return client.get(path, **options).status_code

    async def run() -> int:
        async with connector.async_client("hello", "1", follow_redirects=True) as client:
            return (await client.get(path, **options)).status_code

    return asyncio.run(run())


CLIENTS = ["sync", "async"]


class TestCrossOriginRedirects:
    @pytest.mark.parametrize("client_kind", CLIENTS)
    @pytest.mark.parametrize("status", [302, 307])
    @pytest.mark.parametrize("mesh", [False, True], ids=["gateway", "mesh"])
    def test_a_redirect_to_another_origin_carries_no_credentials(
        self,
        service: Server,
        elsewhere: Server,
        client_kind: str,
        status: int,
        mesh: bool,
    ) -> None:
        """A 302/307 to another origin is followed without key, token, Authorization, inject or
        trace headers."""
        base = "/go" if mesh else "/hello/v1/go"
        service.app.route(base, status, location=elsewhere.url_for("/landing"))
        elsewhere.app.route("/landing")
        assert call(client_kind, connector(service, mesh=mesh), "/go") == 200
        _, sent = service.app.received(base)
        identity = {"soajsinjectobj"} if mesh else {"key", "access_token", "authorization"}
        assert set(credentials_in(sent)) == identity | {"traceparent", "tracestate"}
        _, landed = elsewhere.app.received("/landing")
        assert credentials_in(landed) == {}

    @pytest.mark.parametrize("client_kind", CLIENTS)
    def test_a_same_origin_redirect_keeps_the_credentials(
        self, service: Server, client_kind: str
    ) -> None:
        """A redirect that stays on the resolved host keeps every header the connector sends."""
        service.app.route("/hello/v1/old", 302, location=service.url_for("/hello/v1/new"))
        service.app.route("/hello/v1/new")
        assert call(client_kind, connector(service), "/old") == 200
        _, moved = service.app.received("/hello/v1/new")
        assert credentials_in(moved) == {
            "key": parse_inject_header(RAW_HEADERS["hello-get"]).key.e_key,
            "access_token": TOKEN,
            "authorization": AUTHORIZATION,
            "traceparent": TRACEPARENT,
            "tracestate": TRACESTATE,
        }

    @pytest.mark.parametrize("client_kind", CLIENTS)
    def test_the_token_in_a_redirected_query_string_stays_behind(
        self, service: Server, elsewhere: Server, client_kind: str
    ) -> None:
        """A Location that echoes ``?access_token=`` loses the token; other parameters stay."""
        location = elsewhere.url_for(f"/landing?page=2&access_token={TOKEN}")
        service.app.route("/hello/v1/go", 307, location=location)
        elsewhere.app.route("/landing")
        options = {"params": {"access_token": TOKEN}}
        assert call(client_kind, connector(service), "/go", **options) == 200
        query, _ = service.app.received("/hello/v1/go")
        assert query == f"access_token={TOKEN}"
        query, landed = elsewhere.app.received("/landing")
        assert query == "page=2"
        assert credentials_in(landed) == {}


class TestAbsoluteURLs:
    @pytest.mark.parametrize("client_kind", CLIENTS)
    def test_an_absolute_url_to_another_origin_gets_no_credentials(
        self, elsewhere: Server, service: Server, client_kind: str
    ) -> None:
        """Any request a connector client sends off the resolved host goes without credentials."""
        elsewhere.app.route("/direct")
        assert call(client_kind, connector(service), elsewhere.url_for("/direct")) == 200
        _, sent = elsewhere.app.received("/direct")
        assert credentials_in(sent) == {}

    def test_explicit_credentials_to_another_origin_are_dropped_too(
        self, elsewhere: Server, service: Server
    ) -> None:
        """Headers named like the credentials, added per request, are not sent off-host either."""
        elsewhere.app.route("/direct")
        with connector(service).client("hello") as client:
            client.get(
                elsewhere.url_for("/direct"),
                headers={"access_token": "other", "Authorization": "Bearer other"},
            )
        _, sent = elsewhere.app.received("/direct")
        assert credentials_in(sent) == {}


BAD_VALUES = [
    pytest.param("tok\r\nX-Injected: 1", id="CRLF"),
    pytest.param("tok\x00en", id="NUL"),
    pytest.param("tok\x7f", id="DEL"),
    pytest.param("tok\x1ben", id="ESC"),
    pytest.param("t\u00f6k\u20ac", id="beyond-Latin-1"),
    pytest.param(" tok", id="leading-blank"),
]


class TestHeaderValues:
    """Values no HTTP header may carry give a ConnectError naming the header."""

    @pytest.mark.parametrize("value", BAD_VALUES)
    def test_access_token(self, service: Server, value: str) -> None:
        """A forwarded access_token no header can hold is refused when the call is addressed."""
        connector = ServiceConnector(caller(service, mesh=False), access_token=value)
        with pytest.raises(ConnectError, match="'access_token' header") as caught:
            connector.connect("hello")
        assert value not in str(caught.value)
        with pytest.raises(ConnectError, match="'access_token' header"):
            connector.client("hello")
        with pytest.raises(ConnectError, match="'access_token' header"):
            connector.async_client("hello")

    @pytest.mark.parametrize("value", BAD_VALUES)
    def test_e_key(self, service: Server, value: str) -> None:
        """An eKey no header can hold (JSON escapes let a header carry one) is refused."""
        header = json.loads(RAW_HEADERS["hello-get"])
        header["key"]["eKey"] = value
        header["awareness"] = {"host": "127.0.0.1", "port": service.port}
        context = parse_inject_header(json.dumps(header))
        with pytest.raises(ConnectError, match="'key' header"):
            ServiceConnector(context).client("hello")

    @pytest.mark.parametrize("value", BAD_VALUES)
    def test_authorization(self, service: Server, value: str) -> None:
        """A forwarded Authorization value no header can hold is refused, its value not shown."""
        connector = ServiceConnector(caller(service, mesh=False), authorization=value)
        with pytest.raises(ConnectError, match="'Authorization' header") as caught:
            connector.connect("hello")
        assert value not in str(caught.value)
        with pytest.raises(ConnectError, match="'Authorization' header"):
            connector.async_client("hello")

    def test_trace_header(self, service: Server) -> None:
        """A forwarded trace header is checked the same way."""
        connector = ServiceConnector(
            caller(service, mesh=True), trace_headers={"traceparent": "00-\n-01"}
        )
        with pytest.raises(ConnectError, match="'traceparent' header"):
            connector.connect("hello", "1")

    def test_latin1_and_tabs_are_sent(self, service: Server) -> None:
        """Latin-1 text (what Node sends) and inner blanks are valid header values and go out."""
        service.app.route("/hello/echo")
        token = "caf\u00e9\ttok en"
        with ServiceConnector(caller(service, mesh=False), access_token=token).client(
            "hello"
        ) as client:
            assert client.get("/echo").status_code == 200
        _, sent = service.app.received("/hello/echo")
        assert sent["access_token"].encode("latin-1") == token.encode("latin-1")

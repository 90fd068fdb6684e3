"""ServiceConnector: mesh vs gateway addressing (docs/protocol.md §6), ready httpx clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fixture_paths import FIXTURES
from pytest_httpserver import HTTPServer

import soajs
from soajs.connector import ConnectResponse, ServiceConnector
from soajs.context import RequestContext, reset_current_request, set_current_request
from soajs.errors import ConnectError, RegistryError
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData

CAPTURED_RAW: dict[str, str] = json.loads(
    (FIXTURES / "captured" / "soajsinjectobj.raw-header-strings.json").read_text()
)
UPSTREAM_RAW: dict[str, str] = json.loads(
    (FIXTURES / "upstream" / "soajsinjectobj.raw-header-strings.json").read_text()
)
CALLER: dict[str, Any] = json.loads(
    (FIXTURES / "captured" / "soajsinjectobj.caller-interconnect.json").read_text()
)
E_KEY: str = CALLER["key"]["eKey"]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "congo=t61rcWkgMzE"


def header_with(awareness: dict[str, Any] | None, **changes: Any) -> str:
    """The captured caller header as JSON text, with another ``awareness`` (None: none)."""
    header = {**CALLER, **changes}
    header.pop("awareness")
    if awareness is not None:
        header["awareness"] = awareness
    return json.dumps(header, separators=(",", ":"))


def context_with(awareness: dict[str, Any] | None, **changes: Any) -> ContextData:
    """Parse :func:`header_with`."""
    return parse_inject_header(header_with(awareness, **changes))


def gateway(*inter_connect: dict[str, Any], host: str = "gw", port: int = 4000) -> dict[str, Any]:
    """An ``awareness`` object for a gateway at ``host:port`` with these interConnect items."""
    return {"host": host, "port": port, "interConnect": list(inter_connect)}


def target(name: str, version: Any, latest: Any = "1", port: int = 4100) -> dict[str, Any]:
    """An ``awareness.interConnect`` item as the gateway resolves it."""
    return {"name": name, "version": version, "host": "10.0.0.7", "port": port, "latest": latest}


def without(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``item`` without ``keys``: JavaScript's ``undefined`` rather than ``null``."""
    return {key: value for key, value in item.items() if key not in keys}


def registry_named(gateway_name: str | None) -> SimpleNamespace:
    """A registry source whose gateway entry (``services.controller``) has this name."""
    services = {"controller": SimpleNamespace(name=gateway_name, port=4000)}
    return SimpleNamespace(registry=SimpleNamespace(services=services))


@contextmanager
def serving(request: RequestContext) -> Iterator[RequestContext]:
    """Make ``request`` the current request, as the middleware does, for the block."""
    token = set_current_request(request)
    try:
        yield request
    finally:
        reset_current_request(token)


class TestGatewayHost:
    """The host string of a gateway call is the one soajs core builds (§6.2)."""

    @pytest.mark.parametrize(
        ("service", "version", "host"),
        [
            ("urac", None, "gw:4000/urac"),
            ("urac", "2", "gw:4000/urac/v2"),
            ("urac", "1.2", "gw:4000/urac/v1.2"),
            ("controller", None, "gw:4000"),
            ("controller", "1", "gw:4000"),
            ("CONTROLLER", None, "gw:4000"),
            (None, None, "gw:4000"),
            ("", None, "gw:4000"),
            ("urac", "", "gw:4000/urac"),
            ("urac", "latest", "gw:4000/urac"),
            ("urac", "v1", "gw:4000/urac"),
        ],
    )
    def test_host_string(self, service: str | None, version: str | None, host: str) -> None:
        """Each call of the §6.2 table gives soajs core's host, with no trailing slash."""
        connection = ServiceConnector(context_with(gateway())).connect(service, version)
        assert connection.host == host
        assert connection.mesh is False

    @pytest.mark.parametrize(
        ("service", "version", "host"),
        [
            ("gateway", None, "gw:4000"),
            ("Gateway", "1", "gw:4000"),
            ("controller", None, "gw:4000/controller"),
            ("urac", "2", "gw:4000/urac/v2"),
        ],
    )
    def test_gateway_name_from_registry(self, service: str, version: str | None, host: str) -> None:
        """The gateway's own name is read from the registry's ``services.controller.name``."""
        connector = ServiceConnector(context_with(gateway()), registry=registry_named("gateway"))
        assert connector.connect(service, version).host == host

    @pytest.mark.parametrize(
        "registry",
        [
            registry_named(None),
            SimpleNamespace(registry=SimpleNamespace(services={})),
            SimpleNamespace(registry=SimpleNamespace(services=None)),
            SimpleNamespace(registry=None),
        ],
    )
    def test_gateway_name_defaults_to_controller(self, registry: SimpleNamespace) -> None:
        """Without a named gateway entry in the registry the gateway is called "controller"."""
        connector = ServiceConnector(context_with(gateway()), registry=registry)
        assert connector.connect("controller").host == "gw:4000"

    def test_registry_not_loaded_yet(self) -> None:
        """A registry that is not loaded yet leaves the gateway's name as "controller"."""

        class NotLoaded:
            @property
            def registry(self) -> SimpleNamespace:
                raise RegistryError("the 'dev' registry is not loaded yet")

        connector = ServiceConnector(context_with(gateway()), registry=NotLoaded())
        assert connector.connect("controller").host == "gw:4000"
        assert connector.connect("urac").host == "gw:4000/urac"

    def test_url_prefixes_the_scheme(self) -> None:
        """``url`` is ``http://`` followed by the host string."""
        connection = ServiceConnector(context_with(gateway())).connect("urac", "2")
        assert connection.url == "http://gw:4000/urac/v2"


class TestGatewayHeaders:
    """A gateway call carries the caller's key, its access token and its trace (§6.3)."""

    def test_key_only(self) -> None:
        """Without a token the headers are just the external key."""
        connection = ServiceConnector(context_with(gateway())).connect("urac")
        assert connection.headers == {"key": E_KEY}

    def test_access_token_forwarded(self) -> None:
        """The incoming request's access token is forwarded next to the key."""
        connector = ServiceConnector(context_with(gateway()), access_token="tok-123")
        assert connector.connect("urac").headers == {"key": E_KEY, "access_token": "tok-123"}

    def test_authorization_forwarded(self) -> None:
        """The caller's Authorization header is forwarded next to the key and token."""
        connector = ServiceConnector(
            context_with(gateway()), access_token="tok-123", authorization="Bearer jwt-1"
        )
        assert connector.connect("urac").headers == {
            "key": E_KEY,
            "access_token": "tok-123",
            "Authorization": "Bearer jwt-1",
        }

    def test_authorization_forwarded_without_token(self) -> None:
        """The Authorization header goes without an access token: the gateway reads it alone."""
        connector = ServiceConnector(context_with(gateway()), authorization="Bearer jwt-2")
        assert connector.connect().headers == {"key": E_KEY, "Authorization": "Bearer jwt-2"}

    def test_trace_headers_forwarded(self) -> None:
        """W3C trace headers are forwarded on gateway calls."""
        trace = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
        connector = ServiceConnector(context_with(gateway()), trace_headers=trace)
        assert connector.connect().headers == {"key": E_KEY, **trace}

    def test_empty_key_not_sent(self) -> None:
        """An empty eKey is not sent as an empty ``key`` header."""
        context = context_with(gateway(), key={**CALLER["key"], "eKey": ""})
        assert ServiceConnector(context).connect("urac").headers == {}

    def test_gateway_call_needs_a_host(self) -> None:
        """Awareness without a gateway host cannot address a gateway call."""
        context = context_with({"port": 4000, "interConnect": [target("hello", "1")]})
        with pytest.raises(ConnectError, match=r"awareness\.host"):
            ServiceConnector(context).connect("urac")


class TestMesh:
    """interConnect targets are called directly with the header forwarded verbatim (§6.1)."""

    def test_captured_interconnect_is_mesh(self) -> None:
        """The captured caller header reaches ``hello`` at its own host and port."""
        raw = CAPTURED_RAW["caller-interconnect"]
        connection = ServiceConnector(parse_inject_header(raw.encode("latin-1"))).connect("hello")
        assert connection.mesh is True
        assert connection.host == "127.0.0.1:4100"
        assert connection.headers == {"soajsinjectobj": raw}

    @pytest.mark.parametrize(
        ("raw", "service"),
        [
            (CAPTURED_RAW["caller-interconnect"], "hello"),
            *((value, "urac") for value in UPSTREAM_RAW.values()),
        ],
    )
    def test_header_forwarded_byte_for_byte(self, raw: str, service: str) -> None:
        """The forwarded value is the received header, byte for byte (not re-serialised)."""
        received = raw.encode("latin-1")
        connection = ServiceConnector(parse_inject_header(received)).connect(service)
        assert connection.headers["soajsinjectobj"].encode("latin-1") == received

    def test_latin1_header_forwarded_byte_for_byte(self) -> None:
        """A header with Latin-1 bytes (a tenant named with é) is forwarded unchanged."""
        received = (
            CAPTURED_RAW["caller-interconnect"].replace("Test Tenant", "T\xe9st").encode("latin-1")
        )
        assert b"T\xe9st" in received
        connection = ServiceConnector(parse_inject_header(received)).connect("hello")
        assert connection.httpx_headers().raw == [(b"soajsinjectobj", received)]

    @pytest.mark.parametrize(
        ("item", "version", "mesh"),
        [
            (target("hello", "1", latest="1"), None, True),
            (target("hello", "1", latest="1"), "1", True),
            (target("hello", "1", latest="2"), None, False),
            (target("hello", "1", latest="2"), "1", True),
            (target("hello", "1", latest="1"), "2", False),
            (target("hello", "1", latest="1"), "1.0", False),
            (target("hello", None, latest=None), None, True),
            (target("hello", None, latest="1"), None, True),
            (target("hello", None, latest="1"), "1", False),
            (target("hello", None, latest=None), "1", False),
            (without(target("hello", None), "version"), None, False),
            (without(target("hello", None), "version"), "1", False),
            (without(target("hello", None), "version", "latest"), None, True),
            (without(target("hello", None), "version", "latest"), "1", False),
            (without(target("hello", "1"), "latest"), None, False),
            (without(target("hello", "1"), "latest"), "1", True),
            (target("hello", "1", latest="1"), "", True),
            (target("hello", None, latest=None), "", True),
            (target("hello", None, latest="1"), "", False),
            (target("hello", 1, latest="1"), None, False),
            (target("hello", 1, latest="1"), "1", False),
            (target("hello", "1", latest=None), None, False),
            (target("other", "1", latest="1"), None, False),
        ],
    )
    def test_version_matching(self, item: dict[str, Any], version: str | None, mesh: bool) -> None:
        """Versions match as exact strings; null or numeric versions never match a string."""
        connection = ServiceConnector(context_with(gateway(item))).connect("hello", version)
        assert connection.mesh is mesh
        expected = (
            "10.0.0.7:4100" if mesh else "gw:4000/hello" + (f"/v{version}" if version else "")
        )
        assert connection.host == expected

    def test_first_matching_item_wins(self) -> None:
        """With several items of the same name the first that matches is used."""
        awareness = gateway(
            target("hello", "1", latest="2", port=4101), target("hello", "2", latest="2", port=4102)
        )
        connector = ServiceConnector(context_with(awareness))
        assert connector.connect("hello").host == "10.0.0.7:4102"
        assert connector.connect("hello", "1").host == "10.0.0.7:4101"

    def test_item_without_host_is_not_a_target(self) -> None:
        """An item the gateway could not resolve to a host is skipped."""
        item = {"name": "hello", "version": "1", "port": 4100, "latest": "1"}
        assert ServiceConnector(context_with(gateway(item))).connect("hello").mesh is False

    def test_mesh_needs_a_name(self) -> None:
        """No service name means the gateway, even when an item has an empty name."""
        item = target("", "1")
        assert ServiceConnector(context_with(gateway(item))).connect().host == "gw:4000"

    def test_mesh_headers_carry_trace_but_no_key(self) -> None:
        """A mesh call forwards the header and the trace, never a key, token or Authorization."""
        raw = header_with(gateway(target("hello", "1")))
        connector = ServiceConnector(
            parse_inject_header(raw),
            access_token="tok",
            authorization="Bearer jwt",
            trace_headers={"traceparent": TRACEPARENT},
        )
        assert connector.connect("hello").headers == {
            "soajsinjectobj": raw,
            "traceparent": TRACEPARENT,
        }

    def test_context_built_in_code_forwards_its_json(self) -> None:
        """A context with no received header forwards its JSON, which parses back the same."""
        context = ContextData.model_validate(json.loads(header_with(gateway(target("hello", "1")))))
        forwarded = ServiceConnector(context).connect("hello").headers["soajsinjectobj"]
        assert forwarded.isascii()
        assert parse_inject_header(forwarded).model_dump() == context.model_dump()

    def test_no_gateway_host_no_mesh_either(self) -> None:
        """Without awareness.host soajs core answers nothing, mesh target or not: ConnectError."""
        context = context_with({"port": 4000, "interConnect": [target("hello", "1")]})
        with pytest.raises(ConnectError, match=r"awareness\.host"):
            ServiceConnector(context).connect("hello")

    def test_mesh_works_without_gateway_port(self) -> None:
        """A mesh target needs the gateway host but not its port."""
        context = context_with({"host": "gw", "interConnect": [target("hello", "1")]})
        assert ServiceConnector(context).connect("hello").host == "10.0.0.7:4100"


class TestConnectResponse:
    """The connect result is immutable, cached and never shows secrets."""

    def test_cached_per_connector(self) -> None:
        """Connecting twice to the same service gives back the same response."""
        connector = ServiceConnector(context_with(gateway(target("hello", "1"))))
        assert connector.connect("hello") is connector.connect("hello")
        assert connector.connect("hello", "2") is not connector.connect("hello")

    def test_headers_read_only(self) -> None:
        """The headers cannot be changed in place (the response is shared by later calls)."""
        connection = ServiceConnector(context_with(gateway())).connect("urac")
        with pytest.raises(TypeError):
            connection.headers["key"] = "other"  # type: ignore[index]
        assert {**connection.headers, "x-extra": "1"} == {"key": E_KEY, "x-extra": "1"}

    def test_repr_hides_headers(self) -> None:
        """Neither the response nor the connector shows the key, the token or the header."""
        connector = ServiceConnector(context_with(gateway()), access_token="tok-secret")
        connection = connector.connect("urac")
        for text in (repr(connection), str(connection), repr(connector)):
            assert E_KEY not in text
            assert "tok-secret" not in text
        assert "gw:4000/urac" in repr(connection)

    def test_public_names(self) -> None:
        """``soajs.ServiceConnector`` and ``soajs.ConnectResponse`` are these classes."""
        assert soajs.ServiceConnector is ServiceConnector
        assert soajs.ConnectResponse is ConnectResponse


class TestCurrentRequest:
    """Without explicit values the connector uses what the middleware captured."""

    def test_everything_from_the_request(self) -> None:
        """Context, access token and trace headers come from the current request."""
        captured = RequestContext(
            header_with(gateway()).encode("latin-1"),
            access_token="tok-1",
            traceparent=TRACEPARENT,
            tracestate=TRACESTATE,
        )
        with serving(captured):
            connector = ServiceConnector()
        assert connector.context is captured.context
        assert connector.connect("urac").headers == {
            "key": E_KEY,
            "access_token": "tok-1",
            "traceparent": TRACEPARENT,
            "tracestate": TRACESTATE,
            # The request's id: traceparent's trace id, forwarded for callees that log it.
            "x-request-id": TRACEPARENT.split("-")[1],
        }

    def test_authorization_from_the_request(self) -> None:
        """The current request's Authorization header goes on gateway calls, not mesh calls."""
        awareness = gateway(target("hello", "1"))
        captured = RequestContext(
            header_with(awareness).encode("latin-1"), authorization="Bearer user-jwt"
        )
        with serving(captured):
            connector = ServiceConnector()
        assert connector.connect("urac").headers == {
            "key": E_KEY,
            "Authorization": "Bearer user-jwt",
            "x-request-id": captured.request_id,
        }
        mesh = connector.connect("hello", "1")
        assert mesh.mesh
        assert "Authorization" not in mesh.headers

    def test_explicit_values_win(self) -> None:
        """An explicit context, token and trace replace the current request's."""
        captured = RequestContext(
            header_with(gateway(host="other")), access_token="tok-1", traceparent=TRACEPARENT
        )
        with serving(captured):
            connector = ServiceConnector(
                context_with(gateway()), access_token="tok-2", trace_headers={}
            )
        assert connector.connect("urac").host == "gw:4000/urac"
        assert connector.connect("urac").headers == {"key": E_KEY, "access_token": "tok-2"}

    def test_explicit_context_keeps_the_request_token(self) -> None:
        """The seed form ``ServiceConnector(context)`` still forwards the request's token."""
        with serving(RequestContext(access_token="tok-3", tracestate=TRACESTATE)) as captured:
            connector = ServiceConnector(context_with(gateway()))
        assert connector.connect("urac").headers == {
            "key": E_KEY,
            "access_token": "tok-3",
            "tracestate": TRACESTATE,
            "x-request-id": captured.request_id,
        }

    def test_captured_when_created(self) -> None:
        """A connector made during a request keeps working after the request ended."""
        with serving(RequestContext(header_with(gateway()))):
            connector = ServiceConnector()
        assert connector.connect("urac").host == "gw:4000/urac"

    @pytest.mark.parametrize(
        ("captured", "reason"),
        [
            (RequestContext(), "has no soajsinjectobj header"),
            (RequestContext(b"{not json"), "header is invalid"),
            (RequestContext(header_with(gateway()), trusted=False), "not trusted"),
        ],
    )
    def test_request_without_context(self, captured: RequestContext, reason: str) -> None:
        """A request with no usable header gives a ConnectError saying why."""
        with serving(captured):
            connector = ServiceConnector()
        with pytest.raises(ConnectError, match=reason):
            connector.connect("urac")


class TestErrors:
    """Calls that cannot be addressed raise ConnectError with a message saying why."""

    def test_no_awareness(self) -> None:
        """A header without awareness cannot address any call."""
        connector = ServiceConnector(context_with(None))
        with pytest.raises(ConnectError, match="awareness"):
            connector.connect("urac")
        with pytest.raises(ConnectError, match="awareness"):
            connector.connect()

    def test_no_context(self) -> None:
        """A connector made outside any request, with no context, explains what to pass."""
        with pytest.raises(ConnectError, match="no request context"):
            ServiceConnector().connect("urac")

    def test_bad_authorization_value(self) -> None:
        """An Authorization value no header can carry is refused, naming the header only."""
        connector = ServiceConnector(context_with(gateway()), authorization="Bearer a\r\nX-Evil: 1")
        with pytest.raises(ConnectError, match="'Authorization' header") as caught:
            connector.connect("urac")
        assert "X-Evil" not in str(caught.value)

    def test_negative_retries(self) -> None:
        """A negative retry count is refused at construction."""
        with pytest.raises(ValueError, match="retries"):
            ServiceConnector(context_with(gateway()), retries=-1)


class TestClients:
    """The ready httpx clients call the addressed service with the headers set."""

    def test_sync_client_through_gateway(self, httpserver: HTTPServer) -> None:
        """The sync client sends to the gateway path with the key and extra headers."""
        httpserver.expect_request(
            "/hello/v1/echo", headers={"key": E_KEY, "x-extra": "yes"}
        ).respond_with_json({"ok": True})
        context = context_with(gateway(host="127.0.0.1", port=httpserver.port))
        connector = ServiceConnector(context, timeout=2.5)
        with connector.client("hello", "1", headers={"x-extra": "yes"}) as client:
            assert client.timeout == httpx.Timeout(2.5)
            reply = client.get("/echo")
        assert reply.json() == {"ok": True}
        assert client.is_closed

    def test_seed_snippet(self, httpserver: HTTPServer) -> None:
        """The seed README's ``httpx.get(f"http://{connection.host}/endpoint", ...)`` works."""
        httpserver.expect_request(
            "/auth-service/v1/endpoint", headers={"key": E_KEY}
        ).respond_with_json({"seed": True})
        context = context_with(gateway(host="127.0.0.1", port=httpserver.port))
        connection = ServiceConnector(context).connect("auth-service", version="1")
        response = httpx.get(f"http://{connection.host}/endpoint", headers=connection.headers)
        assert response.json() == {"seed": True}

    def test_httpx_options_override(self, httpserver: HTTPServer) -> None:
        """Options given to ``client()`` replace the connector's defaults."""
        context = context_with(gateway(host="127.0.0.1", port=httpserver.port))
        with ServiceConnector(context).client(
            "hello", timeout=1.0, follow_redirects=True
        ) as client:
            assert client.timeout == httpx.Timeout(1.0)
            assert client.follow_redirects is True
            assert str(client.base_url) == f"http://127.0.0.1:{httpserver.port}/hello/"

    def test_async_client_through_mesh(self, httpserver: HTTPServer) -> None:
        """The async client calls a mesh target directly with the raw header."""
        raw = header_with(
            gateway(target("hello", "1") | {"host": "127.0.0.1", "port": httpserver.port})
        )
        httpserver.expect_request("/echo", headers={"soajsinjectobj": raw}).respond_with_json(
            {"mesh": True}
        )

        async def call() -> dict[str, Any]:
            async with ServiceConnector(parse_inject_header(raw)).async_client("hello") as client:
                reply = await client.get("/echo")
            return dict(reply.json())

        assert asyncio.run(call()) == {"mesh": True}

    def test_retries_configure_the_transport(self, httpserver: HTTPServer) -> None:
        """With retries the client gets an httpx transport that retries failed connects."""
        httpserver.expect_request("/hello/echo").respond_with_json({"ok": True})
        context = context_with(gateway(host="127.0.0.1", port=httpserver.port))
        limits = httpx.Limits(max_connections=3)
        with ServiceConnector(context, retries=2).client("hello", limits=limits) as client:
            pool = client._transport._pool  # type: ignore[attr-defined]
            assert pool._retries == 2
            assert pool._max_connections == 3
            assert client.get("/echo").json() == {"ok": True}

    def test_retries_on_async_transport(self) -> None:
        """The async client gets the same retrying transport."""
        connector = ServiceConnector(context_with(gateway()), retries=1)

        async def retries() -> int:
            async with connector.async_client("hello") as client:
                return int(client._transport._pool._retries)  # type: ignore[attr-defined]

        assert asyncio.run(retries()) == 1

    def test_client_without_context_raises(self) -> None:
        """Building a client for a call that cannot be addressed raises ConnectError."""
        with pytest.raises(ConnectError):
            ServiceConnector().client("hello")

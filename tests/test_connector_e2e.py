"""ServiceConnector end to end: FastAPI services under uvicorn on 127.0.0.1 calling each other."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fixture_paths import FIXTURES
from helpers import UvicornThread

from soajs.asgi import SoajsASGIMiddleware
from soajs.connector import ServiceConnector
from soajs.fastapi import SoajsConnector
from soajs.inject import parse_inject_header
from soajs.settings import Settings

CALLER: dict[str, Any] = json.loads(
    (FIXTURES / "captured" / "soajsinjectobj.caller-interconnect.json").read_text()
)
E_KEY: str = CALLER["key"]["eKey"]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass
class Recorder:
    """The requests a recording service received: path and raw header bytes, in order."""

    requests: list[tuple[str, list[tuple[bytes, bytes]]]] = field(default_factory=list)

    def header(self, index: int, name: bytes) -> bytes | None:
        """The raw value of header ``name`` in request ``index``."""
        return dict(self.requests[index][1]).get(name)


def recording_app(name: str, recorder: Recorder) -> FastAPI:
    """A FastAPI service answering every path with its name, recording each raw request."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def record(request: Request) -> dict[str, str]:
        recorder.requests.append((request.url.path, list(request.scope["headers"])))
        return {"service": name, "path": request.url.path}

    return app


def caller_app() -> FastAPI:
    """A FastAPI service whose handlers call another service through ServiceConnector."""
    app = FastAPI()

    def connector_for(request: Request) -> ServiceConnector:
        raw = dict(request.scope["headers"])[b"soajsinjectobj"]
        trace = request.headers.get("traceparent")
        return ServiceConnector(
            parse_inject_header(raw),
            access_token=request.query_params.get("access_token"),
            trace_headers={"traceparent": trace} if trace else None,
        )

    @app.get("/call-sync")
    def call_sync(request: Request, service: str, version: str | None = None) -> Any:
        with connector_for(request).client(service, version) as client:
            return client.get("/echo").json()

    @app.get("/call-async")
    async def call_async(request: Request, service: str, version: str | None = None) -> Any:
        async with connector_for(request).async_client(service, version) as client:
            reply = await client.get("/echo")
        return reply.json()

    return app


def middleware_caller_app() -> FastAPI:
    """A caller behind the soajs middleware: connectors take everything from the request."""
    app = FastAPI()
    app.add_middleware(SoajsASGIMiddleware, settings=Settings(), heartbeat=False)

    @app.get("/call-sync")
    def call_sync(service: str, version: str | None = None) -> Any:
        with ServiceConnector().client(service, version) as client:
            return client.get("/echo").json()

    @app.get("/call-async")
    async def call_async(service: str, version: str | None = None) -> Any:
        async with ServiceConnector().async_client(service, version) as client:
            reply = await client.get("/echo")
        return reply.json()

    @app.get("/call-dependency")
    async def call_dependency(
        connector: SoajsConnector, service: str, version: str | None = None
    ) -> Any:
        async with connector.async_client(service, version) as client:
            reply = await client.get("/echo")
        return reply.json()

    return app


@dataclass
class Mesh:
    """Three services on loopback: a caller, ``hello`` (an interConnect target), a gateway."""

    caller_port: int
    middleware_caller_port: int
    hello_port: int
    gateway_port: int
    hello: Recorder
    gateway: Recorder

    def header(self) -> bytes:
        """A gateway-shaped header whose awareness points at the real ports (with a Latin-1 é)."""
        awareness = {
            "host": "127.0.0.1",
            "port": self.gateway_port,
            "interConnect": [
                {
                    "name": "hello",
                    "version": "1",
                    "host": "127.0.0.1",
                    "port": self.hello_port,
                    "latest": "1",
                }
            ],
        }
        header = {**CALLER, "tenant": {**CALLER["tenant"], "name": "T\xe9st"}}
        header["awareness"] = awareness
        return json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("latin-1")


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    """The three services, started once for this module."""
    hello, gateway = Recorder(), Recorder()
    with (
        UvicornThread(recording_app("hello", hello)) as hello_server,
        UvicornThread(recording_app("gateway", gateway)) as gateway_server,
        UvicornThread(caller_app()) as caller,
        UvicornThread(middleware_caller_app()) as middleware_caller,
    ):
        yield Mesh(
            caller.port,
            middleware_caller.port,
            hello_server.port,
            gateway_server.port,
            hello,
            gateway,
        )


@pytest.fixture
def fresh(mesh: Mesh) -> Mesh:
    """The running services with their recordings cleared."""
    mesh.hello.requests.clear()
    mesh.gateway.requests.clear()
    return mesh


def call(
    port: int, path: str, header: bytes, extra: dict[str, str] | None = None, **params: str
) -> Any:
    """Call a caller service with a soajsinjectobj header (and ``extra`` headers)."""
    headers: dict[str, str | bytes] = {"soajsinjectobj": header, **(extra or {})}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        reply = client.get(path, params=params, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


class TestMeshCalls:
    """A handler reaches an interConnect target directly, forwarding the header verbatim."""

    @pytest.mark.parametrize("path", ["/call-sync", "/call-async"])
    def test_header_arrives_byte_for_byte(self, fresh: Mesh, path: str) -> None:
        """The callee receives exactly the bytes the caller received, Latin-1 é included."""
        header = fresh.header()
        assert b"T\xe9st" in header
        assert call(fresh.caller_port, path, header, service="hello") == {
            "service": "hello",
            "path": "/echo",
        }
        assert [request[0] for request in fresh.hello.requests] == ["/echo"]
        assert fresh.hello.header(0, b"soajsinjectobj") == header
        assert fresh.hello.header(0, b"key") is None
        assert fresh.gateway.requests == []

    def test_traceparent_forwarded(self, fresh: Mesh) -> None:
        """The caller's traceparent reaches the callee."""
        header = fresh.header()
        with httpx.Client(base_url=f"http://127.0.0.1:{fresh.caller_port}") as client:
            reply = client.get(
                "/call-sync",
                params={"service": "hello", "version": "1"},
                headers={"soajsinjectobj": header, "traceparent": TRACEPARENT},
            )
        assert reply.status_code == 200
        assert fresh.hello.header(0, b"traceparent") == TRACEPARENT.encode()


class TestGatewayCalls:
    """A handler reaches other services through the gateway's URL grammar."""

    @pytest.mark.parametrize("path", ["/call-sync", "/call-async"])
    def test_gateway_path_and_key(self, fresh: Mesh, path: str) -> None:
        """A service that is not an interConnect target is called at /<name>/v<ver>/<api>."""
        reply = call(fresh.caller_port, path, fresh.header(), service="world", version="1")
        assert reply == {"service": "gateway", "path": "/world/v1/echo"}
        assert fresh.gateway.header(0, b"key") == E_KEY.encode()
        assert fresh.gateway.header(0, b"soajsinjectobj") is None
        assert fresh.hello.requests == []

    def test_version_not_in_mesh_goes_through_gateway(self, fresh: Mesh) -> None:
        """Asking for a version the interConnect entry does not have uses the gateway."""
        reply = call(fresh.caller_port, "/call-sync", fresh.header(), service="hello", version="2")
        assert reply == {"service": "gateway", "path": "/hello/v2/echo"}

    def test_access_token_forwarded(self, fresh: Mesh) -> None:
        """The access token of the incoming request is sent to the gateway."""
        call(
            fresh.caller_port, "/call-async", fresh.header(), service="world", access_token="tok-9"
        )
        assert fresh.gateway.requests[0][0] == "/world/echo"
        assert fresh.gateway.header(0, b"access_token") == b"tok-9"

    def test_gateway_itself(self, fresh: Mesh) -> None:
        """Calling the gateway by its name reaches its root, with no service path."""
        reply = call(fresh.caller_port, "/call-sync", fresh.header(), service="controller")
        assert reply == {"service": "gateway", "path": "/echo"}


class TestBehindTheMiddleware:
    """Behind SoajsASGIMiddleware a bare ``ServiceConnector()`` uses the request's values."""

    @pytest.mark.parametrize("path", ["/call-sync", "/call-async", "/call-dependency"])
    def test_mesh_call(self, fresh: Mesh, path: str) -> None:
        """The request's header is forwarded byte for byte to the interConnect target."""
        header = fresh.header()
        reply = call(fresh.middleware_caller_port, path, header, service="hello")
        assert reply == {"service": "hello", "path": "/echo"}
        assert fresh.hello.header(0, b"soajsinjectobj") == header

    @pytest.mark.parametrize("path", ["/call-sync", "/call-async", "/call-dependency"])
    def test_gateway_call_with_token_and_trace(self, fresh: Mesh, path: str) -> None:
        """The access_token header and the trace headers reach the gateway with the key."""
        extra = {"access_token": "tok-7", "traceparent": TRACEPARENT, "tracestate": "a=b"}
        reply = call(
            fresh.middleware_caller_port, path, fresh.header(), extra, service="world", version="3"
        )
        assert reply == {"service": "gateway", "path": "/world/v3/echo"}
        assert fresh.gateway.header(0, b"key") == E_KEY.encode()
        assert fresh.gateway.header(0, b"access_token") == b"tok-7"
        assert fresh.gateway.header(0, b"traceparent") == TRACEPARENT.encode()
        assert fresh.gateway.header(0, b"tracestate") == b"a=b"

    def test_query_token_wins(self, fresh: Mesh) -> None:
        """An access_token in the query string is preferred to the header, as in soajs core."""
        call(
            fresh.middleware_caller_port,
            "/call-sync",
            fresh.header(),
            {"access_token": "from-header"},
            service="world",
            access_token="from-query",
        )
        assert fresh.gateway.header(0, b"access_token") == b"from-query"

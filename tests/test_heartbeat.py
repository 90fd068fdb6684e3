"""The /heartbeat responders, served by real ASGI (uvicorn) and WSGI (wsgiref) servers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from fixture_paths import CAPTURED
from helpers import UvicornThread

from soajs._asgi_types import Message, WSGIApplication
from soajs.heartbeat import (
    HEARTBEAT_PATH,
    asgi_heartbeat,
    heartbeat_body,
    is_heartbeat,
    make_asgi_heartbeat,
    make_wsgi_heartbeat,
    wsgi_heartbeat,
)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep the test output clean."""


def serve_wsgi(app: WSGIApplication) -> Iterator[str]:
    """Serve ``app`` with wsgiref, the standard library's strict PEP 3333 server; yield its URL."""
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture(scope="module")
def asgi_url() -> Iterator[str]:
    with UvicornThread(asgi_heartbeat, lifespan="on", ws="none", http="h11") as server:
        yield server.url


@pytest.fixture(scope="module")
def named_asgi_url() -> Iterator[str]:
    app = make_asgi_heartbeat("hello")
    with UvicornThread(app, lifespan="on", ws="none", http="h11") as server:
        yield server.url


@pytest.fixture(scope="module")
def wsgi_url() -> Iterator[str]:
    yield from serve_wsgi(wsgi_heartbeat)


@pytest.fixture(scope="module")
def named_wsgi_url() -> Iterator[str]:
    yield from serve_wsgi(make_wsgi_heartbeat("hello"))


def assert_heartbeat(response: httpx.Response, service_name: str | None) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    payload = response.json()
    assert payload["result"] is True
    assert isinstance(payload["ts"], int)
    expected = {"type": "rest", "route": "/heartbeat"}
    if service_name is not None:
        expected = {"service": service_name, **expected}
    assert payload["service"] == expected


class TestIsHeartbeat:
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    def test_get_and_head_on_the_path(self, method: str) -> None:
        """GET and HEAD on exactly /heartbeat are health checks."""
        assert is_heartbeat(method, HEARTBEAT_PATH)

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/heartbeat"),
            ("GET", "/heartbeat/"),
            ("GET", "/heartbeats"),
            ("GET", "/hello/heartbeat"),
            ("GET", "/"),
            ("get", "/heartbeat"),
        ],
    )
    def test_anything_else_is_not(self, method: str, path: str) -> None:
        """Other methods and paths (including a trailing slash) are not health checks."""
        assert not is_heartbeat(method, path)


class TestHeartbeatBody:
    def test_shape_mirrors_the_maintenance_api(self) -> None:
        """The body has result, a millisecond ts and a service block, like the gateway's own."""
        before = time.time_ns() // 1_000_000
        payload = json.loads(heartbeat_body("hello"))
        after = time.time_ns() // 1_000_000
        assert list(payload) == ["result", "ts", "service"]
        assert payload["result"] is True
        assert before <= payload["ts"] <= after
        assert payload["service"] == {"service": "hello", "type": "rest", "route": "/heartbeat"}

    def test_without_a_name(self) -> None:
        """Without a service name the service block has only type and route."""
        payload = json.loads(heartbeat_body())
        assert payload["service"] == {"type": "rest", "route": "/heartbeat"}

    def test_gateway_capture_has_the_same_keys(self) -> None:
        """The keys match the real gateway's /heartbeat reply (minus its version field)."""
        captured = json.loads(
            (CAPTURED / "maintenance.heartbeat.response.json").read_text(encoding="utf-8")
        )
        ours = json.loads(heartbeat_body("soajs.controller"))
        assert list(ours) == list(captured)
        assert set(ours["service"]) == set(captured["service"]) - {"version"}


class TestAsgiHeartbeat:
    def test_get_answers_200_json(self, asgi_url: str) -> None:
        """A GET /heartbeat through uvicorn answers 200 with the JSON body."""
        assert_heartbeat(httpx.get(asgi_url + HEARTBEAT_PATH), None)

    def test_named_service(self, named_asgi_url: str) -> None:
        """make_asgi_heartbeat names the service in the body."""
        assert_heartbeat(httpx.get(named_asgi_url + HEARTBEAT_PATH), "hello")

    def test_head_answers_200_without_body(self, asgi_url: str) -> None:
        """HEAD answers 200 with the headers and no body."""
        response = httpx.head(asgi_url + HEARTBEAT_PATH)
        assert response.status_code == 200
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0

    def test_other_methods_get_405(self, asgi_url: str) -> None:
        """A POST is refused with 405 and an Allow header."""
        response = httpx.post(asgi_url + HEARTBEAT_PATH, content=b"{}")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"

    def test_bare_gateway_probe(self, asgi_url: str) -> None:
        """The gateway's probe (only Host and Connection headers) is answered 200."""
        with socket.create_connection(("127.0.0.1", int(asgi_url.rsplit(":", 1)[1]))) as sock:
            sock.sendall(b"GET /heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 ")
        assert b'"result":true' in reply

    def test_non_http_scopes_send_nothing(self) -> None:
        """A websocket scope is left alone: nothing is sent."""
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        async def send(message: Message) -> None:
            sent.append(message)

        asyncio.run(asgi_heartbeat({"type": "websocket"}, receive, send))
        assert sent == []


class TestWsgiHeartbeat:
    def test_get_answers_200_json(self, wsgi_url: str) -> None:
        """A GET /heartbeat through wsgiref answers 200 with the JSON body."""
        assert_heartbeat(httpx.get(wsgi_url + HEARTBEAT_PATH), None)

    def test_named_service(self, named_wsgi_url: str) -> None:
        """make_wsgi_heartbeat names the service in the body."""
        assert_heartbeat(httpx.get(named_wsgi_url + HEARTBEAT_PATH), "hello")

    def test_head_answers_200_without_body(self, wsgi_url: str) -> None:
        """HEAD answers 200 with no body."""
        response = httpx.head(wsgi_url + HEARTBEAT_PATH)
        assert response.status_code == 200
        assert response.content == b""

    def test_other_methods_get_405(self, wsgi_url: str) -> None:
        """A DELETE is refused with 405 and an Allow header."""
        response = httpx.delete(wsgi_url + HEARTBEAT_PATH)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"

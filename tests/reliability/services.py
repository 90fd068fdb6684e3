"""Real services for the reliability tests: apps on uvicorn or werkzeug in background threads."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from werkzeug.serving import BaseWSGIServer, make_server

from soajs import current_context
from soajs.registry import RegistryManager

from .wire import tag_of

__all__ = [
    "RequestLoad",
    "UvicornThread",
    "WSGIThread",
    "registry_reader_asgi",
    "registry_reader_wsgi",
]


class UvicornThread:
    """An ASGI app served by uvicorn on ``host`` (a free port) in a background thread."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", *, lifespan: str = "off", **options: Any
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, lifespan=lifespan, log_config=None, access_log=False, **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the service."""
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self._sock]))

    def start(self) -> UvicornThread:
        """Serve, and return once uvicorn accepts connections."""
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit (running its shutdown) and join its thread."""
        self.server.should_exit = True
        self.thread.join(10)
        self._sock.close()


class WSGIThread:
    """A WSGI app served by werkzeug (one thread per request) on 127.0.0.1."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WSGIThread:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


def _reading(manager: RegistryManager) -> dict[str, Any]:
    """What a handler reads per request: the registry (checked whole) and the caller's tenant."""
    snapshot = manager.registry
    context = current_context()
    return {
        "tag": tag_of(snapshot),
        "db": manager.get_database("main").name,
        "tenant": None if context is None else context.tenant.code,
    }


def registry_reader_asgi(manager: RegistryManager) -> Callable[..., Any]:
    """A plain ASGI app answering every request with :func:`_reading` as JSON."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = json.dumps(_reading(manager)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def registry_reader_wsgi(manager: RegistryManager) -> Callable[..., Any]:
    """A plain WSGI app answering every request with :func:`_reading` as JSON."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = json.dumps(_reading(manager)).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


class RequestLoad:
    """Requests a service without pause from one background thread, counting the outcomes.

    A request fails when it raises, answers anything but 200, or its JSON does not pass
    ``check``. Failures are kept (at most 20) for the assertion message.
    """

    def __init__(
        self, url: str, *, headers: dict[str, str], check: Callable[[dict[str, Any]], None]
    ) -> None:
        self.url = url
        self.headers = headers
        self.check = check
        self.ok = 0
        self.failed = 0
        self.failures: list[str] = []
        self.tags: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RequestLoad:
        """Start requesting."""
        self._thread.start()
        return self

    def stop(self) -> RequestLoad:
        """Stop requesting and join the thread."""
        self._stop.set()
        self._thread.join(10)
        return self

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=5.0) as client:
            while not self._stop.is_set():
                try:
                    reply = client.get(self.url)
                    assert reply.status_code == 200, f"HTTP {reply.status_code}: {reply.text}"
                    body = reply.json()
                    self.check(body)
                    self.tags.add(body["tag"])
                    self.ok += 1
                except Exception as exc:
                    self.failed += 1
                    if len(self.failures) < 20:
                        self.failures.append(repr(exc))

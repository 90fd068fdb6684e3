"""Real services for the gateway tests: small Starlette apps on uvicorn, in threads."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, port: int = 0, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def request_stop(self) -> None:
        """Ask the server to stop without waiting (to stop several at once)."""
        self._server.should_exit = True

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


class EchoService:
    """A service answering /heartbeat and echoing every other request as JSON.

    Each request is recorded with its headers in arrival order, as raw Latin-1 text.
    """

    def __init__(self, *, heartbeat: bool = True, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.heartbeat = heartbeat
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=_METHODS)])
        self.server = ThreadedServer(app, port=port, host=host)

    @property
    def port(self) -> int:
        return self.server.port

    async def _handle(self, request: Request) -> Response:
        if request.url.path == "/heartbeat":
            self.heartbeats += 1
            if not self.heartbeat:
                return Response(status_code=503)
            return JSONResponse({"result": True})
        body = await request.body()
        raw_path = request.scope.get("raw_path", b"").decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        record = {
            "method": request.method,
            "path": raw_path + (f"?{query}" if query else ""),
            "headers": [
                [name.decode("latin-1"), value.decode("latin-1")]
                for name, value in request.scope["headers"]
            ],
            "body": body.decode("utf-8", "replace"),
        }
        self.requests.append(record)
        return Response(
            json.dumps({"result": True, "data": record}),
            media_type="application/json",
            headers={"x-echo": "yes"},
        )

    def header(self, name: str, index: int = -1) -> str | None:
        """A header of a recorded request (the last by default)."""
        for key, value in self.requests[index]["headers"]:
            if key.lower() == name:
                return str(value)
        return None

    def __enter__(self) -> EchoService:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

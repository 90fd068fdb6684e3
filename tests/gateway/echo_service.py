"""EchoService: a real service for the gateway tests, a Starlette app on uvicorn in a thread."""

from __future__ import annotations

import json
from typing import Any

from helpers import UvicornThread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class EchoService:
    """A service answering /heartbeat and echoing every other request as JSON.

    Each request is recorded with its headers in arrival order, as raw Latin-1 text.
    """

    def __init__(self, *, heartbeat: bool = True, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.heartbeat = heartbeat
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=_METHODS)])
        self.server = UvicornThread(app, host, port=port)

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

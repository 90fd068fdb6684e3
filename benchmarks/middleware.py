"""P1: what the middleware costs a request whose handler never reads the context.

Both apps are called in process, with a scope/environ built by hand (no test client, whose
own overhead would hide the difference). Every request carries the captured header, as
requests behind a gateway do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.test import EnvironBuilder

from benchmarks.fixtures import Inputs
from benchmarks.harness import Comparison, Report, Settings, Timer, comparison
from soajs.asgi import SoajsASGIMiddleware
from soajs.context import current_context
from soajs.settings import Settings as SoajsSettings
from soajs.wsgi import SoajsWSGIMiddleware

LIMIT = 1.03
_BODY = {"type": "http.request", "body": b"", "more_body": False}


def asgi_scope(header: bytes) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it for a gateway-forwarded ``GET /hello``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 4100),
        "client": ("127.0.0.1", 51234),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/hello",
        "raw_path": b"/hello",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:4000"),
            (b"user-agent", b"curl/7.88.1"),
            (b"accept", b"*/*"),
            (b"key", b"e038c52a36e5952343acee09d798d3dbcd195123"),
            (b"soajsinjectobj", header),
            (b"cookie", b""),
            (b"connection", b"close"),
        ],
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return _BODY


async def _send(message: dict[str, Any]) -> None:
    return None


async def _hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def _hello_context(request: Request) -> Response:
    context = current_context()
    return PlainTextResponse(context.tenant.code if context is not None else "none")


def starlette_app(*, reads_context: bool = False) -> Starlette:
    """A one-route Starlette app; its handler reads the context only when asked."""
    return Starlette(routes=[Route("/hello", _hello_context if reads_context else _hello)])


def asgi_timer(app: Any, scope: dict[str, Any], loop: asyncio.AbstractEventLoop) -> Timer:
    """Time ``number`` requests through ``app``, each with a fresh copy of ``scope``."""

    async def many(number: int) -> float:
        clock = loop.time
        start = clock()
        for _ in range(number):
            await app(dict(scope), _receive, _send)
        return clock() - start

    def run(number: int) -> float:
        return loop.run_until_complete(many(number))

    return run


def flask_app(*, reads_context: bool = False) -> Flask:
    """A one-route Flask app; its handler reads the context only when asked."""
    app = Flask("bench")

    if reads_context:

        @app.get("/hello")
        def hello() -> str:
            context = current_context()
            return context.tenant.code if context is not None else "none"

    else:

        @app.get("/hello")
        def hello() -> str:
            return "hello"

    return app


def wsgi_environ(header: bytes) -> dict[str, Any]:
    """A WSGI environ for a gateway-forwarded ``GET /hello`` (header values as Latin-1 text)."""
    environ = EnvironBuilder(
        path="/hello",
        headers={
            "Host": "127.0.0.1:4000",
            "User-Agent": "curl/7.88.1",
            "Accept": "*/*",
            "Key": "e038c52a36e5952343acee09d798d3dbcd195123",
            "Soajsinjectobj": header.decode("latin-1"),
            "Cookie": "",
        },
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()
    return dict(environ)


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def wsgi_timer(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> Timer:
    """Time ``number`` requests through a WSGI ``app``, each with a fresh copy of ``environ``."""
    import time

    def run(number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            body = app(dict(environ), _start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return time.perf_counter() - start

    return run


class PassThroughASGI:
    """An ASGI middleware that does nothing: the floor any middleware costs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


_floor_var: ContextVar[object] = ContextVar("bench_floor", default=None)


class CurrentOnlyASGI:
    """An ASGI middleware that only makes a value current for the call, and resets it.

    The least any middleware behind ``current_context()`` must do: the floor of P1.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        token = _floor_var.set(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            _floor_var.reset(token)


class CurrentOnlyWSGI:
    """A WSGI middleware that only makes a value current for the call (see CurrentOnlyASGI)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        token = _floor_var.set(environ)
        try:
            return self.app(environ, start_response)
        finally:
            _floor_var.reset(token)


class PassThroughWSGI:
    """A WSGI middleware that does nothing: the floor any middleware costs."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)


def run(report: Report, inputs: Inputs, settings: Settings) -> None:
    """Measure P1 (ASGI and WSGI), and, reported only, the same with a handler that reads."""
    soajs_settings = SoajsSettings()
    loop = asyncio.new_event_loop()
    try:
        scope = asgi_scope(inputs.header)
        for reads in (False, True):
            bare = asgi_timer(starlette_app(reads_context=False), scope, loop)
            wrapped = SoajsASGIMiddleware(
                starlette_app(reads_context=reads), settings=soajs_settings
            )
            report.add(
                _p1(
                    "ASGI: Starlette + SoajsASGIMiddleware",
                    "bare Starlette app",
                    bare,
                    asgi_timer(wrapped, scope, loop),
                    settings=settings,
                    reads=reads,
                )
            )
        report.add(
            comparison(
                "P1*",
                "ASGI: Starlette + an empty pass-through middleware (the floor)",
                "bare Starlette app",
                asgi_timer(starlette_app(), scope, loop),
                asgi_timer(PassThroughASGI(starlette_app()), scope, loop),
                settings=settings,
                note="reported",
            )
        )
        report.add(
            comparison(
                "P1*",
                "ASGI: Starlette + a middleware that only sets and resets a ContextVar",
                "bare Starlette app",
                asgi_timer(starlette_app(), scope, loop),
                asgi_timer(CurrentOnlyASGI(starlette_app()), scope, loop),
                settings=settings,
                note="reported: the floor of any middleware behind current_context()",
            )
        )
    finally:
        loop.close()
    environ = wsgi_environ(inputs.header)
    for reads in (False, True):
        bare_flask = flask_app(reads_context=False)
        wrapped_flask = flask_app(reads_context=reads)
        middleware = SoajsWSGIMiddleware(wrapped_flask.wsgi_app, settings=soajs_settings)
        report.add(
            _p1(
                "WSGI: Flask + SoajsWSGIMiddleware",
                "bare Flask app",
                wsgi_timer(bare_flask.wsgi_app, environ),
                wsgi_timer(middleware, environ),
                settings=settings,
                reads=reads,
            )
        )
    report.add(
        comparison(
            "P1*",
            "WSGI: Flask + SoajsWSGIMiddleware(environ_context=False)",
            "bare Flask app",
            wsgi_timer(flask_app().wsgi_app, environ),
            wsgi_timer(
                SoajsWSGIMiddleware(
                    flask_app().wsgi_app, settings=soajs_settings, environ_context=False
                ),
                environ,
            ),
            settings=settings,
            note="reported: the server's environ passed as is, no seed environ['soajs.context']",
        )
    )
    report.add(
        comparison(
            "P1*",
            "WSGI: Flask + an empty pass-through middleware (the floor)",
            "bare Flask app",
            wsgi_timer(flask_app().wsgi_app, environ),
            wsgi_timer(PassThroughWSGI(flask_app().wsgi_app), environ),
            settings=settings,
            note="reported",
        )
    )
    report.add(
        comparison(
            "P1*",
            "WSGI: Flask + a middleware that only sets and resets a ContextVar",
            "bare Flask app",
            wsgi_timer(flask_app().wsgi_app, environ),
            wsgi_timer(CurrentOnlyWSGI(flask_app().wsgi_app), environ),
            settings=settings,
            note="reported: the floor of any middleware behind current_context()",
        )
    )


def _p1(
    name: str, baseline: str, bare: Timer, wrapped: Timer, *, settings: Settings, reads: bool
) -> Comparison:
    if reads:
        return comparison(
            "P1*",
            name + ", handler reads the context",
            baseline,
            bare,
            wrapped,
            settings=settings,
            note="reported: the parse happens because the handler asks",
        )
    return comparison("P1", name, baseline, bare, wrapped, settings=settings, limit=LIMIT)

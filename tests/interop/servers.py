"""Real HTTP servers on loopback for the services under test, and helpers to reach them.

ASGI apps run on uvicorn and WSGI apps on werkzeug's threaded server, each in a thread of the
test process, so a test can look at what its service recorded.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import uvicorn
from werkzeug.serving import make_server

from .realgateway import free_port

ROUTE_TIMEOUT = 30.0


@contextlib.contextmanager
def serve_asgi(app: Any, port: int) -> Iterator[str]:
    """Run ``app`` on uvicorn at ``127.0.0.1:port`` (lifespan on) and yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + ROUTE_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(10)
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@contextlib.contextmanager
def serve_wsgi(app: Callable[..., Any], port: int) -> Iterator[str]:
    """Run ``app`` on werkzeug's threaded WSGI server at ``127.0.0.1:port``; yield its URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(15)


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a service start-up, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def service_environment(
    registry_api: str, name: str, port: int, *, env: str = "dev", **extra: str
) -> dict[str, str]:
    """The ``SOAJS_*`` variables of a manually deployed service registering with a gateway."""
    values = {
        "SOAJS_REGISTRY_API": registry_api,
        "SOAJS_ENV": env,
        "SOAJS_DEPLOY_MANUAL": "true",
        "SOAJS_SRVIP": "127.0.0.1",
        "SOAJS_SERVICE_NAME": name,
        "SOAJS_SERVICE_PORT": str(port),
    }
    values.update(extra)
    return values


def wait_until_routable(
    url: str, headers: Mapping[str, str], *, timeout: float = ROUTE_TIMEOUT
) -> httpx.Response:
    """GET ``url`` through the gateway until the service is registered and healthy there.

    Until a service has registered the gateway answers 404/130 (unknown service); after, it
    routes only to hosts its health check has marked healthy, which happens on its next check,
    and answers 504/133 until then. Any other answer is returned for the test to judge, and so
    is the last one once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        reply = httpx.get(url, headers=dict(headers), timeout=10)
        if not _not_routable_yet(reply) or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def _not_routable_yet(reply: httpx.Response) -> bool:
    if reply.status_code not in (404, 504):
        return False
    try:
        codes = reply.json()["errors"]["codes"]
    except (ValueError, KeyError, TypeError):
        return False
    return 130 in codes or 133 in codes


def wait_for(predicate: Callable[[], bool], *, timeout: float = ROUTE_TIMEOUT) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


__all__ = [
    "ROUTE_TIMEOUT",
    "environment",
    "free_port",
    "serve_asgi",
    "serve_wsgi",
    "service_environment",
    "wait_for",
    "wait_until_routable",
]

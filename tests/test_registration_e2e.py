"""Registration end to end, the same for FastAPI, Flask and Django.

Each framework's service runs on a real server on a free 127.0.0.1 port (uvicorn for FastAPI,
werkzeug for Flask and Django) with ``deploy_manual``; a real HTTP server plays the gateway.
The service loads the registry, waits until its own port accepts connections, then registers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings
from fastapi import FastAPI
from flask import Flask
from helpers import UvicornThread, WSGIThread, configure_django, free_port
from pytest_httpserver import HTTPServer

import soajs.django
from soajs.container import SoajsContainer
from soajs.fastapi import setup_soajs
from soajs.flask import Soajs
from soajs.models.service_config import Config
from soajs.settings import Settings
from soajs.testing import DEFAULT_REGISTRY

configure_django()

SERVICE_NAME = "hello"

# The Django service's URLs: none of its own, /heartbeat is answered by SoajsMiddleware.
urlpatterns: list[Any] = []


class Service(NamedTuple):
    """A framework's app, the server class that serves it, and how to stop what it started."""

    app: Any
    server: Callable[..., UvicornThread | WSGIThread]
    stop: Callable[[], None]


def fastapi_service(container: SoajsContainer) -> Service:
    """FastAPI with ``setup_soajs``: the lifespan loads the registry and starts registration."""
    app = FastAPI()
    setup_soajs(app, container)
    return Service(app, functools.partial(UvicornThread, lifespan="on"), lambda: None)


def flask_service(container: SoajsContainer) -> Service:
    """Flask with the ``Soajs`` extension, which starts registration when it is created."""
    app = Flask(__name__)
    extension = Soajs(app, container=container)
    return Service(app, WSGIThread, extension.stop)


def django_service(container: SoajsContainer) -> Service:
    """Django's WSGI handler: loading ``SoajsMiddleware`` starts registration."""
    site = override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["soajs.django.SoajsMiddleware"])
    site.enable()
    soajs.django.configure(container)
    try:
        handler = WSGIHandler()
    except BaseException:
        soajs.django.stop()
        site.disable()
        raise

    def stop() -> None:
        soajs.django.stop()
        site.disable()

    return Service(handler, WSGIThread, stop)


FRAMEWORKS: dict[str, Callable[[SoajsContainer], Service]] = {
    "fastapi": fastapi_service,
    "flask": flask_service,
    "django": django_service,
}


def registry_reply() -> dict[str, Any]:
    return {"result": True, "ts": 1, "service": {}, "data": DEFAULT_REGISTRY}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_registers_with_a_real_gateway_once_listening(
    framework: str, httpserver: HTTPServer
) -> None:
    """With deploy_manual, the service loads the registry, then registers once its port listens."""
    port = free_port()
    registered = threading.Event()
    listening_when_registered: list[bool] = []

    def on_register(request: Any) -> Any:
        from werkzeug import Response

        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2):
            listening_when_registered.append(True)
        registered.set()
        body = {"result": True, "ts": 1, "data": {"group": "test", "port": port}}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/getRegistry").respond_with_json(registry_reply())
    httpserver.expect_request("/register", method="POST").respond_with_handler(on_register)
    container = SoajsContainer()
    container.settings.override(
        Settings(
            registry_api=f"127.0.0.1:{httpserver.port}",
            deploy_manual=True,
            reregister_interval=0,
        )
    )
    container.service_config.override(Config(name=SERVICE_NAME, group="test", port=port))
    service = FRAMEWORKS[framework](container)
    try:
        assert not registered.is_set()
        with service.server(service.app, port=port):
            assert registered.wait(20)
            beat = httpx.get(f"http://127.0.0.1:{port}/heartbeat", timeout=5)
    finally:
        service.stop()
    assert beat.status_code == 200
    assert listening_when_registered == [True]
    assert [request.path for request, _ in httpserver.log] == ["/getRegistry", "/register"]
    get_registry, register = (request for request, _ in httpserver.log)
    assert get_registry.args["serviceName"] == SERVICE_NAME
    body = json.loads(register.get_data())
    assert (body["name"], body["port"], body["mw"]) == (SERVICE_NAME, port, True)

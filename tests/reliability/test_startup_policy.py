"""The start-up policy, the same for FastAPI, Flask and Django, against a real gateway.

The gateway (a :class:`FaultServer` on 127.0.0.1) is down or drips its reply when the app
starts, then comes back. Each framework runs through its own test client. Until the registry
has loaded: the app serves, ``/heartbeat`` answers 503, a view that reads the registry gets
503 code 135 in the gateway's error format, other views are served, and no request fetches the
registry. Once the gateway is back the registry loads in the background and all is 200.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client, override_settings
from django.urls import path
from fastapi import FastAPI
from flask import Flask
from helpers import configure_django, wait_until
from starlette.exceptions import StarletteDeprecationWarning

import soajs.django
from soajs import Settings
from soajs.container import SoajsContainer
from soajs.fastapi import setup_soajs
from soajs.flask import Soajs

from .faultserver import FaultServer, Mode

configure_django()

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

NOT_LOADED_CODE = 135


class Reply(Protocol):
    """What the three test clients' replies share."""

    status_code: int

    def json(self) -> Any: ...


class Service(Protocol):
    """One framework's app with ``/plain``, ``/db`` (reads the registry) and ``/heartbeat``."""

    container: SoajsContainer

    def get(self, path: str) -> tuple[int, Any]: ...

    def stop(self) -> None: ...


def read_database(container: SoajsContainer) -> dict[str, str]:
    """What ``/db`` answers: the registry's ``main`` database name."""
    return {"name": container.registry().get_database("main").name}


class FastAPIService:
    """The app on FastAPI's TestClient (its lifespan runs the start-up)."""

    def __init__(self, container: SoajsContainer) -> None:
        self.container = container
        app = FastAPI()

        @app.get("/plain")
        def plain() -> dict[str, bool]:
            return {"ok": True}

        @app.get("/db")
        def database() -> dict[str, str]:
            return read_database(container)

        setup_soajs(app, container, register=False)
        self._client = TestClient(app)
        self._client.__enter__()

    def get(self, path: str) -> tuple[int, Any]:
        reply = self._client.get(path)
        return reply.status_code, reply.json()

    def stop(self) -> None:
        self._client.__exit__(None, None, None)


class FlaskService:
    """The app on Flask's test client (``init_app`` runs the start-up)."""

    def __init__(self, container: SoajsContainer) -> None:
        self.container = container
        app = Flask(__name__)

        @app.get("/plain")
        def plain() -> dict[str, bool]:
            return {"ok": True}

        @app.get("/db")
        def database() -> dict[str, str]:
            return read_database(container)

        self._extension = Soajs(app, container, register=False)
        self._client = app.test_client()

    def get(self, path: str) -> tuple[int, Any]:
        reply = self._client.get(path)
        return reply.status_code, reply.get_json()

    def stop(self) -> None:
        self._extension.stop()


def _django_plain(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


def _django_database(request: HttpRequest) -> HttpResponse:
    return JsonResponse(read_database(soajs.django.get_container()))


urlpatterns = [path("plain", _django_plain), path("db", _django_database)]


class DjangoService:
    """The app on Django's test client (loading the middleware runs the start-up)."""

    def __init__(self, container: SoajsContainer) -> None:
        self.container = container
        self._site = override_settings(
            ROOT_URLCONF=__name__, MIDDLEWARE=["soajs.django.SoajsMiddleware"]
        )
        self._site.enable()
        soajs.django.configure(container, register=False)
        self._client = Client()
        self._client.get("/plain")  # Django loads its middleware on the first request

    def get(self, path: str) -> tuple[int, Any]:
        reply = self._client.get(path)
        return reply.status_code, reply.json()

    def stop(self) -> None:
        soajs.django.stop()
        self._site.disable()


FRAMEWORKS = {"fastapi": FastAPIService, "flask": FlaskService, "django": DjangoService}


@pytest.fixture(params=sorted(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> type[Service]:
    """Each framework in turn."""
    service: type[Service] = FRAMEWORKS[request.param]
    return service


@pytest.fixture
def start(gateway: FaultServer) -> Iterator[Any]:
    """Start a framework's app against ``gateway`` (stopped after the test)."""
    started: list[Service] = []

    def run(framework: type[Service], **limits: float) -> Service:
        container = SoajsContainer()
        container.settings.override(
            Settings(registry_api=gateway.registry_api, service_name="hello", **limits)
        )
        service = framework(container)
        started.append(service)
        return service

    yield run
    for service in started:
        with contextlib.suppress(Exception):
            service.stop()


def assert_not_loaded(reply: tuple[int, Any]) -> None:
    """``reply`` is the 503, code 135, in the gateway's error format."""
    status, body = reply
    assert status == 503
    assert body["result"] is False
    assert body["errors"]["codes"] == [NOT_LOADED_CODE]
    assert body["errors"]["details"][0]["code"] == NOT_LOADED_CODE
    assert "registry has not loaded" in body["errors"]["details"][0]["message"]


def assert_serving(service: Service) -> None:
    """Once loaded: heartbeat 200, the registry read answers, the plain view too."""
    assert wait_until(lambda: service.get("/heartbeat")[0] == 200)
    assert service.get("/db") == (200, {"name": "main_a"})
    assert service.get("/plain") == (200, {"ok": True})


@pytest.mark.usefixtures("fast")
@pytest.mark.timeout(120)
class TestStartUpPolicy:
    def test_gateway_down_then_back(
        self, gateway: FaultServer, framework: type[Service], start: Any
    ) -> None:
        """With the gateway down the app serves, 503s what needs the registry, then recovers."""
        gateway.mode = Mode.DOWN
        service: Service = start(framework, registry_timeout=1)
        assert not service.container.registry().loaded
        assert_not_loaded(service.get("/heartbeat"))
        assert_not_loaded(service.get("/db"))
        assert service.get("/plain") == (200, {"ok": True})
        assert service.container.registry().status.consecutive_failures >= 1
        gateway.mode = Mode.OK
        assert_serving(service)

    def test_dripping_gateway_never_holds_a_request(
        self, gateway: FaultServer, framework: type[Service], start: Any
    ) -> None:
        """With a dripping gateway requests are answered and never fetch the registry."""
        gateway.mode = Mode.DRIP
        service: Service = start(framework, registry_timeout=5, registry_fetch_deadline=0.5)
        calls_before = len(gateway.registry_calls())
        for _ in range(5):
            assert_not_loaded(service.get("/heartbeat"))
            assert_not_loaded(service.get("/db"))
            assert service.get("/plain") == (200, {"ok": True})
        # 15 requests, and only the background retries reached the gateway meanwhile.
        assert len(gateway.registry_calls()) - calls_before < 15
        last_error = service.container.registry().status.last_error
        assert last_error is not None
        assert "SOAJS_REGISTRY_FETCH_DEADLINE" in last_error
        gateway.mode = Mode.OK
        assert_serving(service)

    def test_startup_wait_waits_for_the_first_load(
        self, gateway: FaultServer, framework: type[Service], start: Any
    ) -> None:
        """With the gateway up, the app serves its registry from the first request on."""
        service: Service = start(framework, registry_startup_wait=10)
        assert service.container.registry().loaded
        assert service.get("/db") == (200, {"name": "main_a"})
        assert service.get("/heartbeat")[0] == 200

"""An override of the container made after an integration's setup is seen by the next request."""

from __future__ import annotations

import warnings

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path
from fastapi import FastAPI
from flask import Flask
from helpers import configure_django
from starlette.exceptions import StarletteDeprecationWarning

import soajs.django
from soajs.container import SoajsContainer
from soajs.fastapi import setup_soajs
from soajs.flask import Soajs
from soajs.settings import Settings
from soajs.testing import FakeRegistryManager

configure_django()

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


def ok_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


urlpatterns = [path("ok", ok_view)]


@pytest.fixture(autouse=True)
def clean_environment(no_soajs_env: None) -> None:
    """Keep the machine's SOAJS_* variables out of these tests."""


@pytest.fixture
def container(soajs_container: SoajsContainer) -> SoajsContainer:
    """The plugin's container over a fake registry (stopped and reset after the test)."""
    return soajs_container


def override_after_setup(container: SoajsContainer) -> FakeRegistryManager:
    """Refuse headerless requests and swap in a registry that never loads; return it."""
    container.settings.override(Settings(header_policy="reject"))
    unloaded = FakeRegistryManager(autostart=False)
    container.registry.override(unloaded)
    return unloaded


def test_fastapi_sees_an_override_made_after_setup_soajs(container: SoajsContainer) -> None:
    """After setup_soajs and start-up, new settings and a new registry reach the middleware."""
    app = FastAPI()
    setup_soajs(app, container)

    @app.get("/ok")
    def ok() -> str:
        return "ok"

    with TestClient(app) as client:
        assert client.get("/ok").status_code == 200
        assert client.get("/heartbeat").status_code == 200
        override_after_setup(container)
        refused = client.get("/ok")
        assert refused.status_code == 403
        assert refused.json()["errors"]["codes"] == [132]
        assert client.get("/heartbeat").status_code == 503


def test_flask_sees_an_override_made_after_init_app(container: SoajsContainer) -> None:
    """After Soajs(app), new settings and a new registry reach the middleware."""
    app = Flask(__name__)
    extension = Soajs(app, container=container)
    app.add_url_rule("/ok", view_func=lambda: "ok")
    try:
        client = app.test_client()
        assert client.get("/ok").status_code == 200
        assert client.get("/heartbeat").status_code == 200
        override_after_setup(container)
        refused = client.get("/ok")
        assert refused.status_code == 403
        assert refused.get_json()["errors"]["codes"] == [132]
        assert client.get("/heartbeat").status_code == 503
    finally:
        extension.stop()


def test_django_sees_an_override_made_after_configure(container: SoajsContainer) -> None:
    """After configure() and the first request, new settings and a new registry are seen."""
    soajs.django.configure(container)
    try:
        with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["soajs.django.SoajsMiddleware"]):
            assert Client().get("/ok").status_code == 200
            assert Client().get("/heartbeat").status_code == 200
            override_after_setup(container)
            refused = Client().get("/ok")
            assert refused.status_code == 403
            assert refused.json()["errors"]["codes"] == [132]
            assert Client().get("/heartbeat").status_code == 503
    finally:
        soajs.django.stop()

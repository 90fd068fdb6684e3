"""The user guards: statuses and bodies under FastAPI, Flask and Django, and their overrides."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from dependency_injector import providers
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from fastapi import Depends, FastAPI
from flask import Flask, current_app
from helpers import configure_django
from inject_headers import HEADERS, SECURE_URAC_JWT
from starlette.exceptions import StarletteDeprecationWarning

import soajs.django
import soajs.fastapi
import soajs.flask
from soajs.container import SoajsContainer
from soajs.guards import UserGuard, require_groups, require_user
from soajs.header_policy import NO_HEADER, NO_USER, NOT_IN_GROUPS, Rejection
from soajs.inject import parse_inject_header
from soajs.models.context import Urac
from soajs.testing import build_inject_header

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

configure_django()

Get = Callable[[str, "bytes | str | None"], tuple[int, Any]]

MEMBER = build_inject_header(urac={"_id": "u2", "username": "max", "groups": ["member"]})
NO_GROUPS = build_inject_header(urac={"_id": "u3", "username": "ann"})
OWNER_ADMIN = build_inject_header(
    urac={"_id": "u4", "username": "kim", "groups": ["owner", "admin"]}
)
ZOE = HEADERS[SECURE_URAC_JWT]  # the captured JWT user: zoe, groups ["owner"]


def rejected(rejection: Rejection) -> tuple[int, Any]:
    """The status and JSON body a client sees for ``rejection``."""
    return rejection.status, json.loads(rejection.body())


# FastAPI


def fastapi_app(container: SoajsContainer) -> FastAPI:
    api = FastAPI()
    soajs.fastapi.setup_soajs(api, container, register=False)

    @api.get("/user")
    async def user_view(user: soajs.fastapi.SoajsUser) -> dict[str, Any]:
        return {"username": user.username}

    @api.get("/owners")
    def owners_view(
        user: Annotated[Urac, Depends(soajs.fastapi.require_groups("owner"))],
    ) -> dict[str, Any]:
        return {"username": user.username}

    @api.get("/owner-admins")
    async def owner_admins_view(
        user: Annotated[Urac, Depends(soajs.fastapi.require_groups("owner", "admin", all=True))],
    ) -> dict[str, Any]:
        return {"username": user.username}

    return api


# Flask


def flask_app(container: SoajsContainer) -> tuple[Flask, soajs.flask.Soajs]:
    app = Flask(__name__)
    extension = soajs.flask.Soajs(app, container=container, register=False)

    @app.get("/user")
    @soajs.flask.require_user
    def user_view() -> dict[str, Any]:
        return flask_user()

    @app.get("/owners")
    @soajs.flask.require_groups("owner")
    async def owners_view() -> dict[str, Any]:
        return flask_user()

    @app.get("/owner-admins")
    @soajs.flask.require_groups("owner", "admin", all=True)
    def owner_admins_view() -> dict[str, Any]:
        return flask_user()

    return app, extension


def flask_user() -> dict[str, Any]:
    """The user's name, read through the container as the guard read it."""
    context = current_app.extensions[soajs.flask.EXTENSION_KEY].container.context()
    return {"username": context.urac.username}


# Django


def django_user(request: HttpRequest) -> JsonResponse:
    """The user's name, read through the container as the guard read it."""
    return JsonResponse({"username": soajs.django.get_container().context().urac.username})


@soajs.django.require_user
def django_user_view(request: HttpRequest) -> JsonResponse:
    return django_user(request)


@soajs.django.require_groups("owner")
async def django_owners_view(request: HttpRequest) -> JsonResponse:
    return django_user(request)


@soajs.django.require_groups("owner", "admin", all=True)
def django_owner_admins_view(request: HttpRequest) -> JsonResponse:
    return django_user(request)


urlpatterns = [
    path("user", django_user_view),
    path("owners", django_owners_view),
    path("owner-admins", django_owner_admins_view),
]


def header_of(raw: bytes | str | None) -> dict[str, str]:
    if raw is None:
        return {}
    return {"soajsinjectobj": raw.decode("latin-1") if isinstance(raw, bytes) else raw}


@pytest.fixture
def container(soajs_container: SoajsContainer) -> SoajsContainer:
    """The plugin's container over a fake registry (stopped and reset after the test)."""
    return soajs_container


@pytest.fixture(params=["fastapi", "flask", "django", "django-async"])
def get(request: pytest.FixtureRequest, container: SoajsContainer) -> Iterator[Get]:
    """GET a guarded route of one framework's app: (status, JSON body)."""
    framework = request.param
    if framework == "fastapi":
        with TestClient(fastapi_app(container)) as client:
            yield lambda url, raw: _answer(client.get(url, headers=header_of(raw)))
    elif framework == "flask":
        app, extension = flask_app(container)
        client = app.test_client()
        try:
            yield lambda url, raw: _answer(client.get(url, headers=header_of(raw)))
        finally:
            extension.stop()
    else:
        with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["soajs.django.SoajsMiddleware"]):
            soajs.django.configure(container, register=False)
            try:
                if framework == "django":
                    yield lambda url, raw: _django_answer(
                        Client().get(f"/{url.lstrip('/')}", headers=header_of(raw))
                    )
                else:

                    async def call(url: str, raw: bytes | str | None) -> Any:
                        return await AsyncClient().get(url, headers=header_of(raw))

                    yield lambda url, raw: _django_answer(asyncio.run(call(url, raw)))
            finally:
                soajs.django.stop()


def _answer(response: Any) -> tuple[int, Any]:
    # httpx's json() and Flask's get_json() read the same JSON body.
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    return response.status_code, body


def _django_answer(response: Any) -> tuple[int, Any]:
    return response.status_code, json.loads(response.content)


class TestGuardedRoutes:
    def test_no_header_gets_the_context_rejection(self, get: Get) -> None:
        """A request without a header gets 403 code 132, as a handler needing the context does."""
        assert get("/user", None) == rejected(NO_HEADER)
        assert get("/owners", None) == rejected(NO_HEADER)

    def test_no_user_is_401(self, get: Get) -> None:
        """A context without urac gets 401 code 161 in the gateway's error format."""
        assert get("/user", build_inject_header()) == (
            401,
            {
                "result": False,
                "errors": {
                    "codes": [161],
                    "details": [
                        {"code": 161, "message": "You need to be logged in to access this API."}
                    ],
                },
            },
        )
        assert get("/owners", build_inject_header()) == rejected(NO_USER)

    def test_user_outside_the_groups_is_403(self, get: Get) -> None:
        """A logged-in user in none of the groups passes require_user and gets 403 code 160."""
        assert get("/user", MEMBER) == (200, {"username": "max"})
        assert get("/owners", MEMBER) == rejected(NOT_IN_GROUPS)
        assert get("/owners", NO_GROUPS) == rejected(NOT_IN_GROUPS)
        assert NOT_IN_GROUPS.status == 403
        assert json.loads(NOT_IN_GROUPS.body())["errors"]["codes"] == [160]

    def test_captured_jwt_user_is_an_owner(self, get: Get) -> None:
        """The captured gateway header's user (zoe, group owner) passes the owner guard."""
        assert get("/owners", ZOE) == (200, {"username": "zoe"})
        assert get("/user", ZOE) == (200, {"username": "zoe"})

    def test_all_needs_every_group(self, get: Get) -> None:
        """With all=True one group is not enough; every group is."""
        assert get("/owner-admins", ZOE) == rejected(NOT_IN_GROUPS)
        assert get("/owner-admins", OWNER_ADMIN) == (200, {"username": "kim"})

    def test_container_context_override_logs_a_user_in(
        self, get: Get, container: SoajsContainer
    ) -> None:
        """Overriding the container's context provider gives the guards that user."""
        container.context.override(providers.Object(parse_inject_header(OWNER_ADMIN)))
        assert get("/owners", None) == (200, {"username": "kim"})
        assert get("/owner-admins", MEMBER) == (200, {"username": "kim"})
        container.context.override(providers.Object(None))
        assert get("/user", ZOE) == rejected(NO_HEADER)


class TestFastAPI:
    def test_dependency_overrides_replace_the_guard(self, container: SoajsContainer) -> None:
        """app.dependency_overrides can stand a test user in for require_user."""
        api = fastapi_app(container)
        api.dependency_overrides[soajs.fastapi.require_user] = lambda: Urac(username="test")
        with TestClient(api) as client:
            assert client.get("/user").json() == {"username": "test"}
            assert client.get("/owners").status_code == 403

    def test_without_setup_says_so(self) -> None:
        """Without setup_soajs the guard answers 403 code 132 naming the missing setup."""
        api = FastAPI()

        @api.get("/user")
        async def user_view(user: soajs.fastapi.SoajsUser) -> dict[str, Any]:
            return {"username": user.username}

        response = TestClient(api).get("/user", headers=header_of(ZOE))
        assert response.status_code == 403
        assert "setup_soajs" in json.dumps(response.json())


class TestCore:
    def test_require_user(self) -> None:
        """require_user refuses a context without urac and admits one with it."""
        assert require_user(parse_inject_header(build_inject_header())) is NO_USER
        assert require_user(parse_inject_header(MEMBER)) is None

    def test_require_groups_any_and_all(self) -> None:
        """require_groups admits one shared group, or every group with all=True."""
        zoe = parse_inject_header(ZOE)
        assert require_groups(zoe, "owner", "admin") is None
        assert require_groups(zoe, "owner", "admin", all=True) is NOT_IN_GROUPS
        assert require_groups(parse_inject_header(build_inject_header()), "owner") is NO_USER

    def test_no_groups_is_a_mistake(self) -> None:
        """A group guard without groups is refused when it is built, not at a request."""
        with pytest.raises(ValueError, match="at least one group"):
            UserGuard.for_groups(())
        with pytest.raises(ValueError, match="at least one group"):
            soajs.flask.require_groups()

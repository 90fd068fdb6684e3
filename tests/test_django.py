"""soajs.django: SoajsMiddleware (sync and async), request.soajs, heartbeat, registry start.

Registration with a real gateway is in test_registration_e2e.py, shared by the three frameworks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path
from helpers import configure_django, tenants_seen_at_once
from inject_headers import HEADERS

import soajs.django
from soajs.connector import ServiceConnector
from soajs.container import SoajsContainer
from soajs.context import current_context
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData
from soajs.settings import Settings
from soajs.testing import FakeRegistryManager, build_inject_header

configure_django()


def dump(context: ContextData | None) -> Any:
    if context is None:
        return None
    data: dict[str, Any] = context.model_dump(mode="json", by_alias=True)
    data["@raw"] = context.raw_header
    return data


def dump_view(request: HttpRequest) -> HttpResponse:
    context = request.soajs  # type: ignore[attr-defined]
    return JsonResponse(
        {"context": dump(context), "same": current_context() is context}, safe=False
    )


async def async_dump_view(request: HttpRequest) -> HttpResponse:
    context = request.soajs  # type: ignore[attr-defined]
    return JsonResponse({"context": dump(context), "same": current_context() is context})


def connect_view(request: HttpRequest) -> HttpResponse:
    connection = ServiceConnector().connect("urac")
    return JsonResponse(dict(connection.headers))


urlpatterns = [
    path("dump", dump_view),
    path("connect", connect_view),
    path("async-dump", async_dump_view),
    path("soajs/", include("soajs.django")),
]

MIDDLEWARE = ["soajs.django.SoajsMiddleware"]


@pytest.fixture
def django_site() -> Iterator[None]:
    """This module's URLs behind SoajsMiddleware."""
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE):
        yield


@pytest.fixture
def container(django_site: None) -> Iterator[SoajsContainer]:
    container = SoajsContainer()
    container.registry.override(FakeRegistryManager(autostart=False))
    soajs.django.configure(container)
    try:
        yield container
    finally:
        soajs.django.stop()
        container.reset_override()


def as_meta_text(raw: bytes | str) -> str:
    """A header value as Django's META holds it (PEP 3333: the bytes decoded as Latin-1)."""
    return raw.decode("latin-1") if isinstance(raw, bytes) else raw


class TestMiddleware:
    @pytest.mark.parametrize("name", sorted(HEADERS))
    def test_every_fixture_header_gives_the_parsed_context(
        self, container: SoajsContainer, name: str
    ) -> None:
        """Each fixture header becomes request.soajs, exactly the parser's ContextData."""
        raw = HEADERS[name]
        response = Client().get("/dump", headers={"soajsinjectobj": raw})
        assert response.status_code == 200
        expected = json.loads(json.dumps(dump(parse_inject_header(raw))))
        assert response.json() == {"context": expected, "same": True}

    @pytest.mark.parametrize("name", sorted(HEADERS)[:4])
    def test_async_stack_gives_the_same_context(self, container: SoajsContainer, name: str) -> None:
        """Under Django's async handler the same header gives the same context."""
        raw = HEADERS[name]

        async def call() -> Any:
            return await AsyncClient().get("/async-dump", headers={"soajsinjectobj": raw})

        response = asyncio.run(call())
        expected = json.loads(json.dumps(dump(parse_inject_header(raw))))
        assert response.json() == {"context": expected, "same": True}

    def test_latin1_tenant_name(self, container: SoajsContainer) -> None:
        """A Latin-1 é in the tenant name arrives as é."""
        header = as_meta_text(build_inject_header(tenant_name="Café"))
        response = Client().get("/dump", headers={"soajsinjectobj": header})
        assert response.json()["context"]["tenant"]["name"] == "Café"

    def test_authorization_reaches_the_connector(self, container: SoajsContainer) -> None:
        """The request's Authorization header (META's HTTP_AUTHORIZATION) goes on gateway calls."""
        header = as_meta_text(build_inject_header())
        response = Client().get(
            "/connect", headers={"soajsinjectobj": header, "Authorization": "Bearer django-jwt"}
        )
        assert response.json()["Authorization"] == "Bearer django-jwt"

    def test_no_header_means_none(self, container: SoajsContainer) -> None:
        """Without a header request.soajs is None and the view runs."""
        response = Client().get("/dump")
        assert response.json() == {"context": None, "same": True}

    def test_malformed_header_means_none_under_ignore(self, container: SoajsContainer) -> None:
        """The default policy turns a malformed header into no context, never a 500."""
        response = Client().get("/dump", headers={"soajsinjectobj": "{nope"})
        assert response.status_code == 200
        assert response.json()["context"] is None

    def test_current_context_is_reset_after_the_request(self, container: SoajsContainer) -> None:
        """After the response the current context is gone."""
        header = as_meta_text(build_inject_header())
        Client().get("/dump", headers={"soajsinjectobj": header})
        assert current_context() is None

    def test_concurrent_requests_keep_their_own_context(self, container: SoajsContainer) -> None:
        """Requests served at once in many threads each see their own tenant."""

        def tenant_seen(code: str) -> str | None:
            header = as_meta_text(build_inject_header(tenant_code=code))
            reply = Client().get("/dump", headers={"soajsinjectobj": header})
            tenant: str | None = reply.json()["context"]["tenant"]["code"]
            return tenant

        seen = tenants_seen_at_once(tenant_seen, 12)
        assert seen == {f"T{index}": f"T{index}" for index in range(12)}


class TestPolicy:
    @pytest.fixture
    def rejecting(self, django_site: None) -> Iterator[None]:
        container = SoajsContainer()
        container.settings.override(Settings(header_policy="reject"))
        container.registry.override(FakeRegistryManager(autostart=False))
        soajs.django.configure(container)
        try:
            yield
        finally:
            soajs.django.stop()

    @pytest.mark.parametrize(
        ("header", "status", "code"),
        [(None, 403, 132), ("{nope", 400, 135), ("null", 400, 135), ("[]", 400, 135)],
    )
    def test_reject_policy_answers_in_gateway_format(
        self, rejecting: None, header: str | None, status: int, code: int
    ) -> None:
        """Under reject a missing or bad header is refused before the view, in gateway format."""
        headers = {} if header is None else {"soajsinjectobj": header}
        response = Client().get("/dump", headers=headers)
        assert response.status_code == status
        body = response.json()
        assert body["result"] is False
        assert body["errors"]["codes"] == [code]

    def test_reject_policy_serves_a_valid_header(self, rejecting: None) -> None:
        """Under reject a valid header is served, parsed once."""
        header = as_meta_text(build_inject_header(tenant_code="OK"))
        response = Client().get("/dump", headers={"soajsinjectobj": header})
        assert response.json()["context"]["tenant"]["code"] == "OK"

    def test_untrusted_peer_gets_no_context(self, django_site: None) -> None:
        """A header from outside SOAJS_TRUSTED_GATEWAYS is dropped."""
        container = SoajsContainer()
        container.settings.override(Settings(trusted_gateways="10.0.0.0/8"))
        container.registry.override(FakeRegistryManager(autostart=False))
        soajs.django.configure(container)
        try:
            header = as_meta_text(build_inject_header())
            response = Client(REMOTE_ADDR="192.0.2.1").get(
                "/dump", headers={"soajsinjectobj": header}
            )
            trusted = Client(REMOTE_ADDR="10.1.2.3").get(
                "/dump", headers={"soajsinjectobj": header}
            )
        finally:
            soajs.django.stop()
        assert response.json()["context"] is None
        assert trusted.json()["context"]["tenant"]["code"] == "TTEN"

    def test_settings_come_from_the_soajs_django_setting(self, django_site: None) -> None:
        """Without a container, settings.SOAJS gives the soajs Settings."""
        options = {"HEADER_POLICY": "reject", "service_name": "dj", "registry_api": "127.0.0.1:9"}
        with override_settings(SOAJS=options):
            container = soajs.django.configure()
        try:
            assert container.settings().header_policy == "reject"
            assert soajs.django.get_container() is container
        finally:
            soajs.django.stop()


class TestHeartbeatAndRegistry:
    def test_heartbeat_in_the_middleware(self, container: SoajsContainer) -> None:
        """GET /heartbeat answers 200 from the middleware and never fetches the registry."""
        for _ in range(3):
            response = Client().get("/heartbeat")
            assert response.status_code == 200
            assert response.json()["result"] is True
        assert container.registry().fetches == 1

    def test_heartbeat_view_in_urlpatterns(self, django_site: None) -> None:
        """include("soajs.django") serves the heartbeat view when the middleware does not."""
        container = SoajsContainer()
        container.registry.override(FakeRegistryManager(autostart=False))
        soajs.django.configure(container, heartbeat=False)
        try:
            client = Client()
            assert client.get("/soajs/heartbeat").status_code == 200
            assert client.head("/soajs/heartbeat").content == b""
            assert client.post("/soajs/heartbeat").status_code == 405
            assert client.get("/heartbeat").status_code == 404
        finally:
            soajs.django.stop()

    def test_registry_loads_once_at_start_never_per_request(
        self, container: SoajsContainer
    ) -> None:
        """The middleware's start loads the registry once; requests never fetch it."""
        Client().get("/dump")
        Client().get("/dump")
        assert container.registry().fetches == 1

"""soajs.flask: the Soajs extension, current_context and container wiring.

Registration with a real gateway is in test_registration_e2e.py, shared by the three frameworks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from dependency_injector.wiring import Provide, inject
from flask import Flask, copy_current_request_context, jsonify, request
from flask.testing import FlaskClient
from helpers import tenants_seen_at_once
from inject_headers import HEADERS

import soajs
from soajs.connector import ServiceConnector
from soajs.container import SoajsContainer
from soajs.flask import EXTENSION_KEY, Soajs, current_context
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData
from soajs.models.service_config import Config
from soajs.registry.manager import RegistryManager
from soajs.request import REQUEST_KEY, RequestContext
from soajs.testing import FakeRegistryManager, build_inject_header


def dump(context: ContextData) -> dict[str, Any]:
    data: dict[str, Any] = context.model_dump(mode="json", by_alias=True)
    data["@raw"] = context.raw_header
    return data


def dump_view() -> Any:
    context = current_context()
    if context is None:
        return jsonify(None)
    return jsonify(dump(context))


@inject
def injected_view(
    context: ContextData | None = Provide[SoajsContainer.context],
    registry: RegistryManager = Provide[SoajsContainer.registry],
    connector: ServiceConnector = Provide[SoajsContainer.connector],
) -> Any:
    return jsonify(
        tenant=context.tenant.code if context is not None else None,
        environment=registry.registry.environment,
        connector_tenant=connector.context.tenant.code if connector.context else None,
    )


def make_app(container: SoajsContainer, **options: Any) -> tuple[Flask, Soajs]:
    app = Flask(__name__)
    extension = Soajs(app, container=container, **options)
    app.add_url_rule("/dump", view_func=dump_view)
    app.add_url_rule("/injected", view_func=injected_view)
    container.wire(modules=[__name__])
    return app, extension


@pytest.fixture
def app(soajs_container: SoajsContainer) -> Iterator[Flask]:
    flask_app, extension = make_app(soajs_container)
    try:
        yield flask_app
    finally:
        extension.stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def as_environ_text(raw: bytes) -> str:
    """A header value as PEP 3333 puts it in the environ: its bytes, decoded as Latin-1."""
    return raw.decode("latin-1")


class TestContext:
    @pytest.mark.parametrize("name", sorted(HEADERS))
    def test_every_fixture_header_gives_the_parsed_context(
        self, client: FlaskClient, name: str
    ) -> None:
        """Each fixture header reaches the view as exactly the parser's ContextData."""
        raw = HEADERS[name]
        response = client.get("/dump", headers={"soajsinjectobj": raw})
        assert response.status_code == 200
        expected = json.loads(json.dumps(dump(parse_inject_header(raw))))
        assert response.get_json() == expected

    def test_latin1_tenant_name(self, client: FlaskClient) -> None:
        """A Latin-1 é in the tenant name arrives as é."""
        raw = build_inject_header(tenant_name="Café")
        response = client.get("/dump", headers={"soajsinjectobj": as_environ_text(raw)})
        assert response.get_json()["tenant"]["name"] == "Café"

    def test_no_header_no_context(self, client: FlaskClient) -> None:
        """Without a header current_context() is None and the view still runs."""
        response = client.get("/dump")
        assert response.status_code == 200
        assert response.get_json() is None

    def test_current_context_outside_a_request(self) -> None:
        """Outside any request current_context() is None."""
        assert current_context() is None

    def test_current_context_in_a_thread_given_the_flask_request(self, app: Flask) -> None:
        """A thread that Flask's copy_current_request_context runs finds the request's context
        through the environ, where soajs.current_context() (a ContextVar) has none."""
        seen: dict[str, str | None] = {}

        def in_thread() -> None:
            context = current_context()
            seen["flask"] = context.tenant.code if context is not None else None
            plain = soajs.current_context()
            seen["plain"] = plain.tenant.code if plain is not None else None

        @app.get("/thread")
        def thread_view() -> dict[str, str]:
            worker = threading.Thread(target=copy_current_request_context(in_thread))
            worker.start()
            worker.join()
            return {}

        header = build_inject_header(tenant_code="THRD").decode()
        assert (
            app.test_client().get("/thread", headers={"soajsinjectobj": header}).status_code == 200
        )
        assert seen == {"flask": "THRD", "plain": None}

    def test_the_flask_request_environ_wins_over_the_current_request(self, app: Flask) -> None:
        """Inside a nested Flask request context, current_context() is that request's context,
        not the one of the request the middleware is serving."""
        seen: list[str | None] = []

        @app.get("/nested")
        def nested_view() -> dict[str, str]:
            inner = RequestContext(build_inject_header(tenant_code="INNR"))
            with app.test_request_context(environ_overrides={REQUEST_KEY: inner}):
                context = current_context()
                seen.append(context.tenant.code if context is not None else None)
            outer = current_context()
            seen.append(outer.tenant.code if outer is not None else None)
            return {}

        header = build_inject_header(tenant_code="OUTR").decode()
        assert (
            app.test_client().get("/nested", headers={"soajsinjectobj": header}).status_code == 200
        )
        assert seen == ["INNR", "OUTR"]

    def test_extension_is_registered(self, app: Flask) -> None:
        """The extension is findable in app.extensions."""
        assert isinstance(app.extensions[EXTENSION_KEY], Soajs)

    def test_init_app_later(self, soajs_container: SoajsContainer, soajs_header: bytes) -> None:
        """Soajs(container=...).init_app(app) works like Soajs(app, ...)."""
        extension = Soajs(container=soajs_container)
        app = Flask(__name__)
        extension.init_app(app)
        app.add_url_rule("/dump", view_func=dump_view)
        try:
            response = app.test_client().get(
                "/dump", headers={"soajsinjectobj": as_environ_text(soajs_header)}
            )
        finally:
            extension.stop()
        assert response.get_json()["tenant"]["code"] == "TTEN"

    def test_public_service_does_not_trust_the_header(self, soajs_header: bytes) -> None:
        """With extKeyRequired false the header is never trusted."""
        container = SoajsContainer()
        container.registry.override(FakeRegistryManager())
        container.service_config.override(
            Config(name="pub", group="g", port=4100, extKeyRequired=False)
        )
        app, extension = make_app(container)
        try:
            response = app.test_client().get(
                "/dump", headers={"soajsinjectobj": as_environ_text(soajs_header)}
            )
        finally:
            extension.stop()
        assert response.get_json() is None

    def test_plain_environ_keeps_the_providers(
        self, soajs_container: SoajsContainer, soajs_header: bytes
    ) -> None:
        """environ_context=False drops the seed key; the injected context is unchanged."""
        app, extension = make_app(soajs_container, environ_context=False)

        @app.get("/seed")
        def seed() -> Any:
            return jsonify(type(request.environ) is dict and "soajs.context" not in request.environ)

        try:
            client = app.test_client()
            headers = {"soajsinjectobj": as_environ_text(soajs_header)}
            injected = client.get("/injected", headers=headers).get_json()
            plain = client.get("/seed", headers=headers).get_json()
        finally:
            extension.stop()
        assert injected["tenant"] == "TTEN"
        assert injected["connector_tenant"] == "TTEN"
        assert plain is True


class TestWiring:
    def test_view_gets_context_registry_and_connector(self, client: FlaskClient) -> None:
        """@inject with Provide in a Flask view sees the request's context and the registry."""
        header = as_environ_text(build_inject_header(tenant_code="FLASK"))
        response = client.get("/injected", headers={"soajsinjectobj": header})
        assert response.get_json() == {
            "tenant": "FLASK",
            "environment": "dev",
            "connector_tenant": "FLASK",
        }

    def test_concurrent_requests_keep_their_own_context(self, app: Flask) -> None:
        """Views served at once in many threads each see their own tenant."""

        def tenant_seen(code: str) -> str | None:
            header = as_environ_text(build_inject_header(tenant_code=code))
            reply = app.test_client().get("/injected", headers={"soajsinjectobj": header})
            tenant: str | None = reply.get_json()["tenant"]
            return tenant

        seen = tenants_seen_at_once(tenant_seen, 20)
        assert seen == {f"T{index}": f"T{index}" for index in range(20)}


class TestRegistry:
    def test_heartbeat(self, client: FlaskClient) -> None:
        """GET /heartbeat answers 200 without a header."""
        response = client.get("/heartbeat")
        assert response.status_code == 200
        assert response.get_json()["result"] is True

    def test_registry_loads_once_in_the_background_from_init_app(self) -> None:
        """init_app begins the first load; requests never fetch the registry; stop stops it."""
        fake = FakeRegistryManager(autostart=False)
        container = SoajsContainer()
        container.registry.override(fake)
        app, extension = make_app(container)
        assert fake.wait_loaded(10)
        app.test_client().get("/dump")
        app.test_client().get("/dump")
        assert fake.fetches == 1
        extension.stop()
        assert extension.lifecycle.started is False

    def test_heartbeat_never_loads_the_registry(self) -> None:
        """The gateway's health check reads readiness only: it never fetches the registry."""
        fake = FakeRegistryManager(autostart=False)
        container = SoajsContainer()
        container.registry.override(fake)
        app, extension = make_app(container)
        try:
            assert fake.wait_loaded(10)
            for _ in range(3):
                assert app.test_client().get("/heartbeat").status_code == 200
            assert fake.fetches == 1
        finally:
            extension.stop()

"""soajs.fastapi: context dependencies, container wiring, heartbeat and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from dependency_injector import providers
from dependency_injector.wiring import Provide, inject
from fastapi import Depends, FastAPI
from helpers import UvicornThread, free_port, tenants_seen_at_once
from inject_headers import HEADERS
from pytest_httpserver import HTTPServer
from starlette.exceptions import StarletteDeprecationWarning

import soajs.fastapi as fastapi_module
from soajs.connector import ServiceConnector
from soajs.container import SoajsContainer
from soajs.fastapi import (
    STATE_KEY,
    SoajsConnector,
    SoajsContext,
    SoajsOptionalContext,
    get_soajs_context,
    setup_soajs,
    soajs_context,
)
from soajs.inject import parse_inject_header
from soajs.middleware import get_soajs_context as seed_get_soajs_context
from soajs.models.context import ContextData
from soajs.models.service_config import Config
from soajs.registry.manager import RegistryManager
from soajs.settings import Settings
from soajs.testing import DEFAULT_REGISTRY, FakeRegistryManager, build_inject_header

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


def dump(context: ContextData) -> dict[str, Any]:
    """What every test endpoint answers: the context as JSON, plus the raw header."""
    data: dict[str, Any] = context.model_dump(mode="json", by_alias=True)
    data["@raw"] = context.raw_header
    return data


def expected(raw: str) -> dict[str, Any]:
    """The same dump, straight from the parser, through JSON like a response body."""
    dumped: dict[str, Any] = json.loads(json.dumps(dump(parse_inject_header(raw))))
    return dumped


def context_dump(context: SoajsContext) -> dict[str, Any]:
    return dump(context)


def optional_tenant(context: SoajsOptionalContext) -> dict[str, Any]:
    return {"tenant": context.tenant.code if context is not None else None}


def plain_depends(context: Annotated[ContextData, Depends(soajs_context)]) -> dict[str, str]:
    return {"tenant": context.tenant.code}


def connector_host(connector: SoajsConnector) -> dict[str, Any]:
    return {"host": connector.connect("urac", "2").host, "same": connector.context is not None}


# dependency-injector reads markers from defaults: with postponed annotations (this module's
# `from __future__ import annotations`) it cannot see a Provide inside Annotated[...].
@inject
def injected_sync(
    context: ContextData | None = Depends(Provide[SoajsContainer.context]),  # noqa: B008
    registry: RegistryManager = Depends(Provide[SoajsContainer.registry]),  # noqa: B008
) -> dict[str, Any]:
    return {
        "tenant": context.tenant.code if context is not None else None,
        "environment": registry.registry.environment,
    }


@inject
async def injected_async(
    context: ContextData | None = Depends(Provide[SoajsContainer.context]),  # noqa: B008
    connector: ServiceConnector = Depends(Provide[SoajsContainer.connector]),  # noqa: B008
) -> dict[str, Any]:
    return {
        "tenant": context.tenant.code if context is not None else None,
        "gateway": connector.connect().host,
    }


def make_app(container: SoajsContainer, **options: Any) -> FastAPI:
    app = FastAPI()
    setup_soajs(app, container, **options)
    app.add_api_route("/dump", context_dump)
    app.add_api_route("/optional", optional_tenant)
    app.add_api_route("/plain", plain_depends)
    app.add_api_route("/connector", connector_host)
    app.add_api_route("/injected-sync", injected_sync)
    app.add_api_route("/injected-async", injected_async)
    container.wire(modules=[__name__])
    return app


@pytest.fixture
def client(soajs_container: SoajsContainer) -> Iterator[TestClient]:
    with TestClient(make_app(soajs_container)) as test_client:
        yield test_client


def card(context: ContextData | None = Depends(seed_get_soajs_context)) -> dict[str, Any]:  # noqa: B008
    """The design card's handler, with the seed's import path."""
    if context is None:
        return {"context": None}
    return {"tenant": context.tenant.code, "package": context.tenant.application.package}


async def card_async(
    context: Annotated[ContextData | None, Depends(seed_get_soajs_context)],
) -> dict[str, Any]:
    return {"tenant": context.tenant.code if context is not None else None}


def fastapi_card(context: ContextData | None = Depends(get_soajs_context)) -> dict[str, Any]:  # noqa: B008
    """The design card's handler, with soajs.fastapi's import path."""
    if context is None:
        return {"context": None}
    return {"tenant": context.tenant.code, "package": context.tenant.application.package}


async def fastapi_card_async(
    context: Annotated[ContextData | None, Depends(get_soajs_context)],
) -> dict[str, Any]:
    return {"tenant": context.tenant.code if context is not None else None}


CARD_HANDLERS = {
    "soajs.middleware": (card, card_async),
    "soajs.fastapi": (fastapi_card, fastapi_card_async),
}


def design_card_app(import_path: str, container: SoajsContainer) -> FastAPI:
    """An app written as the design card says: ``Depends(get_soajs_context)``."""
    app = FastAPI()
    setup_soajs(app, container)
    sync_handler, async_handler = CARD_HANDLERS[import_path]
    app.add_api_route("/card", sync_handler)
    app.add_api_route("/card-async", async_handler)
    return app


@pytest.mark.parametrize("import_path", sorted(CARD_HANDLERS))
class TestDesignCardDependency:
    def test_gives_the_context(
        self, import_path: str, soajs_container: SoajsContainer, soajs_header: bytes
    ) -> None:
        """Depends(get_soajs_context) gives the request's ContextData, not a 422."""
        with TestClient(design_card_app(import_path, soajs_container)) as client:
            response = client.get("/card", headers={"soajsinjectobj": soajs_header})
            assert response.status_code == 200
            assert response.json()["tenant"] == "TTEN"
            response = client.get("/card-async", headers={"soajsinjectobj": soajs_header})
            assert response.json() == {"tenant": "TTEN"}

    @pytest.mark.parametrize("header", [None, b"{not json", b"{}", b'{"tenant": {"id": 1}}'])
    def test_none_without_a_usable_header(
        self, import_path: str, soajs_container: SoajsContainer, header: bytes | None
    ) -> None:
        """Without a usable header the dependency gives None (the seed's meaning), not an error."""
        with TestClient(design_card_app(import_path, soajs_container)) as client:
            headers = {} if header is None else {"soajsinjectobj": header}
            response = client.get("/card", headers=headers)
            assert response.status_code == 200
            assert response.json() == {"context": None}

    def test_no_query_parameter_is_asked_for(
        self, import_path: str, soajs_container: SoajsContainer
    ) -> None:
        """FastAPI sees the request parameter, so the OpenAPI schema has no 'request' query."""
        with TestClient(design_card_app(import_path, soajs_container)) as client:
            operation = client.get("/openapi.json").json()["paths"]["/card"]["get"]
            assert "parameters" not in operation


async def threads_seen(
    context: SoajsContext, optional: SoajsOptionalContext, connector: SoajsConnector
) -> dict[str, Any]:
    """An async handler: it runs on the event loop's thread."""
    return {"loop": threading.get_ident(), "tenant": context.tenant.code}


class TestDependenciesOnTheEventLoop:
    def test_context_and_connector_dependencies_run_on_the_loop_thread(
        self, soajs_container: SoajsContainer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SoajsContext, SoajsOptionalContext and SoajsConnector never hop to the threadpool."""
        seen: dict[str, int] = {}
        request_of, context_of = fastapi_module.current_request, fastapi_module.current_context

        def recording_request() -> Any:
            seen["SoajsContext"] = threading.get_ident()
            return request_of()

        def recording_context() -> ContextData | None:
            seen["SoajsOptionalContext"] = threading.get_ident()
            return context_of()

        def recording_connector() -> ServiceConnector:
            seen["SoajsConnector"] = threading.get_ident()
            return ServiceConnector()

        monkeypatch.setattr(fastapi_module, "current_request", recording_request)
        monkeypatch.setattr(fastapi_module, "current_context", recording_context)
        soajs_container.connector.override(providers.Callable(recording_connector))
        app = make_app(soajs_container)
        app.add_api_route("/threads", threads_seen)
        with TestClient(app) as test_client:
            response = test_client.get(
                "/threads", headers={"soajsinjectobj": build_inject_header()}
            )
        assert response.status_code == 200, response.text
        loop = response.json()["loop"]
        assert seen == dict.fromkeys(
            ("SoajsContext", "SoajsOptionalContext", "SoajsConnector"), loop
        )


class TestContextDependencies:
    @pytest.mark.parametrize("name", sorted(HEADERS))
    def test_every_fixture_header_gives_the_parsed_context(
        self, client: TestClient, name: str
    ) -> None:
        """Each fixture header reaches the handler as exactly the parser's ContextData."""
        raw = HEADERS[name]
        response = client.get("/dump", headers={"soajsinjectobj": raw.encode("latin-1")})
        assert response.status_code == 200
        assert response.json() == expected(raw)

    def test_latin1_tenant_name(self, soajs_container: SoajsContainer) -> None:
        """A Latin-1 é in the tenant name arrives as é, not a 500."""
        # httpx's ASGITransport passes header bytes through (the TestClient re-encodes them).
        raw = build_inject_header(tenant_name="Café")
        assert b"Caf\xe9" in raw

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=make_app(soajs_container))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await http.get("/dump", headers={"soajsinjectobj": raw})

        response = asyncio.run(call())
        assert response.status_code == 200
        assert response.json()["tenant"]["name"] == "Café"

    def test_missing_header_is_a_gateway_error(self, client: TestClient) -> None:
        """Without a header the required context answers 403 in the gateway's format."""
        response = client.get("/dump")
        assert response.status_code == 403
        body = response.json()
        assert body["result"] is False
        assert body["errors"]["codes"] == [132]
        assert body["errors"]["details"][0]["code"] == 132

    @pytest.mark.parametrize(
        ("header", "status"),
        [
            (b"{not json", 400),
            (b"null", 400),
            (b"[1,2]", 400),
            (b'{"tenant": 1, "key": {}, "application": {"package": "P"}}', 400),
            (b'{"tenant": {"id": "t"}, "key": {}, "application": {"package": "P"}}', 400),
            (b'{"tenant": {"id": "t", "code": "C"}, "key": NaN, "application": {}}', 400),
            (b"{" + b" " * 70000 + b"}", 431),
        ],
    )
    def test_bad_header_is_a_gateway_error(
        self, client: TestClient, header: bytes, status: int
    ) -> None:
        """Malformed, wrong-typed or oversized headers give 400/431 with code 135, never 500."""
        response = client.get("/plain", headers={"soajsinjectobj": header})
        assert response.status_code == status
        assert response.json()["errors"]["codes"] == [135]

    @pytest.mark.parametrize(
        "header",
        [
            b'{"tenant": 1}',
            b"{}",
            b'{"tenant": {"id": "t", "code": "C"}, "key": {}, "application": {"package": ""}}',
        ],
    )
    def test_header_soajs_core_gives_no_context_is_like_none(
        self, client: TestClient, header: bytes
    ) -> None:
        """A header soajs core gives no context (no key, empty package) is answered as no key."""
        response = client.get("/plain", headers={"soajsinjectobj": header})
        assert response.status_code == 403
        assert response.json()["errors"]["codes"] == [132]

    def test_optional_context(self, client: TestClient, soajs_header: bytes) -> None:
        """The optional dependency gives None without a header and the context with one."""
        assert client.get("/optional").json() == {"tenant": None}
        with_header = client.get("/optional", headers={"soajsinjectobj": soajs_header})
        assert with_header.json() == {"tenant": "TTEN"}

    def test_plain_depends(self, client: TestClient, soajs_header: bytes) -> None:
        """Annotated[..., Depends(soajs_context)] works as well as the SoajsContext alias."""
        response = client.get("/plain", headers={"soajsinjectobj": soajs_header})
        assert response.json() == {"tenant": "TTEN"}

    def test_connector_dependency(self, client: TestClient) -> None:
        """The connector dependency is bound to the request's context."""
        header = build_inject_header(awareness_host="10.0.0.9", awareness_port=4000)
        response = client.get("/connector", headers={"soajsinjectobj": header})
        assert response.json() == {"host": "10.0.0.9:4000/urac/v2", "same": True}

    def test_without_setup_it_is_still_not_a_500(self, soajs_header: bytes) -> None:
        """With no middleware the dependency answers 403 (never 500) and names the fix."""
        app = FastAPI()
        app.add_api_route("/dump", context_dump)
        with TestClient(app) as test_client:
            response = test_client.get("/dump", headers={"soajsinjectobj": soajs_header})
        assert response.status_code == 403
        assert "setup_soajs" in json.dumps(response.json())

    def test_public_service_does_not_trust_the_header(self, soajs_header: bytes) -> None:
        """With extKeyRequired false the header is never trusted (the gateway passes it on)."""
        container = SoajsContainer()
        container.registry.override(FakeRegistryManager())
        container.service_config.override(
            Config(name="pub", group="g", port=4100, extKeyRequired=False)
        )
        with TestClient(make_app(container)) as test_client:
            response = test_client.get("/optional", headers={"soajsinjectobj": soajs_header})
        assert response.json() == {"tenant": None}


class TestWiring:
    def test_sync_handler_gets_context_and_registry(
        self, client: TestClient, soajs_header: bytes
    ) -> None:
        """A sync handler with @inject and Provide sees the request context and the registry."""
        response = client.get("/injected-sync", headers={"soajsinjectobj": soajs_header})
        assert response.json() == {"tenant": "TTEN", "environment": "dev"}

    def test_async_handler_gets_context_and_connector(self, client: TestClient) -> None:
        """An async handler with @inject and Provide sees the context and a bound connector."""
        header = build_inject_header(tenant_code="ASYNC", awareness_host="10.1.1.1")
        response = client.get("/injected-async", headers={"soajsinjectobj": header})
        assert response.json() == {"tenant": "ASYNC", "gateway": "10.1.1.1:4000"}

    def test_concurrent_requests_keep_their_own_context(self, client: TestClient) -> None:
        """Requests served at once from many threads each see their own tenant."""

        def tenant_seen(code: str) -> str | None:
            header = build_inject_header(tenant_code=code)
            reply = client.get("/injected-sync", headers={"soajsinjectobj": header})
            tenant: str | None = reply.json()["tenant"]
            return tenant

        seen = tenants_seen_at_once(tenant_seen, 20)
        assert seen == {f"T{index}": f"T{index}" for index in range(20)}


class TestLifespan:
    def test_heartbeat(self, client: TestClient) -> None:
        """GET /heartbeat answers 200 without any header."""
        response = client.get("/heartbeat")
        assert response.status_code == 200
        assert response.json()["result"] is True

    def test_registry_starts_and_stops_with_the_app(self) -> None:
        """The lifespan loads the registry before serving and stops it at shutdown."""
        fake = FakeRegistryManager(autostart=False)
        container = SoajsContainer()
        container.registry.override(fake)
        app = make_app(container)
        assert fake.status.reloads == 0
        with TestClient(app) as test_client:
            assert fake.status.reloads == 1
            assert getattr(app.state, STATE_KEY).started is True
            assert test_client.get("/injected-sync").json()["environment"] == "dev"
        assert getattr(app.state, STATE_KEY).started is False

    def test_composes_with_the_apps_own_lifespan(self) -> None:
        """The app's lifespan runs inside: the registry is ready before it and after it."""
        fake = FakeRegistryManager(autostart=False)
        events: list[str] = []

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
            events.append(f"startup reloads={fake.status.reloads}")
            yield {"greeting": "hi"}
            events.append(f"shutdown started={getattr(app.state, STATE_KEY).started}")

        app = FastAPI(lifespan=lifespan)
        container = SoajsContainer()
        container.registry.override(fake)
        setup_soajs(app, container)

        @app.get("/state")
        def state() -> dict[str, str]:
            return {"ok": "yes"}

        with TestClient(app) as test_client:
            assert test_client.get("/state").json() == {"ok": "yes"}
        assert events == ["startup reloads=1", "shutdown started=True"]


def registry_reply() -> dict[str, Any]:
    return {"result": True, "ts": 1, "service": {}, "data": DEFAULT_REGISTRY}


class TestRegistration:
    def test_no_registration_without_deploy_manual(self, httpserver: HTTPServer) -> None:
        """Without deploy_manual the app loads the registry and never calls /register."""
        port = free_port()
        httpserver.expect_request("/getRegistry").respond_with_json(registry_reply())
        container = SoajsContainer()
        container.settings.override(Settings(registry_api=f"127.0.0.1:{httpserver.port}"))
        container.service_config.override(Config(name="hello", group="test", port=port))
        with UvicornThread(make_app(container), port=port, lifespan="on"):
            assert httpx.get(f"http://127.0.0.1:{port}/heartbeat", timeout=5).status_code == 200
        paths = [req.path for req, _ in httpserver.log]
        assert paths == ["/getRegistry"]

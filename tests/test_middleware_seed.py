"""soajs.middleware: the seed import path, get_soajs_context, and the seed README snippets."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fixture_paths import CAPTURED, SEED_README
from flask import Flask
from flask import request as flask_request
from inject_headers import HEADERS, SECURE_URAC_JWT
from pytest_httpserver import HTTPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import soajs.middleware
from soajs.context import REQUEST_KEY, RequestContext
from soajs.inject import parse_inject_header
from soajs.middleware import (
    SoajsASGIMiddleware,
    SOAJSMiddleware,
    SOAJSWSGIMiddleware,
    SoajsWSGIMiddleware,
    get_soajs_context,
)
from soajs.models.context import ContextData
from soajs.settings import Settings

pytestmark = pytest.mark.anyio

REGISTRY_REPLY = CAPTURED / "getRegistry.dev.hello.after-register.response.json"
SECURE_HEADER = HEADERS[SECURE_URAC_JWT]


def seed_snippet(title: str) -> str:
    """The python block under ``### {title}`` in the seed README, verbatim."""
    text = SEED_README.read_text(encoding="utf-8")
    match = re.search(rf"### {re.escape(title)}\n+```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, title
    return match.group(1)


@pytest.fixture
def seed_gateway(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    """A maintenance API on 127.0.0.1 serving the captured registry, named by SOAJS_REGISTRY_API."""
    reply = json.loads(REGISTRY_REPLY.read_text(encoding="utf-8"))
    httpserver.expect_request("/getRegistry").respond_with_json(reply)
    monkeypatch.setenv("SOAJS_REGISTRY_API", f"127.0.0.1:{httpserver.port}")
    monkeypatch.setenv("SOAJS_ENV", "dev")
    monkeypatch.setenv("SOAJS_DEPLOY_MANUAL", "false")
    return httpserver


def run_snippet(title: str) -> dict[str, Any]:
    """Execute a seed snippet as written; return its namespace."""
    namespace: dict[str, Any] = {"__name__": "seed_snippet"}
    exec(compile(seed_snippet(title), f"README.seed.md:{title}", "exec"), namespace)  # noqa: S102
    return namespace


class TestSeedSnippets:
    async def test_fastapi_example_runs_as_written(self, seed_gateway: HTTPServer) -> None:
        """The seed FastAPI example sees the tenant from the header, and 'No context' without."""
        namespace = run_snippet("FastAPI Example")
        registry = namespace["registry"]
        try:
            transport = httpx.ASGITransport(app=namespace["app"])
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
                with_header = await client.get("/", headers={"soajsinjectobj": SECURE_HEADER})
                without = await client.get("/")
        finally:
            registry.stop()
        assert with_header.json() == {"tenant": "TTEN"}
        assert without.json() == {"error": "No context"}
        assert any(request.path == "/getRegistry" for request, _ in seed_gateway.log)

    def test_flask_example_runs_as_written(self, seed_gateway: HTTPServer) -> None:
        """The seed Flask example sees the tenant from the header, and 'No context' without."""
        namespace = run_snippet("Flask Example")
        registry = namespace["registry"]
        try:
            client = namespace["app"].test_client()
            with_header = client.get("/", headers={"soajsinjectobj": SECURE_HEADER})
            without = client.get("/")
        finally:
            registry.stop()
        assert with_header.get_json() == {"tenant": "TTEN"}
        assert without.get_json() == {"error": "No context"}
        assert any(request.path == "/getRegistry" for request, _ in seed_gateway.log)


class TestGetSoajsContext:
    async def test_starlette_request(self) -> None:
        """A Starlette Request gives its context, parsed from the scope."""
        found: list[ContextData | None] = []

        async def view(request: Request) -> PlainTextResponse:
            found.append(get_soajs_context(request))
            return PlainTextResponse("ok")

        app = SoajsASGIMiddleware(Starlette(routes=[Route("/", view)]), settings=Settings())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            await client.get("/", headers={"soajsinjectobj": SECURE_HEADER})
        assert found == [parse_inject_header(SECURE_HEADER)]

    def test_flask_request(self) -> None:
        """A Flask request gives its context, parsed from the environ."""
        app = Flask(__name__)

        @app.route("/")
        def view() -> str:
            context = get_soajs_context(flask_request)
            return context.tenant.code if context is not None else "-"

        app.wsgi_app = SoajsWSGIMiddleware(app.wsgi_app, settings=Settings())  # type: ignore[method-assign]
        client = app.test_client()
        assert client.get("/", headers={"soajsinjectobj": SECURE_HEADER}).text == "TTEN"
        assert client.get("/").text == "-"

    @pytest.mark.parametrize(
        "mapping",
        [
            {"type": "http", REQUEST_KEY: RequestContext(SECURE_HEADER.encode("latin-1"))},
            {"REQUEST_METHOD": "GET", REQUEST_KEY: RequestContext(SECURE_HEADER)},
        ],
    )
    def test_bare_scope_or_environ(self, mapping: dict[str, Any]) -> None:
        """A bare ASGI scope or WSGI environ holding a RequestContext gives its context."""
        context = get_soajs_context(mapping)
        assert context is not None
        assert context.raw_header == SECURE_HEADER

    def test_context_stored_directly(self) -> None:
        """A context stored under the alias key (as upstream did) is returned as is."""
        context = parse_inject_header(SECURE_HEADER)

        scope_holder = SimpleNamespace(scope={"type": "http", "soajs": context})
        environ_holder = SimpleNamespace(environ={"soajs.context": context})
        assert get_soajs_context(scope_holder) is context
        assert get_soajs_context(environ_holder) is context

    def test_django_style_request(self) -> None:
        """An object with a ``soajs`` attribute (Django's request.soajs) gives it."""
        context = parse_inject_header(SECURE_HEADER)

        assert get_soajs_context(SimpleNamespace(soajs=context)) is context

    @pytest.mark.parametrize("request_like", [None, object(), {"type": "http"}, {}])
    def test_nothing_gives_none(self, request_like: object) -> None:
        """Anything without a SOAJS context gives None."""
        assert get_soajs_context(request_like) is None


class TestImportPath:
    def test_seed_names(self) -> None:
        """The seed names are the framework-free middlewares."""
        assert SOAJSMiddleware is SoajsASGIMiddleware
        assert SOAJSWSGIMiddleware is SoajsWSGIMiddleware

    def test_service_connector_is_reexported(self) -> None:
        """ServiceConnector comes from soajs.connector through the seed path."""
        connector = importlib.import_module("soajs.connector")
        assert soajs.middleware.ServiceConnector is connector.ServiceConnector

    def test_unknown_name_is_an_attribute_error(self) -> None:
        """Other names are not invented."""
        with pytest.raises(AttributeError, match="NoSuchThing"):
            soajs.middleware.NoSuchThing  # noqa: B018

    def test_the_seed_path_imports_no_framework(self) -> None:
        """soajs.middleware (get_soajs_context included) imports neither Starlette nor FastAPI."""
        code = (
            "import sys, inspect\n"
            "from soajs.middleware import get_soajs_context\n"
            "assert get_soajs_context({'type': 'http'}) is None\n"
            "names = ('starlette', 'fastapi', 'flask', 'django')\n"
            "print(sorted(name for name in names if name in sys.modules))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]"

    def test_fastapi_sees_a_request_parameter(self) -> None:
        """The signature FastAPI reads types the one parameter as Starlette's HTTPConnection."""
        from starlette.requests import HTTPConnection

        parameters = list(inspect.signature(get_soajs_context).parameters.values())
        assert [(p.name, p.annotation) for p in parameters] == [("request", HTTPConnection)]

"""SoajsASGIMiddleware with real Starlette apps, called through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from header_cases import IGNORED, REFUSED
from inject_headers import HEADERS, MINIMAL, SECURE_URAC_JWT, header_text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from soajs import current_context
from soajs.asgi import SoajsASGIMiddleware, SOAJSMiddleware
from soajs.context import REQUEST_KEY, RequestContext, SoajsEnviron, current_request
from soajs.inject import parse_inject_header
from soajs.middleware import get_soajs_context
from soajs.settings import Settings

pytestmark = pytest.mark.anyio

SEEN: list[RequestContext] = []


def latin1_header(data: dict[str, Any]) -> bytes:
    """A header as Node writes it: JSON.stringify output as Latin-1 bytes."""
    return header_text(data).encode("latin-1")


async def dump(request: Request) -> JSONResponse:
    """Report what the handler sees of the SOAJS context."""
    context = get_soajs_context(request)
    rc = request.scope[REQUEST_KEY]
    return JSONResponse(
        {
            "context": None if context is None else context.model_dump(mode="json", by_alias=True),
            "same_everywhere": context is current_context() is rc.context,
            "in_scope": "soajs" in request.scope or "soajs.context" in request.scope,
            "error": None if rc.error is None else rc.error.code,
            "access_token": rc.access_token,
            "authorization": rc.authorization,
            "traceparent": rc.traceparent,
            "tracestate": rc.tracestate,
            "peer": rc.peer,
        }
    )


async def untouched(request: Request) -> PlainTextResponse:
    """Never read the context; remember the request context to check it stayed unparsed."""
    SEEN.append(request.scope[REQUEST_KEY])
    return PlainTextResponse("ok")


async def tenant_code(request: Request) -> PlainTextResponse:
    """Read the context, yield to other tasks, and read it again."""
    first = current_context()
    await asyncio.sleep(0)
    second = get_soajs_context(request)
    assert first is second
    return PlainTextResponse(first.tenant.code if first is not None else "-")


def sync_code(request: Request) -> PlainTextResponse:
    """A sync endpoint: Starlette runs it in a worker thread with the request's context."""
    context = current_context()
    return PlainTextResponse(context.tenant.code if context is not None else "-")


def starlette_app(**options: Any) -> Starlette:
    """A minimal Starlette app behind the middleware."""
    options.setdefault("settings", Settings())
    app = Starlette(
        routes=[
            Route("/", dump),
            Route("/untouched", untouched),
            Route("/code", tenant_code),
            Route("/sync", sync_code),
            Route("/heartbeat", dump, methods=["POST"]),
        ]
    )
    app.add_middleware(SoajsASGIMiddleware, **options)
    return app


def with_client(app: Any, host: str | None) -> Any:
    """Wrap an ASGI app so every HTTP scope reports ``host`` as the client address."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": None if host is None else (host, 50000)}
        await app(scope, receive, send)

    return wrapper


async def get(app: Any, path: str = "/", **kwargs: Any) -> httpx.Response:
    """One request through httpx.ASGITransport."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.get(path, **kwargs)


def body_context(response: httpx.Response) -> Any:
    """The context the handler reported."""
    assert response.status_code == 200, response.text
    return response.json()["context"]


class TestFixtureHeaders:
    @pytest.mark.parametrize("name", sorted(HEADERS))
    async def test_every_fixture_header_reaches_the_handler(self, name: str) -> None:
        """Every fixture header gives the handler the same context as parsing it directly."""
        raw = HEADERS[name].encode("latin-1")
        response = await get(starlette_app(), headers={"soajsinjectobj": raw})
        expected = parse_inject_header(raw).model_dump(mode="json", by_alias=True)
        assert body_context(response) == expected
        assert response.json()["same_everywhere"] is True
        assert response.json()["in_scope"] is False

    async def test_latin1_tenant_name(self) -> None:
        """A Latin-1 byte in the tenant name arrives as 'é', not a 500."""
        raw = latin1_header(MINIMAL)
        assert b"Caf\xe9" in raw
        response = await get(starlette_app(), headers={"soajsinjectobj": raw})
        assert body_context(response)["tenant"]["name"] == "Café"

    async def test_request_values_are_captured(self) -> None:
        """access_token (query first), Authorization, traceparent, tracestate and the peer are
        captured."""
        headers = {
            "soajsinjectobj": HEADERS[SECURE_URAC_JWT].encode("latin-1"),
            "access_token": "from-header",
            "Authorization": "Bearer user-jwt",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "congo=t61rcWkgMzE",
        }
        response = await get(starlette_app(), "/?access_token=from-query", headers=headers)
        data = response.json()
        assert data["access_token"] == "from-query"
        assert data["authorization"] == "Bearer user-jwt"
        assert data["traceparent"].startswith("00-0af7651916cd43dd")
        assert data["tracestate"] == "congo=t61rcWkgMzE"
        assert data["peer"] == "127.0.0.1"
        response = await get(starlette_app(), headers={"access_token": "from-header"})
        assert response.json()["access_token"] == "from-header"
        assert response.json()["authorization"] is None

    async def test_sync_endpoint_sees_the_context(self) -> None:
        """A sync endpoint, run in a worker thread, sees the request's context."""
        response = await get(
            starlette_app(), "/sync", headers={"soajsinjectobj": latin1_header(MINIMAL)}
        )
        assert response.text == "TTEN"


class TestLaziness:
    async def test_unread_header_is_never_parsed(self) -> None:
        """A handler that never reads the context leaves the header unparsed."""
        SEEN.clear()
        response = await get(starlette_app(), "/untouched", headers={"soajsinjectobj": b"{bad"})
        assert response.text == "ok"
        [request] = SEEN
        assert request.parsed is False
        assert request.context is None
        assert request.parsed is True
        assert request.error is not None

    async def test_request_is_stored_in_the_scope_it_was_given(self) -> None:
        """The middleware adds its request to the server's scope rather than copying it."""
        seen: list[Any] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope)
            await PlainTextResponse("ok")(scope, receive, send)

        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(b"soajsinjectobj", latin1_header(MINIMAL))],
            "client": ("127.0.0.1", 5000),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            return None

        await SoajsASGIMiddleware(app, settings=Settings())(scope, receive, send)
        assert seen == [scope]
        assert seen[0] is scope
        assert scope[REQUEST_KEY].context.tenant.code == "TTEN"

    async def test_current_context_is_reset_after_the_request(self) -> None:
        """After the request, nothing is current any more."""
        response = await get(
            starlette_app(), "/code", headers={"soajsinjectobj": latin1_header(MINIMAL)}
        )
        assert response.text == "TTEN"
        assert current_request() is None
        assert current_context() is None


class TestIgnorePolicy:
    @pytest.mark.parametrize(("value", "error"), IGNORED)
    async def test_bad_header_gives_no_context(self, value: str | None, error: str | None) -> None:
        """Missing, malformed, invalid or oversized headers pass through without context."""
        headers = {} if value is None else {"soajsinjectobj": value.encode("latin-1")}
        response = await get(starlette_app(), headers=headers)
        assert body_context(response) is None
        assert response.json()["in_scope"] is False
        assert response.json()["error"] == error

    async def test_invalid_header_is_logged_without_content(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An invalid header is logged with its error code, never its content."""
        caplog.set_level(logging.WARNING, logger="soajs")
        raw = (
            b'{"tenant":{"id":"t"},"key":{"iKey":"SECRET-IKEY","eKey":"e"},'
            b'"application":{"package":"P"}}'
        )
        await get(starlette_app(), headers={"soajsinjectobj": raw})
        assert "invalid" in caplog.text
        assert "SECRET-IKEY" not in caplog.text

    async def test_size_limit_comes_from_settings(self) -> None:
        """max_inject_header_size from the settings bounds the header."""
        raw = latin1_header(MINIMAL)
        app = starlette_app(settings=Settings(max_inject_header_size=len(raw) - 1))
        response = await get(app, headers={"soajsinjectobj": raw})
        assert response.json()["error"] == "too_large"


class TestRejectPolicy:
    @pytest.mark.parametrize(("value", "status", "code"), REFUSED)
    async def test_bad_header_is_refused_in_gateway_format(
        self, value: str | None, status: int, code: int
    ) -> None:
        """Under reject, a request without a usable header gets the gateway's error body."""
        headers = {} if value is None else {"soajsinjectobj": value.encode("latin-1")}
        app = starlette_app(settings=Settings(header_policy="reject"))
        response = await get(app, headers=headers)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["result"] is False
        assert body["errors"]["codes"] == [code]
        assert body["errors"]["details"][0]["code"] == code
        assert body["errors"]["details"][0]["message"]

    async def test_valid_header_is_served(self) -> None:
        """Under reject, a valid header reaches the handler already parsed."""
        app = starlette_app(settings=Settings(header_policy="reject"))
        response = await get(app, headers={"soajsinjectobj": latin1_header(MINIMAL)})
        assert body_context(response)["tenant"]["code"] == "TTEN"

    async def test_heartbeat_is_answered_without_header(self) -> None:
        """The gateway's header-less health check gets 200 even under reject."""
        app = starlette_app(settings=Settings(header_policy="reject"))
        response = await get(app, "/heartbeat")
        assert response.status_code == 200
        assert response.json()["result"] is True

    async def test_public_service_is_never_refused(self) -> None:
        """trust_header=False ignores the header, so reject does not apply."""
        app = starlette_app(settings=Settings(header_policy="reject"), trust_header=False)
        response = await get(app, headers={"soajsinjectobj": latin1_header(MINIMAL)})
        assert body_context(response) is None


class TestTrust:
    @pytest.mark.parametrize(
        ("networks", "peer", "trusted"),
        [
            ("127.0.0.1", "127.0.0.1", True),
            ("10.0.0.0/8", "10.1.2.3", True),
            ("10.0.0.0/8", "::ffff:10.1.2.3", True),
            ("10.0.0.0/8,fd00::/8", "fd00::5", True),
            ("10.0.0.0/8", "127.0.0.1", False),
            ("10.0.0.0/8", "testclient", False),
            ("10.0.0.0/8", None, False),
            ("", "203.0.113.9", True),
        ],
    )
    async def test_trusted_gateways_allowlist(
        self, networks: str, peer: str | None, trusted: bool
    ) -> None:
        """Only peers inside trusted_gateways may send the header; others' is dropped."""
        app = with_client(starlette_app(settings=Settings(trusted_gateways=networks)), peer)
        response = await get(app, headers={"soajsinjectobj": latin1_header(MINIMAL)})
        assert (body_context(response) is not None) is trusted
        assert response.json()["peer"] == peer

    async def test_untrusted_peer_is_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        """A dropped header is logged with the peer, not the header."""
        caplog.set_level(logging.WARNING, logger="soajs")
        app = with_client(
            starlette_app(settings=Settings(trusted_gateways="10.0.0.0/8")), "192.0.2.7"
        )
        await get(app, headers={"soajsinjectobj": latin1_header(MINIMAL)})
        assert "192.0.2.7" in caplog.text
        assert "ekey-secret" not in caplog.text

    async def test_untrusted_peer_is_refused_under_reject(self) -> None:
        """Under reject, a header from an untrusted peer is refused with 403/132."""
        settings = Settings(trusted_gateways="10.0.0.0/8", header_policy="reject")
        app = with_client(starlette_app(settings=settings), "192.0.2.7")
        response = await get(app, headers={"soajsinjectobj": latin1_header(MINIMAL)})
        assert response.status_code == 403
        assert response.json()["errors"]["codes"] == [132]

    async def test_trust_is_decided_on_the_arriving_address(self) -> None:
        """An app that rewrites the client address afterwards cannot make a header trusted."""

        async def forge(request: Request) -> JSONResponse:
            request.scope["client"] = ("10.0.0.1", 1)
            return await dump(request)

        app = Starlette(routes=[Route("/", forge)])
        app.add_middleware(SoajsASGIMiddleware, settings=Settings(trusted_gateways="10.0.0.0/8"))
        response = await get(
            with_client(app, "192.0.2.7"), headers={"soajsinjectobj": latin1_header(MINIMAL)}
        )
        assert body_context(response) is None
        assert response.json()["peer"] == "192.0.2.7"

    async def test_trust_header_false_drops_the_header(self) -> None:
        """A public service (trust_header=False) never trusts the header."""
        app = starlette_app(trust_header=False)
        response = await get(app, headers={"soajsinjectobj": latin1_header(MINIMAL)})
        assert body_context(response) is None
        assert response.json()["error"] is None


class TestConcurrency:
    async def test_concurrent_requests_never_share_context(self) -> None:
        """200 concurrent requests with different headers each see only their own context."""
        app = starlette_app()
        transport = httpx.ASGITransport(app=app)
        codes = [f"T{index:03d}" for index in range(200)]
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:

            async def call(code: str) -> str:
                data = {**MINIMAL, "tenant": {"id": code, "code": code}}
                response = await client.get(
                    "/code", headers={"soajsinjectobj": latin1_header(data)}
                )
                return response.text

            seen = await asyncio.gather(*(call(code) for code in codes))
        assert seen == codes


class TestPassThrough:
    async def test_lifespan_scopes_pass_through(self) -> None:
        """Lifespan scopes reach the app as they are, with nothing made current."""
        seen: list[tuple[Any, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append((scope, current_request()))

        scope = {"type": "lifespan", "headers": [(b"soajsinjectobj", b"{}")]}
        await SoajsASGIMiddleware(app, settings=Settings())(scope, None, None)  # type: ignore[arg-type]
        assert seen == [({"type": "lifespan", "headers": [(b"soajsinjectobj", b"{}")]}, None)]
        assert type(seen[0][0]) is dict

    async def test_websocket_scopes_get_the_request_context(self) -> None:
        """A WebSocket scope gets its request context, current while the app runs."""
        seen: list[tuple[Any, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append((scope.get(REQUEST_KEY), current_request()))

        scope = {"type": "websocket", "path": "/ws", "headers": [(b"soajsinjectobj", b"{}")]}
        await SoajsASGIMiddleware(app, settings=Settings())(scope, None, None)  # type: ignore[arg-type]
        [(stored, current)] = seen
        assert isinstance(stored, RequestContext)
        assert current is stored
        assert current_request() is None

    async def test_heartbeat_post_reaches_the_app(self) -> None:
        """Only GET/HEAD /heartbeat are answered by the middleware."""
        transport = httpx.ASGITransport(app=starlette_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            response = await client.post("/heartbeat")
        assert response.status_code == 200
        assert "context" in response.json()

    async def test_heartbeat_can_be_disabled(self) -> None:
        """heartbeat=False leaves /heartbeat to the app."""
        response = await get(starlette_app(heartbeat=False), "/heartbeat")
        assert response.status_code == 405

    def test_seed_alias(self) -> None:
        """SOAJSMiddleware is the seed's name for the ASGI middleware."""
        assert SOAJSMiddleware is SoajsASGIMiddleware

    def test_settings_come_from_the_registry(self) -> None:
        """Without settings, the middleware uses the registry's."""

        class Registry:
            settings = Settings(header_policy="reject")
            service_name = "svc"

        middleware = SoajsASGIMiddleware(starlette_app(), registry=Registry())
        assert middleware.settings is Registry.settings
        assert middleware.guard.reject is True


class TestLazyEnviron:
    def test_alias_resolves_only_with_a_context(self) -> None:
        """The seed's key exists exactly when the request has a context, and is virtual."""
        alias = "soajs.context"
        with_context = SoajsEnviron({REQUEST_KEY: RequestContext(latin1_header(MINIMAL))})
        assert alias in with_context
        assert with_context[alias].tenant.code == "TTEN"
        assert with_context.get(alias) is with_context[alias]
        assert alias not in dict(with_context)
        without = SoajsEnviron({REQUEST_KEY: RequestContext()})
        assert alias not in without
        assert without.get(alias, "default") == "default"
        with pytest.raises(KeyError):
            without[alias]
        assert without.get("other", 1) == 1
        assert "other" not in without

    def test_stored_alias_wins(self) -> None:
        """A value stored under the seed's key by the app is returned as stored."""
        environ = SoajsEnviron({REQUEST_KEY: RequestContext(latin1_header(MINIMAL))})
        environ["soajs.context"] = "mine"
        assert environ.get("soajs.context") == "mine"
        assert environ["soajs.context"] == "mine"
        assert "soajs.context" in environ

"""The request pipeline: one admission step and one rejection table for every integration."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.test import Client as WerkzeugClient

from soajs import context, current, header_policy, heartbeat, request, settings
from soajs.asgi import SoajsASGIMiddleware
from soajs.fastapi import ContextRejected, SoajsContext, context_rejected_handler
from soajs.header_policy import NO_HEADER, UNTRUSTED_PEER, HeaderGuard, Rejection
from soajs.request import RequestContext
from soajs.settings import Settings
from soajs.testing import build_inject_header
from soajs.wsgi import SoajsWSGIMiddleware

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

HEADERS: list[bytes | None] = [
    None,
    b"{}",
    b"{not json",
    b"{" + b" " * 70000 + b"}",
    build_inject_header(),
]


def _ok(_: Request) -> PlainTextResponse:
    return PlainTextResponse("served")


def _wsgi_ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"served"]


def _needs_context(context: SoajsContext) -> str:
    return "served"


def _answers(settings_for: dict[str, Any], header: bytes | None) -> list[tuple[int, bytes]]:
    """The ASGI and WSGI middlewares under reject, and FastAPI's dependency under ignore."""
    headers = {} if header is None else {"soajsinjectobj": header.decode("latin-1")}
    rejecting = Settings(header_policy="reject", **settings_for)
    asgi = SoajsASGIMiddleware(Starlette(routes=[Route("/", _ok)]), settings=rejecting)
    fastapi = FastAPI()
    fastapi.add_middleware(SoajsASGIMiddleware, settings=Settings(**settings_for))
    fastapi.add_exception_handler(ContextRejected, context_rejected_handler)
    fastapi.add_api_route("/", _needs_context)
    answers = []
    for app in (asgi, fastapi):
        with TestClient(app) as client:
            response = client.get("/", headers=headers)
        answers.append((response.status_code, response.content))
    wsgi = WerkzeugClient(SoajsWSGIMiddleware(_wsgi_ok, settings=rejecting))
    reply = wsgi.get("/", headers=headers, environ_base={"REMOTE_ADDR": "testclient"})
    answers.append((reply.status_code, reply.data))
    return answers


class TestOneRejectionTable:
    @pytest.mark.parametrize("header", HEADERS, ids=["none", "empty", "bad", "large", "good"])
    def test_every_integration_answers_alike(self, header: bytes | None) -> None:
        """ASGI and WSGI under reject and the FastAPI dependency give the same status and body."""
        asgi, fastapi, wsgi = _answers({}, header)
        assert asgi[0] == fastapi[0] == wsgi[0]
        if asgi[0] != 200:
            assert asgi[1] == fastapi[1] == wsgi[1]

    def test_untrusted_peer_is_answered_alike(self) -> None:
        """A header from a peer outside the allowlist gets the one untrusted-peer answer."""
        header = build_inject_header()
        answers = _answers({"trusted_gateways": ["10.0.0.1"]}, header)
        assert answers == [(UNTRUSTED_PEER.status, UNTRUSTED_PEER.body())] * 3


class TestAdmission:
    def test_ignore_policy_admits_without_reading(self) -> None:
        """Under the default policy the request is admitted unread, even without a header."""
        guard = HeaderGuard(Settings())
        admitted = guard.admit_scope({"type": "http", "headers": []})
        assert isinstance(admitted, RequestContext)
        assert not admitted.parsed

    def test_reject_policy_refuses_with_the_table(self) -> None:
        """Under reject a request without a header is refused with the table's answer."""
        guard = HeaderGuard(Settings(header_policy="reject"))
        admitted = guard.admit_environ({"REMOTE_ADDR": "10.0.0.1"})
        assert isinstance(admitted, Rejection)
        assert admitted == NO_HEADER

    def test_context_is_parsed_once_on_first_read(self) -> None:
        """The context is worked out on the first read, then the same object every time."""
        captured = RequestContext(build_inject_header())
        assert not captured.parsed
        first = captured.context
        assert captured.parsed
        assert first is not None
        assert captured.context is first
        assert request.current_context() is None

    def test_error_first_reads_the_header(self) -> None:
        """Asking for the error before the context parses the header and gives the reason."""
        captured = RequestContext(b"{not json")
        assert captured.error is not None
        assert captured.error.code == "malformed"
        assert captured.context is None

    def test_authorization_is_captured_from_a_scope(self) -> None:
        """The ASGI capture keeps the Authorization header, which repr never shows."""
        scope = {"type": "http", "headers": [(b"authorization", b"Bearer scope-jwt")]}
        admitted = HeaderGuard(Settings()).admit_scope(scope)
        assert isinstance(admitted, RequestContext)
        assert admitted.authorization == "Bearer scope-jwt"
        assert "scope-jwt" not in repr(admitted)

    def test_authorization_is_captured_from_an_environ(self) -> None:
        """The WSGI (and Django META) capture keeps HTTP_AUTHORIZATION."""
        environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_AUTHORIZATION": "Bearer environ-jwt"}
        admitted = HeaderGuard(Settings()).admit_environ(environ)
        assert isinstance(admitted, RequestContext)
        assert admitted.authorization == "Bearer environ-jwt"
        assert "environ-jwt" not in repr(admitted)

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            (None, "from-header"),
            ("", "from-header"),
            ("page=2", "from-header"),
            ("access_token=", "from-header"),
            ("page=2&access_token=from-query", "from-query"),
        ],
    )
    @pytest.mark.parametrize("trusted_gateways", [[], ["10.0.0.1"]])
    def test_access_token_from_an_environ_query_then_header(
        self, query: str | None, expected: str, trusted_gateways: list[str]
    ) -> None:
        """A WSGI request's access_token is the query's, else the header's, whether the
        environ has no QUERY_STRING, an empty one or one without a token, read lazily or
        eagerly (trusted gateways listed)."""
        environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_ACCESS_TOKEN": "from-header"}
        if query is not None:
            environ["QUERY_STRING"] = query
        guard = HeaderGuard(Settings(trusted_gateways=trusted_gateways))
        admitted = guard.admit_environ(environ)
        assert isinstance(admitted, RequestContext)
        assert admitted.access_token == expected

    def test_authorization_is_a_constructor_keyword(self) -> None:
        """A RequestContext built in code takes the Authorization value as a keyword."""
        assert RequestContext(authorization="Bearer built").authorization == "Bearer built"
        assert RequestContext().authorization is None

    def test_the_historical_import_path_keeps_every_name(self) -> None:
        """soajs.context re-exports the very objects of the modules that own them."""
        owners = (request, current, header_policy, heartbeat, settings)
        for name in context.__all__:
            found = getattr(context, name)
            assert [owner for owner in owners if getattr(owner, name, None) is found], name

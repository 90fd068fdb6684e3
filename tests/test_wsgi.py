"""SoajsWSGIMiddleware with a real Flask app: its test client and a werkzeug server on 127.0.0.1."""

from __future__ import annotations

import gc
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import httpx
import pytest
from flask import Flask, jsonify, request
from header_cases import IGNORED, REFUSED
from helpers import WSGIThread
from inject_headers import HEADERS, MINIMAL, SECURE_URAC_JWT, header_text
from werkzeug.serving import make_server

from soajs import current_context, stream_with_context
from soajs.context import REQUEST_KEY, RequestContext, current_request
from soajs.inject import parse_inject_header
from soajs.middleware import get_soajs_context
from soajs.settings import Settings
from soajs.wsgi import SOAJSWSGIMiddleware, SoajsWSGIMiddleware

SEEN: list[RequestContext] = []


def flask_app(**options: Any) -> Flask:
    """A Flask app behind the middleware."""
    app = Flask(__name__)

    @app.route("/")
    def dump() -> Any:
        context = request.environ.get("soajs.context")
        rc = request.environ[REQUEST_KEY]
        return jsonify(
            context=None if context is None else context.model_dump(mode="json", by_alias=True),
            same_everywhere=context is current_context() is get_soajs_context(request),
            in_environ="soajs.context" in request.environ,
            error=None if rc.error is None else rc.error.code,
            access_token=rc.access_token,
            authorization=rc.authorization,
            traceparent=rc.traceparent,
            tracestate=rc.tracestate,
            peer=rc.peer,
        )

    @app.route("/untouched")
    def untouched() -> str:
        SEEN.append(request.environ[REQUEST_KEY])
        return "ok"

    @app.route("/code")
    def code() -> str:
        context = current_context()
        return context.tenant.code if context is not None else "-"

    @app.route("/heartbeat", methods=["POST"])
    def post_heartbeat() -> str:
        return "app"

    options.setdefault("settings", Settings())
    app.wsgi_app = SoajsWSGIMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


def get(app: Flask, path: str = "/", header: str | None = None, **kwargs: Any) -> Any:
    """One request through Flask's test client."""
    headers = kwargs.pop("headers", {})
    if header is not None:
        headers["soajsinjectobj"] = header
    return app.test_client().get(path, headers=headers, **kwargs)


def body_context(response: Any) -> Any:
    """The context the view reported."""
    assert response.status_code == 200, response.text
    return (
        response.json()["context"]
        if isinstance(response, httpx.Response)
        else (response.get_json()["context"])
    )


@pytest.fixture
def served() -> Iterator[str]:
    """A threaded werkzeug server on a free 127.0.0.1 port, serving the Flask app."""
    with WSGIThread(flask_app()) as server:
        yield server.url


class TestFixtureHeaders:
    @pytest.mark.parametrize("name", sorted(HEADERS))
    def test_every_fixture_header_reaches_the_view(self, name: str) -> None:
        """Every fixture header gives the view the same context as parsing it directly."""
        text = HEADERS[name]
        response = get(flask_app(), header=text)
        expected = parse_inject_header(text).model_dump(mode="json", by_alias=True)
        assert body_context(response) == expected
        assert response.get_json()["same_everywhere"] is True
        assert response.get_json()["in_environ"] is True

    def test_latin1_tenant_name(self) -> None:
        """A Latin-1 character in the tenant name arrives as 'é', not a 500."""
        response = get(flask_app(), header=header_text(MINIMAL))
        assert body_context(response)["tenant"]["name"] == "Café"

    def test_latin1_bytes_through_a_real_server(self, served: str) -> None:
        """The byte 0xE9 sent over HTTP reads as 'é' through werkzeug's server."""
        raw = header_text(MINIMAL).encode("latin-1")
        assert b"Caf\xe9" in raw
        response = httpx.get(served + "/", headers={"soajsinjectobj": raw})
        assert body_context(response)["tenant"]["name"] == "Café"

    def test_request_values_are_captured(self) -> None:
        """access_token (query first), Authorization, traceparent, tracestate and REMOTE_ADDR are
        captured."""
        headers = {
            "access_token": "from-header",
            "Authorization": "Bearer user-jwt",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "congo=t61rcWkgMzE",
        }
        app = flask_app()
        data = get(app, "/?access_token=from-query", HEADERS[SECURE_URAC_JWT], headers=headers)
        data = data.get_json()
        assert data["access_token"] == "from-query"
        assert data["authorization"] == "Bearer user-jwt"
        assert data["traceparent"].startswith("00-0af7651916cd43dd")
        assert data["tracestate"] == "congo=t61rcWkgMzE"
        assert data["peer"] == "127.0.0.1"
        response = get(app, headers={"access_token": "from-header"})
        assert response.get_json()["access_token"] == "from-header"
        assert response.get_json()["authorization"] is None


class TestLaziness:
    def test_unread_header_is_never_parsed(self) -> None:
        """A view that never reads the context leaves the header unparsed."""
        SEEN.clear()
        assert get(flask_app(), "/untouched", "{bad").text == "ok"
        [captured] = SEEN
        assert captured.parsed is False
        assert captured.context is None
        assert captured.error is not None

    def test_current_context_is_reset_after_the_request(self) -> None:
        """After the request, nothing is current any more."""
        assert get(flask_app(), "/code", header_text(MINIMAL)).text == "TTEN"
        assert current_request() is None
        assert current_context() is None


class TestIgnorePolicy:
    @pytest.mark.parametrize(("value", "error"), IGNORED)
    def test_bad_header_gives_no_context(self, value: str | None, error: str | None) -> None:
        """Missing, malformed, invalid or oversized headers pass through without context."""
        response = get(flask_app(), header=value)
        assert body_context(response) is None
        assert response.get_json()["in_environ"] is False
        assert response.get_json()["error"] == error

    def test_invalid_header_is_logged_without_content(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An invalid header is logged with its error code, never its content."""
        caplog.set_level(logging.WARNING, logger="soajs")
        get(
            flask_app(),
            header='{"tenant":{"id":"t"},"key":{"iKey":"SECRET-IKEY","eKey":"e"},"application":{"package":"P"}}',
        )
        assert "invalid" in caplog.text
        assert "SECRET-IKEY" not in caplog.text


class TestRejectPolicy:
    @pytest.mark.parametrize(("value", "status", "code"), REFUSED)
    def test_bad_header_is_refused_in_gateway_format(
        self, value: str | None, status: int, code: int
    ) -> None:
        """Under reject, a request without a usable header gets the gateway's error body."""
        response = get(flask_app(settings=Settings(header_policy="reject")), header=value)
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        body = response.get_json()
        assert body["result"] is False
        assert body["errors"]["codes"] == [code]
        assert body["errors"]["details"][0]["code"] == code
        assert body["errors"]["details"][0]["message"]

    def test_valid_header_is_served(self) -> None:
        """Under reject, a valid header reaches the view."""
        app = flask_app(settings=Settings(header_policy="reject"))
        assert body_context(get(app, header=header_text(MINIMAL)))["tenant"]["code"] == "TTEN"

    def test_heartbeat_is_answered_without_header(self) -> None:
        """The gateway's header-less health check gets 200 even under reject."""
        response = get(flask_app(settings=Settings(header_policy="reject")), "/heartbeat")
        assert response.status_code == 200
        assert response.get_json()["result"] is True

    def test_untrusted_peer_is_refused(self) -> None:
        """Under reject, a header from an untrusted peer is refused with 403/132."""
        settings = Settings(trusted_gateways="10.0.0.0/8", header_policy="reject")
        response = get(
            flask_app(settings=settings),
            header=header_text(MINIMAL),
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        )
        assert response.status_code == 403
        assert response.get_json()["errors"]["codes"] == [132]


class TestTrust:
    @pytest.mark.parametrize(
        ("networks", "peer", "trusted"),
        [
            ("127.0.0.1", "127.0.0.1", True),
            ("10.0.0.0/8", "10.1.2.3", True),
            ("10.0.0.0/8", "127.0.0.1", False),
            ("10.0.0.0/8", "", False),
            ("", "203.0.113.9", True),
        ],
    )
    def test_trusted_gateways_allowlist(self, networks: str, peer: str, trusted: bool) -> None:
        """Only peers inside trusted_gateways may send the header; others' is dropped."""
        app = flask_app(settings=Settings(trusted_gateways=networks))
        response = get(app, header=header_text(MINIMAL), environ_base={"REMOTE_ADDR": peer})
        assert (body_context(response) is not None) is trusted

    def test_trust_is_decided_on_the_arriving_address(self) -> None:
        """A view (or proxy fix) that rewrites REMOTE_ADDR later cannot make a header trusted."""
        app = Flask(__name__)

        @app.route("/")
        def forge() -> Any:
            request.environ["REMOTE_ADDR"] = "10.0.0.1"
            return jsonify(context=current_context() is not None, peer=current_request().peer)

        settings = Settings(trusted_gateways="10.0.0.0/8")
        app.wsgi_app = SoajsWSGIMiddleware(app.wsgi_app, settings=settings)  # type: ignore[method-assign]
        response = get(app, header=header_text(MINIMAL), environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert response.get_json() == {"context": False, "peer": "192.0.2.7"}

    def test_trust_header_false_drops_the_header(self) -> None:
        """A public service (trust_header=False) never trusts the header."""
        response = get(flask_app(trust_header=False), header=header_text(MINIMAL))
        assert body_context(response) is None
        assert response.get_json()["error"] is None


class TestConcurrency:
    def test_threads_never_share_context(self, served: str) -> None:
        """8 threads x 50 requests with different headers each see only their own context."""
        codes = [f"T{index:03d}" for index in range(400)]

        with httpx.Client(base_url=served) as client:

            def call(code: str) -> str:
                data = {**MINIMAL, "tenant": {"id": code, "code": code}}
                return client.get("/code", headers={"soajsinjectobj": header_text(data)}).text

            with ThreadPoolExecutor(max_workers=8) as pool:
                seen = list(pool.map(call, codes))
        assert seen == codes


class TestPassThrough:
    def test_heartbeat_post_reaches_the_app(self) -> None:
        """Only GET/HEAD /heartbeat are answered by the middleware."""
        assert flask_app().test_client().post("/heartbeat").text == "app"

    def test_heartbeat_can_be_disabled(self) -> None:
        """heartbeat=False leaves /heartbeat to the app."""
        assert get(flask_app(heartbeat=False), "/heartbeat").status_code == 405

    def test_seed_signature(self) -> None:
        """The seed passes the registry positionally; its settings are used."""

        class Registry:
            settings = Settings(header_policy="reject")
            service_name = "svc"

        app = Flask(__name__)
        middleware = SOAJSWSGIMiddleware(app.wsgi_app, Registry())
        assert SOAJSWSGIMiddleware is SoajsWSGIMiddleware
        assert middleware.settings is Registry.settings
        assert middleware.guard.reject is True


class TestPlainEnviron:
    def test_server_environ_is_passed_as_is(self) -> None:
        """environ_context=False hands the app the server's own dict, with the request in it."""
        seen: list[Any] = []

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            context = current_context()
            seen.append((environ, get_soajs_context(environ), context))
            start_response("200 OK", [])
            return [b"ok"]

        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "HTTP_SOAJSINJECTOBJ": header_text(MINIMAL),
        }
        SoajsWSGIMiddleware(app, environ_context=False)(environ, lambda *a: None)
        [(given, via_environ, current)] = seen
        assert given is environ
        assert type(given) is dict
        assert "soajs.context" not in given
        assert current is not None
        assert current.tenant.code == "TTEN"
        assert via_environ is current

    def test_passes_wsgiref_validation(self) -> None:
        """With environ_context=False the middleware satisfies wsgiref.validate on both sides."""
        from wsgiref.simple_server import demo_app
        from wsgiref.util import setup_testing_defaults
        from wsgiref.validate import validator

        environ: dict[str, Any] = {"HTTP_SOAJSINJECTOBJ": header_text(MINIMAL)}
        setup_testing_defaults(environ)
        statuses: list[str] = []
        app = validator(SoajsWSGIMiddleware(validator(demo_app), environ_context=False))
        with warnings.catch_warnings():
            # demo_app's own body is not closed by this direct call; that is wsgiref's sample.
            warnings.simplefilter("ignore")
            body = app(environ, lambda status, headers, *exc: statuses.append(status))
            chunks = list(body)
            body.close()
        assert statuses == ["200 OK"]
        assert b"Hello world!" in b"".join(chunks)

    def test_flask_view_reads_the_context(self) -> None:
        """A Flask app behind the plain-environ middleware still reads the context."""
        app = Flask(__name__)

        @app.route("/")
        def view() -> Any:
            context = get_soajs_context(request)
            return jsonify(
                tenant=context.tenant.code if context else None,
                current=current_context() is context,
                seed_key="soajs.context" in request.environ,
            )

        app.wsgi_app = SoajsWSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, settings=Settings(), environ_context=False
        )
        response = get(app, header=header_text(MINIMAL))
        assert response.get_json() == {"tenant": "TTEN", "current": True, "seed_key": False}


class TestStreamedBody:
    @staticmethod
    def streaming_app(seen: list[RequestContext | None], *, wrap: bool) -> Any:
        """A WSGI app whose generator body records the current request at each chunk."""

        def app(environ: dict[str, object], start_response: Any) -> Any:
            start_response("200 OK", [("Content-Type", "text/plain")])

            def body() -> Iterator[bytes]:
                for _ in range(2):
                    seen.append(current_request())
                    context = current_context()
                    yield (context.tenant.code if context else "none").encode()

            return stream_with_context(body()) if wrap else body()

        return app

    ENVIRON: ClassVar[dict[str, str]] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/stream",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_SOAJSINJECTOBJ": header_text(MINIMAL),
    }

    def test_wrapped_generator_body_sees_the_context(self) -> None:
        """A body wrapped in stream_with_context reads current_context() at every chunk."""
        seen: list[RequestContext | None] = []
        middleware = SoajsWSGIMiddleware(self.streaming_app(seen, wrap=True))
        result = middleware(dict(self.ENVIRON), lambda *a: None)
        assert current_request() is None
        assert list(result) == [b"TTEN", b"TTEN"]
        assert seen[0] is not None
        assert seen[0] is seen[1]
        assert current_request() is None

    def test_unwrapped_generator_body_runs_after_the_request(self) -> None:
        """Without the wrapper a generator body runs after the request: no context, no error."""
        seen: list[RequestContext | None] = []
        middleware = SoajsWSGIMiddleware(self.streaming_app(seen, wrap=False))
        assert list(middleware(dict(self.ENVIRON), lambda *a: None)) == [b"none", b"none"]
        assert seen == [None, None]

    def test_nothing_stays_current_between_chunks_or_after_a_partial_read(self) -> None:
        """The wrapper sets the request around each chunk only, even when iteration stops."""
        seen: list[RequestContext | None] = []
        middleware = SoajsWSGIMiddleware(self.streaming_app(seen, wrap=True))
        chunks = iter(middleware(dict(self.ENVIRON), lambda *a: None))
        assert next(chunks) == b"TTEN"
        assert current_request() is None
        assert seen[0] is not None

    def test_closing_the_wrapped_body_closes_the_generator_in_context(self) -> None:
        """A server closing a half-sent body runs the generator's clean-up with the request."""
        cleaned: list[RequestContext | None] = []

        def app(environ: dict[str, object], start_response: Any) -> Any:
            start_response("200 OK", [])

            def body() -> Iterator[bytes]:
                try:
                    yield b"first"
                    yield b"second"
                finally:
                    cleaned.append(current_request())

            return stream_with_context(body())

        result = SoajsWSGIMiddleware(app)(dict(self.ENVIRON), lambda *a: None)
        chunks = iter(result)
        assert next(chunks) == b"first"
        result.close()
        assert len(cleaned) == 1
        assert cleaned[0] is not None
        assert cleaned[0].context is not None
        assert current_request() is None

    def test_wrapped_body_served_by_werkzeug_in_a_thread(self) -> None:
        """Through a real threaded server, the wrapped body streams the caller's tenant."""
        seen: list[RequestContext | None] = []
        app = SoajsWSGIMiddleware(self.streaming_app(seen, wrap=True))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            response = httpx.get(
                f"http://127.0.0.1:{server.server_port}/stream",
                headers={"soajsinjectobj": header_text(MINIMAL).encode("latin-1")},
            )
        finally:
            server.shutdown()
            thread.join(timeout=10)
        assert response.text == "TTENTTEN"

    def test_app_error_resets_the_request(self) -> None:
        """An app that raises leaves nothing current."""

        def app(environ: dict[str, object], start_response: Any) -> Any:
            raise RuntimeError("boom")

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": ""}
        with pytest.raises(RuntimeError, match="boom"):
            SoajsWSGIMiddleware(app)(environ, lambda *a: None)
        assert current_request() is None

    def test_body_is_returned_as_is(self) -> None:
        """The app's body is returned unwrapped, so the common path stays free."""
        body = [b"ok"]

        def app(environ: dict[str, object], start_response: Any) -> Any:
            start_response("200 OK", [])
            return body

        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": ""}
        assert SoajsWSGIMiddleware(app)(environ, lambda *a: None) is body


class TestNoReferenceCycles:
    @staticmethod
    def garbage_after(run: Callable[[], None]) -> int:
        """How many unreachable objects the collector finds after ``run()`` and nothing else."""
        gc.collect()
        gc.disable()
        try:
            run()
            return gc.collect()
        finally:
            gc.enable()

    @pytest.mark.parametrize("environ_context", [True, False])
    @pytest.mark.parametrize("reads", [True, False])
    def test_wsgi_request_leaves_no_cycle(self, environ_context: bool, reads: bool) -> None:
        """A request through the WSGI middleware is freed by reference counting alone."""

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            if reads:
                assert current_context() is not None
            start_response("200 OK", [])
            return [b"ok"]

        middleware = SoajsWSGIMiddleware(app, settings=Settings(), environ_context=environ_context)

        def run() -> None:
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/",
                "QUERY_STRING": "",
                "HTTP_SOAJSINJECTOBJ": header_text(MINIMAL),
            }
            assert middleware(environ, lambda *a: None) == [b"ok"]

        assert self.garbage_after(run) == 0

    @pytest.mark.parametrize("reads", [True, False])
    def test_asgi_request_leaves_no_cycle(self, reads: bool) -> None:
        """A request through the ASGI middleware is freed by reference counting alone."""
        from soajs.asgi import SoajsASGIMiddleware

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if reads:
                assert current_context() is not None

        middleware = SoajsASGIMiddleware(app, settings=Settings())

        def run() -> None:
            scope = {
                "type": "http",
                "method": "GET",
                "path": "/",
                "query_string": b"",
                "headers": [(b"soajsinjectobj", header_text(MINIMAL).encode("latin-1"))],
                "client": ("127.0.0.1", 5000),
            }
            call = middleware(scope, None, None)  # type: ignore[arg-type]
            with pytest.raises(StopIteration):
                call.send(None)

        assert self.garbage_after(run) == 0

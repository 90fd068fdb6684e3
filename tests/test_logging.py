"""Request-aware logging: every record carries the current request's fields, and only its own."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import logging.config
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from flask import Flask
from inject_headers import MINIMAL, header_text
from pytest_httpserver import HTTPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from soajs import ServiceConnector
from soajs.asgi import SoajsASGIMiddleware
from soajs.context import RequestContext, reset_current_request, set_current_request
from soajs.errors import SoajsError
from soajs.inject import parse_inject_header
from soajs.log import (
    LOG_FIELDS,
    SoajsRequestFilter,
    add_request_fields,
    install_request_logging,
    request_fields,
)
from soajs.settings import Settings
from soajs.wsgi import SoajsWSGIMiddleware

SERVICE = "orders"
TRACE_ID = "4bf92f3577b34a36a5b5e2a1c4b1e0f1"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
CONCURRENT = 12
FORMAT = "%(soajs_tenant)s %(soajs_user)s %(soajs_request_id)s %(message)s"
GENERATED = re.compile(r"[0-9a-f]{32}")
app_logger = logging.getLogger("tests.soajs_log.app")


class Captured(logging.Handler):
    """Keeps every record it is given, from any thread."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep ``record`` (Handler.handle holds the handler's own lock around this)."""
        self.records.append(record)

    def fields(self, message: str) -> list[dict[str, Any]]:
        """The fields of every record whose message is ``message``."""
        return [
            {name: getattr(record, name) for name in LOG_FIELDS}
            for record in self.records
            if record.getMessage().startswith(message)
        ]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """A handler on the app's logger, with the request filter installed on it."""
    handler = Captured()
    handler.setFormatter(logging.Formatter(FORMAT))
    install_request_logging(handler, service=SERVICE)
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    yield handler
    app_logger.removeHandler(handler)


def tenant_header(code: str) -> str:
    """A gateway header for tenant ``code`` with a logged-in user and keys named after it."""
    data = {
        **MINIMAL,
        "tenant": {"id": f"id-{code}", "code": code, "name": code},
        "key": {"config": {}, "iKey": f"ikey-{code}", "eKey": f"ekey-{code}"},
        "urac": {"_id": f"uid-{code}", "username": f"user-{code}"},
    }
    return header_text(data)


def tenant_headers(code: str) -> dict[str, str]:
    """Every header a gateway call for tenant ``code`` carries, secrets included."""
    return {
        "soajsinjectobj": tenant_header(code),
        "access_token": f"tok-{code}",
        "authorization": f"Bearer jwt-{code}",
        "x-request-id": f"req-{code}",
    }


def expected(code: str) -> dict[str, Any]:
    """The fields a record logged while serving tenant ``code`` must carry."""
    return {
        "soajs_tenant": code,
        "soajs_tenant_id": f"id-{code}",
        "soajs_user_id": f"uid-{code}",
        "soajs_user": f"user-{code}",
        "soajs_service": SERVICE,
        "soajs_request_id": f"req-{code}",
    }


def assert_no_secret(handler: Captured, code: str) -> None:
    """No record of ``handler`` shows a key, token or password of tenant ``code``."""
    secrets = (f"ikey-{code}", f"ekey-{code}", f"tok-{code}", f"jwt-{code}")
    for record in handler.records:
        line = handler.format(record) + repr(record.__dict__)
        assert not [secret for secret in secrets if secret in line]


def flask_app() -> Flask:
    """A Flask app behind the WSGI middleware that logs in the view and in a copied context."""
    app = Flask(__name__)

    @app.route("/")
    def view() -> str:
        app_logger.info("in view")
        context = contextvars.copy_context()
        with ThreadPoolExecutor(1) as pool:
            pool.submit(context.run, app_logger.info, "in thread").result()
        return "ok"

    app.wsgi_app = SoajsWSGIMiddleware(app.wsgi_app, settings=Settings())  # type: ignore[method-assign]
    return app


async def async_view(request: Request) -> PlainTextResponse:
    """Log before and after yielding to the other tasks, and from a worker thread."""
    app_logger.info("in async view")
    await asyncio.sleep(0)
    await asyncio.to_thread(app_logger.info, "in to_thread")
    app_logger.info("after await")
    return PlainTextResponse("ok")


def sync_view(request: Request) -> PlainTextResponse:
    """A sync endpoint, run by Starlette in its thread pool."""
    app_logger.info("in sync view")
    return PlainTextResponse("ok")


ASGI_APP = SoajsASGIMiddleware(
    Starlette(routes=[Route("/async", async_view), Route("/sync", sync_view)]), settings=Settings()
)


class TestOutsideARequest:
    """Nothing of a request is logged when no request is served."""

    def test_fields_are_none(self, captured: Captured) -> None:
        """A record logged outside a request has every field, each None, and formats."""
        app_logger.info("outside")
        [fields] = captured.fields("outside")
        assert fields == dict.fromkeys(LOG_FIELDS)
        assert captured.format(captured.records[0]) == "None None None outside"

    def test_structlog_processor_adds_nothing(self) -> None:
        """The structlog processor leaves an event untouched outside a request."""
        assert add_request_fields(None, "info", {"event": "x"}) == {"event": "x"}


class TestThreads:
    """Concurrent WSGI requests from different tenants, each in its own thread."""

    def test_each_record_carries_its_own_request(self, captured: Captured) -> None:
        """Records from the view and from a thread run in its context name only their tenant."""
        app = flask_app()

        def call(code: str) -> int:
            return app.test_client().get("/", headers=tenant_headers(code)).status_code

        codes = [f"T{index}" for index in range(CONCURRENT)]
        with ThreadPoolExecutor(CONCURRENT) as pool:
            assert list(pool.map(call, codes)) == [200] * CONCURRENT
        for code in codes:
            wanted = expected(code)
            in_view = [f for f in captured.fields("in view") if f["soajs_tenant"] == code]
            in_thread = [f for f in captured.fields("in thread") if f["soajs_tenant"] == code]
            assert in_view == [wanted]
            assert in_thread == [wanted]
            assert_no_secret(captured, code)
        assert len(captured.records) == 2 * CONCURRENT


class TestAsyncio:
    """Concurrent ASGI requests from different tenants, each in its own asyncio task."""

    def test_each_record_carries_its_own_request(self, captured: Captured) -> None:
        """Records from async and sync endpoints and asyncio.to_thread keep their request."""
        codes = [f"A{index}" for index in range(CONCURRENT)]

        async def main() -> list[int]:
            transport = httpx.ASGITransport(app=ASGI_APP)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                calls = [
                    client.get(path, headers=tenant_headers(code))
                    for code in codes
                    for path in ("/async", "/sync")
                ]
                return [response.status_code for response in await asyncio.gather(*calls)]

        assert asyncio.run(main()) == [200] * 2 * CONCURRENT
        for code in codes:
            for message in ("in async view", "in to_thread", "after await", "in sync view"):
                mine = [f for f in captured.fields(message) if f["soajs_tenant"] == code]
                assert mine == [expected(code)]
            assert_no_secret(captured, code)
        assert len(captured.records) == 4 * CONCURRENT


def served(request: RequestContext) -> dict[str, Any]:
    """The fields logged with ``request`` current."""
    token = set_current_request(request)
    try:
        return request_fields(SERVICE)
    finally:
        reset_current_request(token)


class TestRequestId:
    """The request id: traceparent's trace id, else x-request-id, else generated once."""

    def test_traceparent_wins(self) -> None:
        """A valid traceparent gives its trace id, even with an x-request-id."""
        request = RequestContext(traceparent=TRACEPARENT, x_request_id="mine")
        assert served(request)["soajs_request_id"] == TRACE_ID

    def test_x_request_id(self) -> None:
        """Without a traceparent, the incoming x-request-id is the id."""
        assert RequestContext(x_request_id="abc-123").request_id == "abc-123"

    @pytest.mark.parametrize(
        ("traceparent", "x_request_id"),
        [
            (None, None),
            ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),
            ("garbage", "bad\r\nid"),
            (None, "x" * 129),
            (None, "has space"),
        ],
    )
    def test_generated(self, traceparent: str | None, x_request_id: str | None) -> None:
        """No usable id gives a generated one, the same on every read of the request."""
        request = RequestContext(traceparent=traceparent, x_request_id=x_request_id)
        first = request.request_id
        assert GENERATED.fullmatch(first)
        assert request.request_id == first
        assert RequestContext().request_id != first

    def test_read_from_the_environ(self) -> None:
        """The WSGI middleware captures x-request-id from HTTP_X_REQUEST_ID."""
        seen: list[str] = []

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            seen.append(environ["soajs.request"].request_id)
            start_response("200 OK", [])
            return [b""]

        flask = Flask(__name__)
        flask.wsgi_app = SoajsWSGIMiddleware(app, settings=Settings())  # type: ignore[method-assign]
        flask.test_client().get("/", headers={"x-request-id": "from-header"})
        assert seen == ["from-header"]

    def test_no_context_still_has_an_id(self) -> None:
        """A request without a SOAJS header logs its id and service, and no tenant."""
        fields = served(RequestContext(x_request_id="r1"))
        assert fields == {
            **dict.fromkeys(LOG_FIELDS),
            "soajs_service": SERVICE,
            "soajs_request_id": "r1",
        }


class TestConnector:
    """The request id goes with every call the request makes, to the resolved origin only."""

    def test_forwarded(self) -> None:
        """A gateway call carries the request's id as x-request-id."""
        data = {**MINIMAL, "awareness": {"host": "gw", "port": 4000}}
        context = parse_inject_header(header_text(data))
        token = set_current_request(RequestContext(x_request_id="req-C1"))
        try:
            headers = ServiceConnector(context).connect("urac").headers
        finally:
            reset_current_request(token)
        assert headers["x-request-id"] == "req-C1"

    def test_dropped_on_a_cross_origin_redirect(self, httpserver: HTTPServer) -> None:
        """A redirect to another origin does not carry the request id."""
        other = HTTPServer(host="127.0.0.1", port=0)
        other.start()
        try:
            other.expect_request("/there").respond_with_data("ok")
            httpserver.expect_request("/urac/here").respond_with_data(
                "", status=302, headers={"Location": other.url_for("/there")}
            )
            data = {**MINIMAL, "awareness": {"host": httpserver.host, "port": httpserver.port}}
            context = parse_inject_header(header_text(data))
            token = set_current_request(RequestContext(x_request_id="req-R"))
            try:
                connector = ServiceConnector(context)
                with connector.client("urac", follow_redirects=True) as client:
                    assert client.get("/here").text == "ok"
            finally:
                reset_current_request(token)
            [(first, _)] = httpserver.log
            [(second, _)] = other.log
            assert first.headers.get("x-request-id") == "req-R"
            assert second.headers.get("x-request-id") is None
        finally:
            other.clear()
            other.stop()


class TestInstalling:
    """Ways to install the filter."""

    def test_dict_config(self) -> None:
        """dictConfig builds the filter from its dotted path, with the service name."""
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "filters": {"soajs": {"()": "soajs.log.SoajsRequestFilter", "service": "svc"}},
                "handlers": {"keep": {"class": "logging.NullHandler", "filters": ["soajs"]}},
                "loggers": {"tests.soajs_log.dict": {"handlers": ["keep"]}},
            }
        )
        handler = logging.getLogger("tests.soajs_log.dict").handlers[0]
        [request_filter] = handler.filters
        assert isinstance(request_filter, SoajsRequestFilter)
        assert request_filter.service == "svc"
        logging.getLogger("tests.soajs_log.dict").handlers.clear()

    def test_installed_once(self) -> None:
        """Installing twice on the same handler adds one filter."""
        handler = Captured()
        install_request_logging(handler, service=SERVICE)
        install_request_logging(handler, service=SERVICE)
        assert len(handler.filters) == 1

    def test_root_without_handler_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a target and with no root handler, the error says to configure logging."""
        monkeypatch.setattr(logging.getLogger(), "handlers", [])
        with pytest.raises(SoajsError, match="configure logging first"):
            install_request_logging(service=SERVICE)

    def test_root_handlers(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a target the filter goes on every root handler."""
        handlers = [Captured(), Captured()]
        monkeypatch.setattr(logging.getLogger(), "handlers", handlers)
        request_filter = install_request_logging(service=SERVICE)
        assert [handler.filters for handler in handlers] == [[request_filter]] * 2

    def test_a_record_set_elsewhere_is_kept(self) -> None:
        """A record that already carries the fields (from a QueueHandler) keeps them."""
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record.__dict__.update(expected("Q"))
        assert SoajsRequestFilter(SERVICE).filter(record)
        assert record.soajs_tenant == "Q"

    def test_a_warning_while_reading_the_context(self, captured: Captured) -> None:
        """The header's own warning, logged while the filter reads it, gets the id, no tenant."""
        soajs_logger = logging.getLogger("soajs.context")
        soajs_logger.addHandler(captured)
        try:
            served(RequestContext("{not json", x_request_id="bad-1"))
        finally:
            soajs_logger.removeHandler(captured)
        [fields] = captured.fields("ignored the soajsinjectobj header")
        assert fields == {
            **dict.fromkeys(LOG_FIELDS),
            "soajs_service": SERVICE,
            "soajs_request_id": "bad-1",
        }


class TestStructlog:
    """structlog gets the same fields through a processor."""

    def test_processor(self) -> None:
        """Inside a request the processor adds the fields, keeping values bound by the caller."""
        structlog = pytest.importorskip("structlog")
        events: list[Any] = []
        structlog.configure(
            processors=[add_request_fields, lambda _l, _m, event: events.append(event) or ""],
            logger_factory=structlog.ReturnLoggerFactory(),
        )
        token = set_current_request(RequestContext(tenant_header("S1"), x_request_id="req-S1"))
        try:
            structlog.get_logger().info("hello", soajs_user="bound")
        finally:
            reset_current_request(token)
            structlog.reset_defaults()
        assert events[0]["soajs_tenant"] == "S1"
        assert events[0]["soajs_user"] == "bound"

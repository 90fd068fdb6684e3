"""RegistryClient against a real HTTP server on 127.0.0.1 playing the maintenance API."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixture_paths import FIXTURES
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from soajs.errors import GatewayUnavailable, RegistryRejected, RegistryReplyMalformed
from soajs.registry import RegistryClient

CAPTURED = FIXTURES / "captured"
REGISTRY_FILES = sorted(FIXTURES.glob("*/getRegistry*.json"))
KEY_PASSWORD = "soajs key lal massa"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def base_url(server: HTTPServer) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def client(maintenance_server: HTTPServer) -> Any:
    with RegistryClient(base_url(maintenance_server), timeout=2.0) as registry_client:
        yield registry_client


def hello_reply() -> dict[str, Any]:
    return load(CAPTURED / "getRegistry.dev.hello.after-register.response.json")


def data_port_reply() -> dict[str, Any]:
    """What a real gateway's data port answers for a path naming no service (error 130)."""
    body: dict[str, Any] = load(CAPTURED / "gateway-responses.json")["unknown-service.get"]["body"]
    return body


class TestFetch:
    @pytest.mark.parametrize("path", REGISTRY_FILES, ids=lambda path: path.name)
    def test_every_recorded_reply_loads(
        self, maintenance_server: HTTPServer, client: RegistryClient, path: Path
    ) -> None:
        """Each recorded /getRegistry reply comes back as a Registry with its raw data."""
        reply = load(path)
        maintenance_server.expect_request("/getRegistry", method="GET").respond_with_json(reply)
        registry = client.fetch("dev", "hello")
        assert registry.environment == "dev"
        assert registry.raw == reply["data"]

    def test_query_is_env_service_name_and_type_service(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """The query carries env, serviceName and type=service, URL-encoded."""
        maintenance_server.expect_oneshot_request(
            "/getRegistry",
            method="GET",
            query_string={"env": "dev", "serviceName": "a b&type=mdaemon", "type": "service"},
        ).respond_with_json(hello_reply())
        assert client.fetch("dev", "a b&type=mdaemon").environment == "dev"
        maintenance_server.check_assertions()
        request, _ = maintenance_server.log[0]
        assert request.args.getlist("type") == ["service"]

    def test_result_false_is_rejected(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """result: false raises RegistryRejected naming the URL."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(
            {"result": False, "ts": 1, "service": {"route": "/getRegistry"}}
        )
        with pytest.raises(RegistryRejected, match="result: false") as caught:
            client.fetch("qa", "hello")
        assert caught.value.url == f"{base_url(maintenance_server)}/getRegistry"
        assert base_url(maintenance_server) in str(caught.value)

    def test_result_true_without_data_is_malformed(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """The heartbeat-style answer of an unknown path (result: true, no data) is refused."""
        heartbeat = load(CAPTURED / "maintenance.heartbeat.response.json")
        assert "data" not in heartbeat
        maintenance_server.expect_request("/getRegistry").respond_with_json(heartbeat)
        with pytest.raises(RegistryReplyMalformed, match="maintenance port") as caught:
            client.fetch("dev", "hello")
        assert caught.value.url is not None
        assert caught.value.url.endswith("/getRegistry")

    def test_data_without_environment_is_malformed(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """A data object without environment is not a registry."""
        reply = hello_reply()
        del reply["data"]["environment"]
        maintenance_server.expect_request("/getRegistry").respond_with_json(reply)
        with pytest.raises(RegistryReplyMalformed, match="environment"):
            client.fetch("dev", "hello")

    def test_data_the_models_refuse_is_malformed_without_echoing_it(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """A shape the models refuse names the field but never echoes the secrets received."""
        reply = hello_reply()
        reply["data"]["serviceConfig"]["ports"] = {"controller": KEY_PASSWORD}
        reply["data"]["services"] = "not a map"
        maintenance_server.expect_request("/getRegistry").respond_with_json(reply)
        with pytest.raises(RegistryReplyMalformed) as caught:
            client.fetch("dev", "hello")
        message = str(caught.value)
        assert "serviceConfig.ports.controller" in message
        assert "services" in message
        assert KEY_PASSWORD not in message
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            ("<html>not json</html>", "text/html"),
            ('{"result": true, "data": ', "application/json"),
            (b"\xff\xfe\x00garbage", "application/json"),
        ],
    )
    def test_garbage_body_is_malformed(
        self,
        maintenance_server: HTTPServer,
        client: RegistryClient,
        body: str | bytes,
        content_type: str,
    ) -> None:
        """A body that is not JSON raises RegistryReplyMalformed."""
        maintenance_server.expect_request("/getRegistry").respond_with_data(
            body, content_type=content_type
        )
        with pytest.raises(RegistryReplyMalformed, match="not JSON"):
            client.fetch("dev", "hello")

    @pytest.mark.parametrize("reply", [{}, {"result": "false"}, {"data": {"environment": "dev"}}])
    def test_reply_without_a_boolean_result_is_malformed(
        self, maintenance_server: HTTPServer, client: RegistryClient, reply: dict[str, Any]
    ) -> None:
        """A JSON object without result: true/false is not the gateway's reply."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(reply)
        maintenance_server.expect_request("/register").respond_with_json(reply)
        with pytest.raises(RegistryReplyMalformed, match="boolean result"):
            client.fetch("dev", "hello")
        with pytest.raises(RegistryReplyMalformed, match="boolean result"):
            client.register({"name": "hello"})

    def test_json_that_is_not_an_object_is_malformed(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """A JSON array or string is not a reply."""
        maintenance_server.expect_request("/getRegistry").respond_with_json([{"result": True}])
        with pytest.raises(RegistryReplyMalformed, match="not an object"):
            client.fetch("dev", "hello")

    @pytest.mark.parametrize("status", [404, 500, 503])
    def test_http_error_is_unavailable(
        self, maintenance_server: HTTPServer, client: RegistryClient, status: int
    ) -> None:
        """An HTTP error status raises GatewayUnavailable with the status and URL."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(
            hello_reply(), status=status
        )
        with pytest.raises(GatewayUnavailable, match=f"HTTP {status}") as caught:
            client.fetch("dev", "hello")
        assert caught.value.url == f"{base_url(maintenance_server)}/getRegistry"
        assert caught.value.status_code == status
        assert ("data port" in str(caught.value)) is (status == 404)

    def test_a_404_names_the_maintenance_address_to_try(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """A 404 (the data port's unknown-service reply) suggests the port + maintenanceInc."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(
            data_port_reply(), status=404
        )
        with pytest.raises(GatewayUnavailable) as caught:
            client.fetch("dev", "hello")
        message = str(caught.value)
        assert "this looks like the gateway's data port" in message
        assert "maintenanceInc" in message
        if maintenance_server.port + 1000 <= 65535:
            assert message.endswith(
                f"SOAJS_REGISTRY_API=127.0.0.1:{maintenance_server.port + 1000}"
            )

    def test_closed_port_is_unavailable(self, closed_port: int) -> None:
        """A refused connection raises GatewayUnavailable naming the URL and the setting."""
        url = f"http://127.0.0.1:{closed_port}"
        with (
            RegistryClient(url, timeout=1.0) as client,
            pytest.raises(GatewayUnavailable, match="SOAJS_REGISTRY_API") as caught,
        ):
            client.fetch("dev", "hello")
        assert f"{url}/getRegistry" in str(caught.value)
        assert isinstance(caught.value.__cause__, httpx.ConnectError)

    def test_slower_than_the_timeout_is_unavailable(self, maintenance_server: HTTPServer) -> None:
        """A reply slower than the timeout raises GatewayUnavailable saying it timed out."""
        release = threading.Event()

        def slow(request: Request) -> Response:
            release.wait(5)
            return Response(json.dumps(hello_reply()), content_type="application/json")

        maintenance_server.expect_request("/getRegistry").respond_with_handler(slow)
        try:
            with (
                RegistryClient(base_url(maintenance_server), timeout=0.2) as client,
                pytest.raises(GatewayUnavailable, match=r"timed out after 0\.2s"),
            ):
                client.fetch("dev", "hello")
        finally:
            release.set()

    def test_message_never_carries_the_query(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """Error messages and urls name the path only, not the query string."""
        maintenance_server.expect_request("/getRegistry").respond_with_json({}, status=500)
        with pytest.raises(GatewayUnavailable) as caught:
            client.fetch("dev", "secret-service-name")
        assert "?" not in str(caught.value)
        assert "secret-service-name" not in str(caught.value)
        assert caught.value.url is not None
        assert "?" not in caught.value.url


class TestRegister:
    def test_posts_the_body_and_returns_data(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """register() POSTs the JSON body unchanged and returns the reply's data."""
        body = load(CAPTURED / "register.hello.request.json")
        reply = load(CAPTURED / "register.hello.response.json")
        maintenance_server.expect_oneshot_request(
            "/register", method="POST", json=body
        ).respond_with_json(reply)
        assert client.register(body) == reply["data"]
        maintenance_server.check_assertions()
        request, _ = maintenance_server.log[0]
        assert request.headers["Content-Type"] == "application/json"

    def test_result_false_is_rejected(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """The gateway's failure reply (no data, no errors) raises RegistryRejected."""
        failure = load(FIXTURES / "upstream" / "register.response.synthesized-failure.json")
        maintenance_server.expect_request("/register").respond_with_json(failure)
        with pytest.raises(RegistryRejected, match="SOAJS_DEPLOY_HA") as caught:
            client.register({"name": "hello"})
        assert caught.value.url == f"{base_url(maintenance_server)}/register"
        assert "'hello'" in str(caught.value)

    def test_result_true_without_data_is_malformed(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """An answer without the registered entry is not a register reply."""
        maintenance_server.expect_request("/register").respond_with_json({"result": True})
        with pytest.raises(RegistryReplyMalformed, match="/register"):
            client.register({"name": "hello"})

    def test_http_error_is_unavailable(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """An HTTP error on /register raises GatewayUnavailable."""
        maintenance_server.expect_request("/register").respond_with_data("boom", status=502)
        with pytest.raises(GatewayUnavailable, match="HTTP 502"):
            client.register({"name": "hello"})


class TestLifecycle:
    def test_usable_after_close(
        self, maintenance_server: HTTPServer, client: RegistryClient
    ) -> None:
        """close() releases the pool; a later call opens a new one."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(hello_reply())
        client.fetch("dev", "hello")
        client.close()
        client.close()
        assert client.fetch("dev", "hello").environment == "dev"

    def test_given_transport_is_used(self, maintenance_server: HTTPServer) -> None:
        """A transport passed in carries the calls."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(hello_reply())

        class CountingTransport(httpx.HTTPTransport):
            calls = 0

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                CountingTransport.calls += 1
                return super().handle_request(request)

        with RegistryClient(base_url(maintenance_server), transport=CountingTransport()) as client:
            assert client.fetch("dev", "hello").environment == "dev"
        assert CountingTransport.calls == 1

    def test_base_url_needs_a_scheme(self) -> None:
        """A host:port without http:// is refused with a hint."""
        with pytest.raises(ValueError, match="http://"):
            RegistryClient("127.0.0.1:5000")

    def test_repr_names_the_url(self) -> None:
        """repr shows the base URL and timeout."""
        client = RegistryClient("http://127.0.0.1:5000/", timeout=3)
        assert repr(client) == "RegistryClient(base_url='http://127.0.0.1:5000', timeout=3)"

    def test_concurrent_calls(self, maintenance_server: HTTPServer) -> None:
        """Threads may share one client."""
        maintenance_server.expect_request("/getRegistry").respond_with_json(hello_reply())
        errors: list[BaseException] = []
        with RegistryClient(base_url(maintenance_server)) as client:

            def work() -> None:
                try:
                    for _ in range(5):
                        client.fetch("dev", "hello")
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
        assert errors == []
        assert len(maintenance_server.log) == 20

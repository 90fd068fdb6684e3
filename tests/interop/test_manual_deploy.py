"""A service started with SOAJS_DEPLOY_MANUAL=true joins the gateway: FastAPI, Flask, Django.

Each service is built with the framework integration only; the tests then look at what the
gateway recorded (its registry, its health view, its DB) and at what the service received.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .apps import GROUP, RunningService, run_service
from .realgateway import GatewayUnderTest, RealGateway
from .servers import wait_for, wait_until_routable

pytestmark = pytest.mark.interop

FRAMEWORKS = ["fastapi", "flask", "django"]
EXPECTED_CONFIG = {
    "fastapi": {"framework": "fastapi"},
    "flask": {"framework": "flask"},
    "django": {"framework": "django"},
}


@pytest.fixture(scope="module", params=FRAMEWORKS)
def service(request: pytest.FixtureRequest, gateway: GatewayUnderTest) -> Iterator[RunningService]:
    """``<framework>hello``, serving on loopback and registered with the gateway."""
    framework: str = request.param
    with run_service(gateway, framework, f"{framework}hello") as running:
        yield running


def _registered_entry(gateway: GatewayUnderTest, name: str) -> dict[str, Any] | None:
    entry: dict[str, Any] | None = gateway.get_registry(name)["data"]["services"].get(name)
    return entry


class TestManualDeployment:
    def test_service_registers_itself(
        self, gateway: GatewayUnderTest, service: RunningService
    ) -> None:
        """The service registers on its own once it listens; the gateway lists its group/port."""
        assert wait_for(lambda: _registered_entry(gateway, service.name) is not None)
        assert _registered_entry(gateway, service.name) == {"group": GROUP, "port": service.port}

    def test_registration_is_persisted_because_mw_is_true(
        self, gateway: GatewayUnderTest, service: RunningService
    ) -> None:
        """The registration survives a registry rebuild, which only mw: true registrations do."""
        assert wait_for(lambda: _registered_entry(gateway, service.name) is not None)
        rebuilt = gateway.reload_registry()["data"]["services"]
        assert rebuilt[service.name]["port"] == service.port
        if isinstance(gateway, RealGateway):
            # The real gateway rebuilt it from the records it wrote to its database.
            hosts = gateway.db_find("hosts", {"name": service.name})
            assert [(host["ip"], host["port"]) for host in hosts] == [("127.0.0.1", service.port)]
            marketplace = gateway.db_find("marketplace", {"name": service.name})
            assert [record["configuration"]["port"] for record in marketplace] == [service.port]

    def test_registration_asks_for_the_context_header(
        self, gateway: GatewayUnderTest, service: RunningService
    ) -> None:
        """The registered version has extKeyRequired true, so the gateway injects the header."""
        assert wait_for(lambda: _registered_entry(gateway, service.name) is not None)
        entry = gateway.awareness_stat()["data"]["services"][service.name]
        assert entry["versions"]["1"]["extKeyRequired"] is True
        assert entry["hosts"] == {"1": ["127.0.0.1"], "latest": "1"}

    def test_service_answers_health_probes(
        self, gateway: GatewayUnderTest, service: RunningService
    ) -> None:
        """The service answers /heartbeat with 200 and the gateway marks its host healthy."""
        reply = httpx.get(f"{service.url}/heartbeat", timeout=10)
        assert reply.status_code == 200
        assert reply.json()["result"] is True

        def healthy() -> bool:
            entry = gateway.awareness_stat()["data"]["services"].get(service.name, {})
            return bool(entry.get("awarenessStats", {}).get("127.0.0.1", {}).get("healthy"))

        assert wait_for(healthy)

    def test_keyed_call_reaches_service_with_tenant_and_config(
        self, gateway: GatewayUnderTest, service: RunningService
    ) -> None:
        """A call through the gateway with the key reaches the service as tenant TTEN."""
        reply = wait_until_routable(
            f"{gateway.data_url}/{service.name}/echo", {"key": gateway.ext_key}
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body == {
            "service": service.name,
            "tenant": "TTEN",
            "config": EXPECTED_CONFIG[service.framework],
            "greeting": "hello from commonFields",
            "urac": None,
        }
        assert service.received()[-1] == body

    def test_versioned_path_reaches_service(
        self, gateway: GatewayUnderTest, service: RunningService
    ) -> None:
        """The gateway strips /<name>/v1 and the service answers its own /echo."""
        wait_until_routable(f"{gateway.data_url}/{service.name}/echo", {"key": gateway.ext_key})
        reply = httpx.get(
            f"{gateway.data_url}/{service.name}/v1/echo",
            headers={"key": gateway.ext_key},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["tenant"] == "TTEN"

    def test_call_without_key_never_reaches_service(
        self, gateway: GatewayUnderTest, service: RunningService
    ) -> None:
        """Without a key the gateway answers 403 (code 132) and the service sees nothing."""
        wait_until_routable(f"{gateway.data_url}/{service.name}/echo", {"key": gateway.ext_key})
        seen = len(service.received())
        reply = httpx.get(f"{gateway.data_url}/{service.name}/echo", timeout=10)
        assert reply.status_code == 403
        assert reply.json()["errors"]["codes"] == [132]
        assert len(service.received()) == seen

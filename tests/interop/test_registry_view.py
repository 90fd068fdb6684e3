"""What a registered service holds as its registry, and how the gateway's own reload treats it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soajs.registry.manager import reload_interval

from .apps import GROUP, RunningService, run_routable_service
from .realgateway import GatewayUnderTest
from .servers import wait_for, wait_until_routable

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def viewer(gateway: GatewayUnderTest) -> Iterator[RunningService]:
    """``viewer``, a FastAPI service registered with the gateway and routable."""
    with run_routable_service(gateway, "fastapi", "viewer") as service:
        yield service


class TestServiceRegistry:
    def test_registry_has_gateway_entry(
        self, gateway: GatewayUnderTest, viewer: RunningService
    ) -> None:
        """The service's registry holds services.controller on the gateway's data port."""
        snapshot = viewer.registry.registry
        assert snapshot.environment == "dev"
        controller = (snapshot.services or {})["controller"]
        assert controller.port == gateway.data_port
        assert controller.name == "controller"

    def test_registry_reload_interval_comes_from_environment(self, viewer: RunningService) -> None:
        """The environment's autoRelaodRegistry (3600000 ms, misspelt key) sets the interval.

        Right after registering, the service reloads once (its first snapshot predates the
        registration and lacks its own entry); from then on the environment's interval holds.
        """
        assert wait_for(lambda: "viewer" in (viewer.registry.registry.services or {}))
        snapshot = viewer.registry.registry
        assert snapshot.service_config.awareness.reload_interval_ms == 3_600_000
        assert reload_interval(snapshot) == 3600.0
        status = viewer.registry.status
        assert status.running is True
        assert status.next_reload_in is not None
        assert status.next_reload_in > 60

    def test_reloaded_registry_has_own_entry(
        self, gateway: GatewayUnderTest, viewer: RunningService
    ) -> None:
        """Once registered, a reload of the service's registry shows its own {group, port}."""
        snapshot = viewer.registry.reload()
        own = (snapshot.services or {})["viewer"]
        assert (own.group, own.port) == (GROUP, viewer.port)
        assert viewer.registry.status.last_error is None

    def test_still_routable_after_gateway_reload(
        self, gateway: GatewayUnderTest, viewer: RunningService
    ) -> None:
        """After the gateway's /reloadRegistry (a rebuild) the service is still routed to."""
        rebuilt = gateway.reload_registry()
        assert rebuilt["result"] is True
        assert "viewer" in rebuilt["data"]["services"]
        reply = wait_until_routable(f"{gateway.data_url}/viewer/echo", {"key": gateway.ext_key})
        assert reply.status_code == 200, reply.text
        assert reply.json()["tenant"] == "TTEN"
        assert wait_for(lambda: viewer.received()[-1]["tenant"] == "TTEN")

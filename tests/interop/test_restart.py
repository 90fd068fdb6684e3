"""The gateway goes away and comes back while a service runs.

The service keeps serving with its last good registry while the gateway is down, reloads once
it is back, and is routed to again. The real gateway reloads ``mw: true`` registrations from
its DB when it starts; the emulator starts empty, so there the service comes back through its
periodic re-registration (``SOAJS_REREGISTER_INTERVAL``, shortened for the test).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from soajs.errors import GatewayUnavailable

from .apps import RunningService, run_routable_service
from .realgateway import GatewayUnderTest
from .servers import wait_for, wait_until_routable

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def survivor(gateway: GatewayUnderTest) -> Iterator[RunningService]:
    """``survivor``, a FastAPI service registered with the gateway and routable."""
    variables = {} if gateway.kind == "real" else {"SOAJS_REREGISTER_INTERVAL": "2"}
    with run_routable_service(gateway, "fastapi", "survivor", variables=variables) as service:
        yield service


class TestGatewayRestart:
    def test_service_outlives_gateway_restart(
        self, gateway_restarter: GatewayUnderTest, survivor: RunningService
    ) -> None:
        """Down: last good registry kept and served; back: the service reloads and is routed."""
        gateway = gateway_restarter
        manager = survivor.registry

        gateway.stop_gateway()
        with pytest.raises(GatewayUnavailable):
            manager.reload()
        # Read the snapshot only now: a background reload that was already answered when the
        # gateway stopped may have swapped it in; from here on nothing can load a new one.
        before = manager.registry
        reloads_before = manager.status.reloads
        with pytest.raises(GatewayUnavailable):
            manager.reload()
        assert manager.registry is before
        assert manager.status.last_error is not None
        assert manager.status.consecutive_failures >= 1
        served = httpx.get(f"{survivor.url}/registry", timeout=10)
        assert served.status_code == 200
        assert "controller" in served.json()["services"]
        assert served.json()["time_loaded"] == before.time_loaded
        assert httpx.get(f"{survivor.url}/heartbeat", timeout=10).status_code == 200

        gateway.start_gateway()
        assert wait_for(lambda: manager.status.reloads > reloads_before, timeout=30)
        assert manager.status.consecutive_failures == 0
        assert manager.registry is not before
        assert "controller" in (manager.registry.services or {})
        reply = wait_until_routable(f"{gateway.data_url}/survivor/echo", {"key": gateway.ext_key})
        assert reply.status_code == 200, reply.text
        assert reply.json()["tenant"] == "TTEN"

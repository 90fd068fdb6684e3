"""Gateway faults at run time: the service keeps serving from the last good registry.

Each test runs a real service (uvicorn, the SOAJS ASGI middleware, a handler reading the
registry and the request context) while a real loopback gateway misbehaves in one way.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from helpers import UvicornThread, wait_until
from tagged_registry import registry_reply, tag_of

from soajs import Settings
from soajs.asgi import SoajsASGIMiddleware
from soajs.container import SoajsContainer
from soajs.errors import GatewayUnavailable
from soajs.fastapi import setup_soajs
from soajs.registry import RegistryManager

from .conftest import FLOOR, Figures
from .faultserver import FaultServer, Mode
from .services import RequestLoad, registry_reader_asgi
from .wire import RAW_HEADERS

# Seconds each fault lasts; longer runs show the same proportions.
PHASE_SECONDS = float(os.environ.get("RELIABILITY_PHASE", "0.8"))
INTERVAL = 0.2  # the registry's autoRelaodRegistry in these tests, in seconds

# What the manager's status must say after each fault.
FAULTS = {
    Mode.DOWN: "cannot reach the gateway",
    Mode.HTTP_500: "HTTP 500",
    Mode.GARBAGE: "not JSON",
    Mode.RESULT_FALSE: "result: false",
    Mode.NO_DATA: "without a registry",
    Mode.SLOW: "timed out",
    Mode.RESET: "cannot reach the gateway",
}


def most_calls(seconds: float, floor: float, interval: float) -> int:
    """The most attempts capped exponential backoff allows in ``seconds`` (jitter at its least).

    One attempt at the start, then waits of ``floor``, ``2 floor``, ... capped at ``interval``,
    plus two for scheduling slack. A tight loop at the floor would make ``seconds / floor``.
    """
    calls, elapsed, wait = 1, 0.0, floor
    while elapsed + wait <= seconds:
        elapsed += wait
        calls += 1
        wait = min(interval, wait * 2)
    return calls + 2


class Service:
    """The service under test: a registry manager and the app that reads it, under load."""

    def __init__(self, manager: RegistryManager) -> None:
        self.manager = manager
        app = SoajsASGIMiddleware(registry_reader_asgi(manager), registry=manager)
        self.server = UvicornThread(app).start()
        self.load = RequestLoad(
            self.server.url + "/hello",
            headers={"soajsinjectobj": RAW_HEADERS["hello-get"]},
            check=self._check,
        ).start()

    @staticmethod
    def _check(body: dict[str, Any]) -> None:
        assert body["tenant"] == "TTEN", body
        assert body["db"] == f"main_{body['tag']}", body

    def stop(self) -> None:
        self.load.stop()
        self.server.stop()


@pytest.fixture
def service(
    gateway: FaultServer, make_manager: Callable[..., RegistryManager]
) -> Iterator[Service]:
    """The service, loaded with the ``a`` registry and reloading every 200 ms."""
    running = Service(make_manager(gateway))
    assert wait_until(lambda: running.load.ok >= 10)
    yield running
    running.stop()


@pytest.mark.usefixtures("fast")
class TestFaultsAtRunTime:
    @pytest.mark.parametrize("mode", list(FAULTS), ids=str)
    def test_fault_keeps_the_last_good_registry(
        self, gateway: FaultServer, service: Service, mode: Mode, figures: Figures
    ) -> None:
        """The registry stays, no request fails, the status tells, and the calls back off."""
        manager = service.manager
        assert wait_until(lambda: manager.status.reloads >= 2)
        gateway.reply = registry_reply("b", interval_ms=200)
        start = time.monotonic()
        gateway.mode = mode
        assert wait_until(lambda: manager.status.consecutive_failures >= 1)
        age_at_first_failure = manager.status.age_seconds or 0.0
        time.sleep(PHASE_SECONDS)
        status = manager.status
        failures = status.consecutive_failures
        calls = failures if mode is Mode.DOWN else len(gateway.registry_calls(since=start))

        assert tag_of(manager.registry) == "a"
        assert FAULTS[mode] in (status.last_error or ""), status.last_error
        assert 3 <= failures <= calls
        assert (status.age_seconds or 0.0) > age_at_first_failure
        assert status.last_error_at is not None
        assert status.last_success is not None
        assert status.last_error_at > status.last_success
        assert status.running
        # Seconds of waiting between two attempts on a failing gateway, at most, in this phase.
        window = time.monotonic() - start
        assert calls <= most_calls(window, FLOOR, INTERVAL) + 1, calls  # +1: a stalled call

        gateway.mode = Mode.OK
        assert wait_until(lambda: tag_of(manager.registry) == "b")
        assert manager.status.consecutive_failures == 0
        served_during_fault = service.load.ok
        assert wait_until(lambda: service.load.ok > served_during_fault + 10)
        service.load.stop()
        assert service.load.failed == 0, service.load.failures
        assert service.load.tags == {"a", "b"}
        figures.record(
            f"fault/{mode}",
            seconds=round(window, 2),
            gateway_calls=calls,
            tight_loop_calls=int(window / FLOOR),
            requests=service.load.ok,
            failed_requests=service.load.failed,
        )

    def test_flapping_gateway(
        self, gateway: FaultServer, service: Service, figures: Figures
    ) -> None:
        """A gateway that fails every other call: fresh registries, no failed request, no storm."""
        manager = service.manager
        assert wait_until(lambda: manager.status.reloads >= 2)
        reloads_before = manager.status.reloads
        start = time.monotonic()
        gateway.reply = registry_reply("b", interval_ms=200)
        gateway.mode = Mode.FLAP
        time.sleep(PHASE_SECONDS * 2)
        calls = gateway.registry_calls(since=start)
        answered = {call.answered for call in calls}
        status = manager.status
        service.load.stop()

        assert answered == {Mode.OK, Mode.HTTP_500, Mode.RESET, Mode.GARBAGE} or len(calls) < 6
        assert Mode.OK in answered
        assert tag_of(manager.registry) == "b"
        assert status.reloads > reloads_before
        assert status.consecutive_failures <= 1
        assert status.last_error is not None
        # A failure is retried after about a floor, a success waits a whole interval.
        assert len(calls) <= 2 * (PHASE_SECONDS * 2 / INTERVAL) + 4, len(calls)
        assert service.load.failed == 0, service.load.failures
        figures.record(
            "fault/flap",
            seconds=PHASE_SECONDS * 2,
            gateway_calls=len(calls),
            bad_answers=sum(call.answered is not Mode.OK for call in calls),
            requests=service.load.ok,
            failed_requests=service.load.failed,
        )


def fastapi_service(gateway: FaultServer, **settings: Any) -> FastAPI:
    """A FastAPI service whose lifespan starts the registry from these settings."""
    container = SoajsContainer()
    container.settings.override(
        Settings(
            registry_api=gateway.registry_api,
            service_name="hello",
            registry_timeout=0.1,
            **settings,
        )
    )
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"tag": tag_of(container.registry().registry)}

    setup_soajs(app, container, register=False)
    return app


@pytest.mark.usefixtures("fast")
class TestStartWithTheGatewayDown:
    def test_manager_fails_at_once_with_a_clear_error(
        self, gateway: FaultServer, make_manager: Callable[..., RegistryManager]
    ) -> None:
        """By default a manager whose gateway is down raises GatewayUnavailable naming the URL."""
        gateway.mode = Mode.DOWN
        with pytest.raises(GatewayUnavailable) as caught:
            make_manager(gateway)
        message = str(caught.value)
        assert f"http://{gateway.registry_api}/getRegistry" in message
        assert "SOAJS_REGISTRY_API" in message

    def test_app_starts_not_ready_and_says_why(
        self, gateway: FaultServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A FastAPI service starts without its gateway, not ready, and logs which gateway."""
        gateway.mode = Mode.DOWN
        app = fastapi_service(gateway)
        lifecycle = app.state.soajs

        async def start_up() -> bool:
            async with app.router.lifespan_context(app):
                return bool(lifecycle.registry.loaded)

        with caplog.at_level("WARNING", logger="soajs"):
            assert asyncio.run(start_up()) is False
        assert any(
            "has not loaded yet" in record.getMessage()
            and gateway.registry_api in record.getMessage()
            for record in caplog.records
        )

    def test_bounded_wait_starts_once_the_gateway_appears(self, gateway: FaultServer) -> None:
        """With SOAJS_REGISTRY_STARTUP_WAIT the service waits, and serves once the gateway is up."""
        gateway.mode = Mode.DOWN
        server = UvicornThread(fastapi_service(gateway, registry_startup_wait=10), lifespan="on")
        starting = threading.Thread(target=server.start, daemon=True)
        starting.start()
        try:
            time.sleep(0.3)
            assert not server.server.started
            came_up = time.monotonic()
            gateway.mode = Mode.OK
            starting.join(10)
            assert server.server.started
            reply = httpx.get(server.url + "/hello")
            assert reply.status_code == 200
            assert reply.json() == {"tag": "a"}
            first_calls = gateway.registry_calls()
            assert first_calls
            assert first_calls[0].at >= came_up
        finally:
            server.stop()

    def test_bounded_wait_gives_up_with_a_clear_error(
        self, gateway: FaultServer, make_manager: Callable[..., RegistryManager]
    ) -> None:
        """When the wait runs out the error names the setting and the gateway."""
        gateway.mode = Mode.DOWN
        with pytest.raises(GatewayUnavailable) as caught:
            make_manager(gateway, startup_wait=0.3)
        assert "SOAJS_REGISTRY_STARTUP_WAIT=0.3s" in str(caught.value)
        assert gateway.registry_api in str(caught.value)

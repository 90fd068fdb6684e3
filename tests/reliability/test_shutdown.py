"""Shutdown: stop() joins the thread and closes the client; nothing restarts on its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from helpers import UvicornThread, WSGIThread, wait_until

from soajs import Settings
from soajs.container import SoajsContainer
from soajs.fastapi import setup_soajs
from soajs.flask import Soajs
from soajs.registry import RegistryManager

from .conftest import Figures
from .faultserver import FaultServer, Mode


def reload_thread(manager: RegistryManager) -> threading.Thread:
    """The manager's background thread (named after the service)."""
    threads = [
        t for t in threading.enumerate() if t.name == f"soajs-registry-{manager.service_name}"
    ]
    assert len(threads) == 1, threads
    return threads[0]


def pool_is_closed(manager: RegistryManager) -> bool:
    """Whether the manager's client holds no open connection pool."""
    return manager.client._http is None


def quiet_for(gateway: FaultServer, seconds: float) -> int:
    """How many /getRegistry calls arrive during the next ``seconds``."""
    since = time.monotonic()
    time.sleep(seconds)
    return len(gateway.registry_calls(since=since))


@pytest.mark.usefixtures("fast")
class TestStop:
    def test_stop_joins_the_thread_and_closes_the_client(
        self, gateway: FaultServer, make_manager: Callable[..., RegistryManager]
    ) -> None:
        """After stop() the thread is dead, the pool closed, and the gateway hears nothing."""
        manager = make_manager(gateway)
        thread = reload_thread(manager)
        assert wait_until(lambda: manager.status.reloads >= 2)
        manager.stop()
        assert not thread.is_alive()
        assert pool_is_closed(manager)
        assert manager.status.running is False
        assert manager.status.next_reload_in is None
        assert quiet_for(gateway, 0.5) == 0

    def test_stop_during_a_stalled_reload(
        self, gateway: FaultServer, make_manager: Callable[..., RegistryManager]
    ) -> None:
        """A reload stuck on a slow gateway is cut short by stop(), which joins the thread."""
        manager = make_manager(gateway, timeout=0.3)
        thread = reload_thread(manager)
        gateway.mode = Mode.SLOW
        since = time.monotonic()
        assert wait_until(lambda: len(gateway.registry_calls(since=since)) >= 1)
        manager.stop()
        assert not thread.is_alive()
        assert pool_is_closed(manager)

    def test_stop_during_backoff(
        self, gateway: FaultServer, make_manager: Callable[..., RegistryManager]
    ) -> None:
        """A manager waiting out its backoff stops at once, thread joined."""
        manager = make_manager(gateway)
        thread = reload_thread(manager)
        gateway.mode = Mode.HTTP_500
        assert wait_until(lambda: manager.status.consecutive_failures >= 3)
        manager.stop()
        assert not thread.is_alive()
        assert quiet_for(gateway, 0.3) == 0

    def test_stop_ends_re_registration(
        self, gateway: FaultServer, make_manager: Callable[..., RegistryManager]
    ) -> None:
        """A manager that re-registers stops registering with stop()."""
        manager = make_manager(
            gateway,
            auto_reload=False,
            settings={
                "deploy_manual": True,
                "service_group": "Tests",
                "service_port": 4100,
                "reregister_interval": 0.05,
            },
        )
        assert manager.start_registration() is True
        thread = manager.registrar.thread
        assert thread is not None
        assert wait_until(lambda: sum(c.path == "/register" for c in gateway.calls) >= 3)
        manager.stop()
        assert not thread.is_alive()
        registered = sum(c.path == "/register" for c in gateway.calls)
        time.sleep(0.3)
        assert sum(c.path == "/register" for c in gateway.calls) == registered

    def test_a_stopped_manager_does_not_restart_by_itself(
        self,
        gateway: FaultServer,
        make_manager: Callable[..., RegistryManager],
        figures: Figures,
    ) -> None:
        """Reads, status, an explicit reload and a second stop() never bring the thread back."""
        manager = make_manager(gateway)
        thread = reload_thread(manager)
        manager.stop()
        assert not thread.is_alive()
        assert manager.registry.environment == "dev"
        assert manager.get_database("main").name == "main_a"
        assert manager.reload().environment == "dev"  # explicit reloads still work
        gateway.mode = Mode.HTTP_500
        with pytest.raises(Exception, match="HTTP 500"):
            manager.reload()  # a failure must not wake a retry thread
        manager.stop()
        calls = quiet_for(gateway, 0.5)
        assert calls == 0
        assert manager.status.running is False
        assert not any(t.name.startswith("soajs-registry-") for t in threading.enumerate())
        figures.record("shutdown/stopped-manager", gateway_calls_after_stop=calls)

    def test_start_after_stop_is_explicit(
        self, gateway: FaultServer, make_manager: Callable[..., RegistryManager]
    ) -> None:
        """Only start() brings the thread back, and a new stop() joins it again."""
        manager = make_manager(gateway)
        manager.stop()
        manager.start()
        thread = reload_thread(manager)
        assert thread.is_alive()
        assert wait_until(lambda: manager.status.reloads >= 2)
        manager.stop()
        assert not thread.is_alive()


def _container(gateway: FaultServer) -> SoajsContainer:
    container = SoajsContainer()
    container.settings.override(
        Settings(registry_api=gateway.registry_api, service_name="hello", registry_timeout=0.3)
    )
    return container


@pytest.mark.usefixtures("fast")
class TestAppShutdown:
    def test_fastapi_shutdown_stops_the_registry(self, gateway: FaultServer) -> None:
        """Stopping uvicorn runs the lifespan's end: the thread is joined and the pool closed."""
        container = _container(gateway)
        app = FastAPI()

        @app.get("/hello")
        def hello() -> dict[str, str]:
            return {"env": container.registry().registry.environment}

        setup_soajs(app, container, register=False)
        server = UvicornThread(app, lifespan="on").start()
        manager: RegistryManager = container.registry()
        thread = reload_thread(manager)
        assert httpx.get(server.url + "/hello").json() == {"env": "dev"}
        assert wait_until(lambda: manager.status.reloads >= 2)
        server.stop()
        assert not server.thread.is_alive()
        assert not thread.is_alive()
        assert pool_is_closed(manager)
        assert quiet_for(gateway, 0.3) == 0

    def test_flask_stop_stops_the_registry(self, gateway: FaultServer) -> None:
        """Soajs.stop() (also run at exit) joins the registry thread of a Flask service."""
        container = _container(gateway)
        app = Flask(__name__)

        @app.get("/hello")
        def hello() -> dict[str, str]:
            return {"env": container.registry().registry.environment}

        extension = Soajs(app, container, register=False)
        server = WSGIThread(app).start()
        try:
            assert httpx.get(server.url + "/hello").json() == {"env": "dev"}
        finally:
            server.stop()
        manager: RegistryManager = container.registry()
        thread = reload_thread(manager)
        extension.stop()
        assert not thread.is_alive()
        assert pool_is_closed(manager)
        assert quiet_for(gateway, 0.3) == 0

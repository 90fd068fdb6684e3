"""SoajsContainer providers and the ServiceLifecycle shared by the framework integrations."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dependency_injector import providers
from dependency_injector.wiring import Provide, inject
from helpers import exit_code_in_forked_child, free_port, wait_until

import soajs.container
from soajs.connector import ServiceConnector
from soajs.container import ServiceLifecycle, SoajsContainer
from soajs.context import RequestContext, reset_current_request, set_current_request
from soajs.inject import parse_inject_header
from soajs.models.context import ContextData
from soajs.models.service_config import Config
from soajs.registry.manager import RegistryManager
from soajs.settings import Settings
from soajs.testing import FakeRegistryManager, build_inject_header


@pytest.fixture
def container() -> Iterator[SoajsContainer]:
    container = SoajsContainer()
    container.settings.override(
        Settings(registry_api="127.0.0.1:5000", service_name="hello", env="dev")
    )
    try:
        yield container
    finally:
        container.unwire()
        container.reset_override()


class TestProviders:
    def test_settings_is_one_instance_per_container(self) -> None:
        """Each container has its own Settings, the same object on every resolution."""
        first, second = SoajsContainer(), SoajsContainer()
        assert first.settings() is first.settings()
        assert first.settings() is not second.settings()

    def test_registry_is_built_from_settings_and_not_started(
        self, container: SoajsContainer
    ) -> None:
        """The registry comes from the container's settings and waits for the app to start it."""
        registry = container.registry()
        assert isinstance(registry, RegistryManager)
        assert registry.settings is container.settings()
        assert registry.service_name == "hello"
        assert registry.status.reloads == 0
        assert registry.status.running is False

    def test_registry_uses_the_service_config(self, container: SoajsContainer) -> None:
        """An overridden service_config names the service the registry acts for."""
        container.service_config.override(
            providers.Object(Config(name="other", group="g", port=4100))
        )
        assert container.registry().service_name == "other"

    def test_service_config_comes_from_config_service(self, tmp_path: Any) -> None:
        """config.service (a dict, or a soa.json file) becomes the service_config and registry."""
        container = SoajsContainer()
        assert container.service_config() is None
        container.config.service.from_dict({"name": "hello", "group": "Demo", "port": 4100})
        config = container.service_config()
        assert isinstance(config, Config)
        assert (config.name, config.group, config.port) == ("hello", "Demo", 4100)
        soa = tmp_path / "soa.json"
        soa.write_text('{"serviceName": "orders", "serviceGroup": "Demo", "servicePort": 4300}')
        from_file = SoajsContainer()
        from_file.config.service.from_json(str(soa))
        from_file.config.settings.from_dict({"registry_api": "127.0.0.1:5000"})
        assert from_file.registry().service_name == "orders"

    def test_settings_take_config_settings_over_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """config.settings fields win over SOAJS_* variables; the others still come from them."""
        monkeypatch.setenv("SOAJS_ENV", "qa")
        monkeypatch.setenv("SOAJS_HEADER_POLICY", "ignore")
        container = SoajsContainer()
        container.config.settings.from_dict({"header_policy": "reject"})
        settings = container.settings()
        assert (settings.env, settings.header_policy) == ("qa", "reject")

    def test_started_registry_is_a_resource_that_starts_and_stops(self) -> None:
        """init() begins the registry's first load in the background; shutdown() stops it."""
        container = SoajsContainer()
        fake = FakeRegistryManager(autostart=False)
        container.registry.override(fake)
        try:
            assert isinstance(SoajsContainer.started_registry, providers.Resource)
            assert container.started_registry() is fake
            assert fake.wait_loaded(10)
            assert container.started_registry() is fake
            assert fake.fetches == 1
            container.shutdown_resources()
            assert container.started_registry.initialized is False
            assert fake.status.running is False
        finally:
            container.reset_override()

    def test_registry_provider_is_thread_safe(self) -> None:
        """The registry provider is a ThreadSafeSingleton (a plain Singleton races)."""
        assert isinstance(SoajsContainer.registry, providers.ThreadSafeSingleton)
        assert isinstance(SoajsContainer.settings, providers.ThreadSafeSingleton)

    def test_concurrent_first_use_builds_one_registry(
        self, container: SoajsContainer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Many threads resolving the registry at once get one instance, built once."""
        built: list[RegistryManager] = []

        class SlowRegistryManager(RegistryManager):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                # Widen the window in which a non-thread-safe singleton would build twice.
                time.sleep(0.05)
                super().__init__(*args, **kwargs)
                built.append(self)

        monkeypatch.setattr(soajs.container, "RegistryManager", SlowRegistryManager)
        barrier = threading.Barrier(16)
        seen: list[RegistryManager] = []
        lock = threading.Lock()

        def resolve() -> None:
            barrier.wait()
            registry = container.registry()
            with lock:
                seen.append(registry)

        threads = [threading.Thread(target=resolve) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(built) == 1
        assert len(seen) == 16
        assert all(registry is built[0] for registry in seen)

    def test_context_is_the_current_requests(self, container: SoajsContainer) -> None:
        """The context provider returns the context set for the current request, else None."""
        assert container.context() is None
        request = RequestContext(raw_header=build_inject_header(tenant_code="CTX"))
        token = set_current_request(request)
        try:
            context = container.context()
            assert isinstance(context, ContextData)
            assert context.tenant.code == "CTX"
            assert container.request() is request
        finally:
            reset_current_request(token)
        assert container.context() is None

    def test_connector_is_new_per_call_and_bound_to_the_request(
        self, container: SoajsContainer
    ) -> None:
        """The connector factory gives a fresh connector carrying the request's context."""
        container.registry.override(FakeRegistryManager())
        token = set_current_request(RequestContext(raw_header=build_inject_header(e_key="ek-1")))
        try:
            first, second = container.connector(), container.connector()
        finally:
            reset_current_request(token)
        assert isinstance(first, ServiceConnector)
        assert first is not second
        assert first.context is not None
        assert first.context.key.e_key == "ek-1"
        assert first.connect("urac", "2").host == "127.0.0.1:4000/urac/v2"

    def test_overrides_run_without_a_gateway(self) -> None:
        """Overriding settings, registry and context is enough: nothing reaches a gateway."""
        container = SoajsContainer()
        fake = FakeRegistryManager()
        context = parse_inject_header(build_inject_header(tenant_code="OVR"))
        container.registry.override(fake)
        container.context.override(providers.Object(context))
        try:
            connector = container.connector()
            assert container.registry() is fake
            assert connector.context is context
            assert connector.connect().host == "127.0.0.1:4000"
        finally:
            container.reset_override()


@inject
def tenant_of_request(context: ContextData | None = Provide[SoajsContainer.context]) -> str | None:
    return context.tenant.code if context is not None else None


class TestWiring:
    def test_provide_in_a_wired_function(self, container: SoajsContainer) -> None:
        """@inject with Provide[SoajsContainer.context] sees each request's context."""
        container.wire(modules=[__name__])
        assert tenant_of_request() is None
        token = set_current_request(
            RequestContext(raw_header=build_inject_header(tenant_code="WIRE"))
        )
        try:
            assert tenant_of_request() == "WIRE"
        finally:
            reset_current_request(token)


class TestServiceLifecycle:
    @staticmethod
    def fake(port: int, *, deploy_manual: bool = True, **settings: Any) -> FakeRegistryManager:
        return FakeRegistryManager(
            config=Config(name="hello", group="test", port=port, version="1"),
            settings=Settings(deploy_manual=deploy_manual, reregister_interval=0, **settings),
            autostart=False,
        )

    @staticmethod
    def lifecycle_for(
        registry: FakeRegistryManager, **options: Any
    ) -> tuple[SoajsContainer, ServiceLifecycle]:
        container = SoajsContainer()
        container.registry.override(registry)
        return container, ServiceLifecycle(container, **options)

    def test_start_and_stop_are_idempotent(self) -> None:
        """start loads the registry once; stop stops it; both can be repeated."""
        registry = self.fake(free_port())
        _, lifecycle = self.lifecycle_for(registry)
        lifecycle.start()
        lifecycle.start()
        assert registry.fetches == 1
        lifecycle.stop()
        lifecycle.stop()
        assert registry.status.running is False

    def test_registers_once_the_port_listens(self) -> None:
        """The registration waits for the service port, then sends one /register."""
        port = free_port()
        registry = self.fake(port)
        _, lifecycle = self.lifecycle_for(registry)
        lifecycle.register_when_listening()
        try:
            assert registry.registrations == []
            with socket.create_server(("127.0.0.1", port)):
                assert wait_until(lambda: len(registry.registrations) == 1)
            assert registry.registrations[0]["port"] == port
            assert registry.fetches == 1
        finally:
            lifecycle.stop()

    def test_the_port_probe_ends_a_connection_a_fork_copied(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The probe shuts its connection down, so a worker forked mid-probe cannot hold it open."""
        copies: list[int] = []
        create_connection = socket.create_connection

        def probe_copied_by_a_fork(*args: Any, **kwargs: Any) -> socket.socket:
            probe = create_connection(*args, **kwargs)
            # What a gunicorn --preload worker forked at this moment holds: a copy of the fd.
            copies.append(os.dup(probe.fileno()))
            return probe

        monkeypatch.setattr(socket, "create_connection", probe_copied_by_a_fork)
        port = free_port()
        registry = self.fake(port)
        _, lifecycle = self.lifecycle_for(registry)
        try:
            with socket.create_server(("127.0.0.1", port)) as server:
                server.settimeout(10)
                lifecycle.register_when_listening()
                accepted, _ = server.accept()
                with accepted:
                    accepted.settimeout(5)
                    # The server's worker sees the end of the connection, not a silent client.
                    assert accepted.recv(1) == b""
                assert wait_until(lambda: len(registry.registrations) == 1)
        finally:
            lifecycle.stop()
            for copy in copies:
                os.close(copy)
        assert copies

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    def test_a_child_forked_during_start_starts_on_its_own(self) -> None:
        """A worker forked while the parent is inside start() (gunicorn --preload) can start."""
        parent = os.getpid()
        in_start = threading.Event()
        release = threading.Event()

        class SlowGatewayRegistry(FakeRegistryManager):
            def start_in_background(self) -> None:
                # In the parent, the fork happens while this call is still going on.
                if os.getpid() == parent:
                    in_start.set()
                    release.wait(10)
                super().start_in_background()

        registry = SlowGatewayRegistry(
            config=Config(name="hello", group="test", port=free_port(), version="1"),
            settings=Settings(reregister_interval=0),
            autostart=False,
        )
        _, lifecycle = self.lifecycle_for(registry)
        starting = threading.Thread(target=lifecycle.start)
        starting.start()
        try:
            assert in_start.wait(10)

            def child_starts_once() -> bool:
                child = threading.Thread(target=lifecycle.start, daemon=True)
                child.start()
                child.join(5)
                return lifecycle.started and registry.fetches == 1

            exit_code = exit_code_in_forked_child(child_starts_once)
        finally:
            release.set()
            starting.join(10)
            lifecycle.stop()
        assert exit_code == 0
        assert lifecycle.started is False

    def test_no_registration_without_deploy_manual(self) -> None:
        """Without SOAJS_DEPLOY_MANUAL no registration thread starts."""
        registry = self.fake(free_port(), deploy_manual=False)
        _, lifecycle = self.lifecycle_for(registry)
        assert lifecycle.should_register is False
        lifecycle.register_when_listening()
        assert registry.registrar.thread is None

    def test_no_registration_in_ha_mode(self) -> None:
        """SOAJS_DEPLOY_HA turns registration off even with SOAJS_DEPLOY_MANUAL."""
        registry = self.fake(free_port(), deploy_ha="kubernetes")
        _, lifecycle = self.lifecycle_for(registry)
        assert lifecycle.should_register is False

    def test_register_argument_forces_it(self) -> None:
        """register=True registers even without SOAJS_DEPLOY_MANUAL."""
        port = free_port()
        registry = self.fake(port, deploy_manual=False)
        _, lifecycle = self.lifecycle_for(registry, register=True)
        with socket.create_server(("127.0.0.1", port)):
            lifecycle.register_when_listening()
            try:
                assert wait_until(lambda: len(registry.registrations) == 1)
            finally:
                lifecycle.stop()

    def test_registers_anyway_after_the_listen_timeout(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """When nothing listens in time it registers anyway and says so."""
        registry = self.fake(free_port())
        _, lifecycle = self.lifecycle_for(registry, listen_timeout=0.1)
        with caplog.at_level(logging.WARNING, logger="soajs"):
            lifecycle.register_when_listening()
            try:
                assert wait_until(lambda: len(registry.registrations) == 1)
            finally:
                lifecycle.stop()
        assert "nothing listens on 127.0.0.1" in caplog.text

    def test_stop_cancels_a_pending_registration(self) -> None:
        """Stopping before the port listens means no registration at all."""
        registry = self.fake(free_port())
        _, lifecycle = self.lifecycle_for(registry)
        lifecycle.register_when_listening()
        lifecycle.stop()
        thread = registry.registrar.thread
        assert thread is not None
        assert not thread.is_alive()
        assert registry.registrations == []

    def test_a_broken_config_is_logged_not_raised(self, caplog: pytest.LogCaptureFixture) -> None:
        """A registration that cannot be built is logged from the thread."""
        registry = FakeRegistryManager(
            settings=Settings(deploy_manual=True), service_name="hello", autostart=False
        )
        _, lifecycle = self.lifecycle_for(registry)
        with caplog.at_level(logging.ERROR, logger="soajs"):
            lifecycle.register_when_listening()
            thread = registry.registrar.thread
            assert thread is not None
            thread.join(10)
        assert "could not register the service" in caplog.text
        assert registry.registrations == []


# Each program starts one integration over a fake registry and prints the freeze count after
# start-up. They run in a subprocess so the freeze stays out of the test process.
START_FLASK = """
import gc
from flask import Flask
from soajs.container import SoajsContainer
from soajs.flask import Soajs
from soajs.testing import FakeRegistryManager

container = SoajsContainer()
container.registry.override(FakeRegistryManager())
Soajs(Flask(__name__), container, register=False)
print(gc.get_freeze_count())
"""

START_FASTAPI = """
import gc
from fastapi import FastAPI
from fastapi.testclient import TestClient
from soajs.container import SoajsContainer
from soajs.fastapi import setup_soajs
from soajs.testing import FakeRegistryManager

container = SoajsContainer()
container.registry.override(FakeRegistryManager())
app = FastAPI()
setup_soajs(app, container, register=False)
with TestClient(app):
    print(gc.get_freeze_count())
"""


class TestGcFreeze:
    @staticmethod
    def frozen_after_start(program: str, gc_freeze: str | None) -> int:
        """The ``gc.get_freeze_count()`` a fresh interpreter reports after ``program``."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("SOAJS_")}
        if gc_freeze is not None:
            env["SOAJS_GC_FREEZE"] = gc_freeze
        done = subprocess.run(
            [sys.executable, "-c", program],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return int(done.stdout.split()[-1])

    @pytest.mark.parametrize("program", [START_FLASK, START_FASTAPI], ids=["flask", "fastapi"])
    def test_start_up_freezes_by_default(self, program: str) -> None:
        """By default the objects alive after an integration's start-up are frozen."""
        assert self.frozen_after_start(program, None) > 0

    @pytest.mark.parametrize("program", [START_FLASK, START_FASTAPI], ids=["flask", "fastapi"])
    def test_gc_freeze_false_opts_out(self, program: str) -> None:
        """``SOAJS_GC_FREEZE=false`` leaves the collector's generations as they were."""
        assert self.frozen_after_start(program, "false") == 0

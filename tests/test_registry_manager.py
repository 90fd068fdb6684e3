"""RegistryManager against a real HTTP server on 127.0.0.1 playing the gateway maintenance API."""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixture_paths import FIXTURES, SEED_README
from helpers import exit_code_in_forked_child, wait_until
from pytest_httpserver import HTTPServer
from tagged_registry import DB_PASSWORD, registry_reply, tag_of
from werkzeug import Request, Response

from soajs import Config, Settings
from soajs import registration as registration_module
from soajs.errors import (
    GatewayUnavailable,
    NotFound,
    RegistryError,
    RegistryNotLoaded,
    RegistryRejected,
    RegistryReplyMalformed,
    SettingsError,
)
from soajs.models import Registry
from soajs.registration import build_register_body
from soajs.registry import RegistryClient, RegistryManager, RegistryStatus
from soajs.registry import manager as manager_module
from soajs.registry.manager import reload_interval, retry_delay

CAPTURED = FIXTURES / "captured"
REGISTRY_FILES = sorted(FIXTURES.glob("*/getRegistry*.json"))
SECRETS = [
    "soajs key lal massa",
    "test cookie secret",
    "test session secret",
    "this is a secret sentence",
    "this is antoine hage app server",
    "main-db-password",
    DB_PASSWORD,
]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def registry_requests(server: HTTPServer) -> int:
    return sum(1 for request, _ in server.log if request.path == "/getRegistry")


def register_requests(server: HTTPServer) -> list[dict[str, Any]]:
    return [request.get_json() for request, _ in server.log if request.path == "/register"]


class Gateway:
    """Serves /getRegistry from whatever ``reply`` says at the moment of the request."""

    def __init__(self, server: HTTPServer, reply: dict[str, Any]) -> None:
        self.reply: Callable[[Request], Response] = self.json(reply)
        server.expect_request("/getRegistry", method="GET").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        return self.reply(request)

    @staticmethod
    def json(body: Any, status: int = 200) -> Callable[[Request], Response]:
        text = json.dumps(body)
        return lambda request: Response(text, status=status, content_type="application/json")


@pytest.fixture(autouse=True)
def clean_environment(no_soajs_env: None) -> None:
    """Keep the machine's SOAJS_* variables out of these tests."""


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lower the poll floors so reload and registration schedules play out in milliseconds."""
    monkeypatch.setattr(manager_module, "MIN_RELOAD_INTERVAL", 0.01)
    monkeypatch.setattr(registration_module, "MIN_REREGISTER_INTERVAL", 0.01)
    monkeypatch.setattr(manager_module, "STARTUP_RETRY_CAP", 0.05)


def settings_for(server: HTTPServer | int, **values: Any) -> Settings:
    port = server if isinstance(server, int) else server.port
    return Settings(registry_api=f"127.0.0.1:{port}", **values)


def make(
    managers: list[RegistryManager], server: HTTPServer | int, /, **options: Any
) -> RegistryManager:
    settings = options.pop("settings", None) or settings_for(server)
    options.setdefault("service_name", "hello")
    manager = RegistryManager(settings=settings, **options)
    managers.append(manager)
    return manager


class TestConstruction:
    def test_seed_signature(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """The seed arguments load the registry at once with env, serviceName and type=service."""
        Gateway(maintenance_server, registry_reply())
        manager = RegistryManager(
            "hello",
            "DEV",
            "service",
            False,
            4100,
            "127.0.0.1",
            "test",
            "1",
            None,
            settings=settings_for(maintenance_server),
        )
        managers.append(manager)
        assert manager.env_code == "dev"
        assert manager.get_database("main").name == "main_a"
        request, _ = maintenance_server.log[0]
        assert request.args.to_dict() == {"env": "dev", "serviceName": "hello", "type": "service"}
        assert manager.status.running is False

    def test_everything_from_the_environment(
        self,
        maintenance_server: HTTPServer,
        managers: list[RegistryManager],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """SOAJS_REGISTRY_API, SOAJS_ENV (lowercased) and SOAJS_SERVICE_NAME are read."""
        Gateway(maintenance_server, registry_reply())
        monkeypatch.setenv("SOAJS_REGISTRY_API", f"127.0.0.1:{maintenance_server.port}")
        monkeypatch.setenv("SOAJS_ENV", "QA")
        monkeypatch.setenv("SOAJS_SERVICE_NAME", "billing")
        manager = RegistryManager(auto_reload=False)
        managers.append(manager)
        assert (manager.env_code, manager.service_name) == ("qa", "billing")
        request, _ = maintenance_server.log[0]
        assert request.args["env"] == "qa"
        assert request.args["serviceName"] == "billing"

    def test_env_defaults_to_dev(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """Without env_code or SOAJS_ENV the environment is dev."""
        Gateway(maintenance_server, registry_reply())
        manager = make(managers, maintenance_server, auto_reload=False)
        assert manager.env_code == "dev"

    def test_registry_api_is_required(self) -> None:
        """Without SOAJS_REGISTRY_API the error names the variable."""
        with pytest.raises(SettingsError, match="SOAJS_REGISTRY_API"):
            RegistryManager(service_name="hello", env_code="dev")

    def test_service_name_is_required(self, maintenance_server: HTTPServer) -> None:
        """Without any service name the error says where to give one."""
        with pytest.raises(SettingsError, match="SOAJS_SERVICE_NAME"):
            RegistryManager(settings=settings_for(maintenance_server))

    def test_from_settings_takes_the_name_from_config(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """from_settings uses the Config's name and the settings' env."""
        Gateway(maintenance_server, registry_reply())
        config = Config(name="payments", group="Billing", port=4200)
        manager = RegistryManager.from_settings(
            settings_for(maintenance_server, env="stg", service_name="ignored"), config
        )
        managers.append(manager)
        assert manager.service_name == "payments"
        assert manager.env_code == "stg"
        assert manager.status.running is True

    def test_without_autostart_nothing_is_fetched(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """autostart=False defers the first fetch to start()."""
        Gateway(maintenance_server, registry_reply())
        manager = make(managers, maintenance_server, autostart=False)
        assert registry_requests(maintenance_server) == 0
        with pytest.raises(RegistryError, match="not loaded yet"):
            _ = manager.registry
        manager.start()
        manager.start()
        assert registry_requests(maintenance_server) == 1
        assert manager.status.running is True

    def test_context_manager_starts_and_stops(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """Entering starts the manager and leaving stops its thread."""
        Gateway(maintenance_server, registry_reply())
        with make(managers, maintenance_server, autostart=False) as manager:
            assert manager.get_service("hello").group == "a"
            assert manager.status.running is True
        assert manager.status.running is False

    def test_given_client_is_used_and_left_open(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """A client passed in is used, and the settings' gateway address is not needed."""
        Gateway(maintenance_server, registry_reply())
        client = RegistryClient(f"http://127.0.0.1:{maintenance_server.port}")
        manager = RegistryManager(
            service_name="hello", settings=Settings(), client=client, auto_reload=False
        )
        managers.append(manager)
        assert manager.client is client
        manager.stop()
        assert client.fetch("dev", "hello").environment == "dev"
        client.close()


@pytest.mark.parametrize("path", REGISTRY_FILES, ids=lambda path: path.name)
class TestAccessors:
    def test_every_accessor_answers(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager], path: Path
    ) -> None:
        """Each recorded registry answers every accessor of the manager."""
        reply = load(path)
        data = reply["data"]
        Gateway(maintenance_server, reply)
        manager = make(managers, maintenance_server, auto_reload=False)
        assert manager.registry.raw == data
        databases = {**data["tenantMetaDB"], **data["coreDB"]}
        assert set(manager.get_all_databases()) == set(databases)
        for name in databases:
            assert manager.get_database(name).prefix == databases[name]["prefix"]
        for name, raw in data["services"].items():
            assert manager.get_service(name).port == raw["port"]
        for by_name in data["resources"].values():
            for name in by_name:
                assert manager.get_resource(name).name == name
        assert len(manager.get_resources()) == sum(len(v) for v in data["resources"].values())
        assert len(manager.get_resources("cluster")) == len(data["resources"].get("cluster", {}))
        assert set(manager.get_custom()) == set(data["custom"])
        for name in data["custom"]:
            assert manager.get_custom(name).name == name
        assert set(manager.daemons) == set(data.get("daemons", {}))
        for name in manager.daemons:
            assert manager.get_daemon(name).group == data["daemons"][name]["group"]
        assert manager.deployer.type == data["deployer"]["type"]
        assert manager.awareness is not None
        assert manager.awareness.port == data["awareness"]["port"]
        assert manager.service_config.ports.controller == 4000
        for lookup in (
            manager.get_database,
            manager.get_service,
            manager.get_resource,
            manager.get_custom,
            manager.get_daemon,
        ):
            with pytest.raises(NotFound, match="'absent'"):
                lookup("absent")


class TestReloadInterval:
    @pytest.mark.parametrize(
        ("awareness", "seconds"),
        [
            ({"autoReloadRegistry": 5000}, 5.0),
            ({"autoRelaodRegistry": 2500}, 2.5),
            ({"autoReloadRegistry": 7000, "autoRelaodRegistry": 2500}, 7.0),
            ({}, 3600.0),
            ({"autoRelaodRegistry": 0}, 3600.0),
            ({"autoReloadRegistry": 10}, 1.0),
        ],
    )
    def test_interval(self, awareness: dict[str, int], seconds: float) -> None:
        """Either spelling sets the interval; unset means an hour; below 1 s means 1 s."""
        registry = Registry.from_wire(
            {"environment": "dev", "serviceConfig": {"awareness": awareness}}
        )
        assert reload_interval(registry) == seconds

    def test_nothing_loaded_means_an_hour(self) -> None:
        """Before any registry the default interval applies."""
        assert reload_interval(None) == 3600.0

    def test_floor_is_enforced_in_production(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """A registry asking for 10 ms reloads gets one reload a second at most."""
        Gateway(maintenance_server, registry_reply(interval_ms=10))
        manager = make(managers, maintenance_server)
        next_in = manager.status.next_reload_in
        assert next_in is not None
        assert 0.5 < next_in <= 1.0
        time.sleep(0.3)
        assert registry_requests(maintenance_server) == 1

    @pytest.mark.usefixtures("fast")
    def test_reloads_follow_the_misspelled_key(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """The background thread reloads at the autoRelaodRegistry interval."""
        Gateway(maintenance_server, registry_reply(interval_ms=20))
        manager = make(managers, maintenance_server)
        assert wait_until(lambda: manager.status.reloads >= 4)
        status = manager.status
        assert status.running is True
        assert status.consecutive_failures == 0
        assert status.last_error is None


class TestRetryDelay:
    def test_bounds(self) -> None:
        """Every delay lies between the 1 s floor and the interval."""
        for failures in range(1, 80):
            for interval in (1.0, 5.0, 60.0, 3600.0):
                delay = retry_delay(failures, interval)
                assert 1.0 <= delay <= interval

    def test_grows_then_caps(self) -> None:
        """Delays double from the floor (with at most 50% jitter) up to the interval."""
        assert 1.0 <= retry_delay(1, 3600) <= 1.5
        assert 2.0 <= retry_delay(2, 3600) <= 3.0
        assert 16.0 <= retry_delay(5, 3600) <= 24.0
        assert retry_delay(30, 3600) == 3600.0

    def test_jitter_spreads_workers(self) -> None:
        """Workers failing together do not all retry at the same instant."""
        assert len({retry_delay(3, 3600) for _ in range(20)}) > 1


def failing_gateway(kind: str, release: threading.Event) -> Callable[..., Any]:
    """A reply of each failing kind, and the error class it must raise."""
    if kind == "http-500":
        return Gateway.json({"result": False}, status=500)
    if kind == "garbage":
        return lambda request: Response("<html>oops", content_type="text/html")
    if kind == "result-false":
        return Gateway.json({"result": False, "ts": 1})
    if kind == "no-data":
        return Gateway.json(load(CAPTURED / "maintenance.heartbeat.response.json"))

    def slow(request: Request) -> Response:
        release.wait(5)
        return Response(json.dumps(registry_reply("b")), content_type="application/json")

    return slow


FAILURES = {
    "http-500": GatewayUnavailable,
    "garbage": RegistryReplyMalformed,
    "result-false": RegistryRejected,
    "no-data": RegistryReplyMalformed,
    "slow": GatewayUnavailable,
}


class TestReloadFailures:
    @pytest.mark.parametrize("kind", sorted(FAILURES))
    def test_failed_reload_keeps_the_last_good_registry(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager], kind: str
    ) -> None:
        """Each kind of failure raises its error, keeps the snapshot and shows in the status."""
        gateway = Gateway(maintenance_server, registry_reply("a"))
        settings = settings_for(maintenance_server, registry_timeout=0.2)
        manager = make(managers, maintenance_server, settings=settings, auto_reload=False)
        before = manager.registry
        release = threading.Event()
        gateway.reply = failing_gateway(kind, release)
        try:
            with pytest.raises(FAILURES[kind]) as caught:
                manager.reload()
        finally:
            release.set()
        assert manager.registry is before
        status = manager.status
        assert status.consecutive_failures == 1
        assert status.reloads == 1
        assert status.last_error == str(caught.value)
        assert f"127.0.0.1:{maintenance_server.port}/getRegistry" in status.last_error
        assert status.last_error_at is not None
        assert status.last_success is not None
        assert status.last_error_at >= status.last_success
        gateway.reply = Gateway.json(registry_reply("b"))
        assert tag_of(manager.reload()) == "b"
        assert manager.status.consecutive_failures == 0
        assert manager.status.last_error == status.last_error

    @pytest.mark.usefixtures("fast")
    def test_failed_explicit_reload_brings_the_background_retry_forward(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """After a failed reload() the sleeping thread retries soon, not at the next interval."""
        gateway = Gateway(maintenance_server, registry_reply("a"))
        manager = make(managers, maintenance_server)
        assert manager.status.next_reload_in is not None
        assert manager.status.next_reload_in > 60
        gateway.reply = Gateway.json({"result": False}, status=200)
        with pytest.raises(RegistryRejected):
            manager.reload()
        gateway.reply = Gateway.json(registry_reply("b"))
        assert wait_until(lambda: tag_of(manager.registry) == "b")
        assert manager.status.consecutive_failures == 0

    def test_gateway_down_keeps_the_last_good_registry(
        self, managers: list[RegistryManager]
    ) -> None:
        """With the gateway gone (port closed) the snapshot stays and the status says why."""
        server = HTTPServer(host="127.0.0.1", port=0)
        server.start()
        Gateway(server, registry_reply("a"))
        manager = make(managers, server.port, auto_reload=False)
        before = manager.registry
        server.stop()
        with pytest.raises(GatewayUnavailable, match="cannot reach"):
            manager.reload()
        assert manager.registry is before
        assert manager.status.consecutive_failures == 1
        assert "SOAJS_REGISTRY_API" in (manager.status.last_error or "")

    @pytest.mark.usefixtures("fast")
    def test_background_failures_are_logged_and_recovered(
        self,
        maintenance_server: HTTPServer,
        managers: list[RegistryManager],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The thread logs failed reloads without secrets, keeps the snapshot, then recovers."""
        gateway = Gateway(maintenance_server, registry_reply("a", interval_ms=30))
        caplog.set_level(logging.WARNING, logger="soajs.registry")
        manager = make(managers, maintenance_server)
        before = manager.registry
        gateway.reply = Gateway.json({"oops": True}, status=500)
        assert wait_until(lambda: manager.status.consecutive_failures >= 3)
        assert manager.registry is before
        warnings_logged = [r for r in caplog.records if r.name == "soajs.registry"]
        assert warnings_logged
        assert "keeping the registry" in warnings_logged[0].getMessage()
        assert "HTTP 500" in warnings_logged[0].getMessage()
        for secret in SECRETS:
            assert secret not in caplog.text
        gateway.reply = Gateway.json(registry_reply("b", interval_ms=30))
        assert wait_until(lambda: manager.status.consecutive_failures == 0)
        assert tag_of(manager.registry) == "b"
        assert manager.status.running is True


class TestBackoff:
    @pytest.mark.usefixtures("fast")
    def test_failures_back_off_instead_of_hammering(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """A failing gateway sees a handful of retries, not one per floor tick."""
        gateway = Gateway(maintenance_server, registry_reply("a", interval_ms=400))
        calls: list[float] = []

        def failing(request: Request) -> Response:
            calls.append(time.monotonic())
            return Response("{}", status=503)

        manager = make(managers, maintenance_server)
        gateway.reply = failing
        time.sleep(1.5)
        manager.stop()
        # The floor is 10 ms here: without backoff that is ~110 calls after the first reload at
        # 400 ms. Doubling from 10 ms and capped at the 400 ms interval, at most 8 fit.
        assert 3 <= len(calls) <= 10
        assert manager.status.consecutive_failures == len(calls)
        gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
        assert all(gap >= 0.01 for gap in gaps)


class TestConcurrentReaders:
    @pytest.mark.usefixtures("fast")
    def test_readers_never_see_half_a_swap(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """8 reader threads during continuous reloads see no error and whole snapshots only."""
        replies = [registry_reply("a", interval_ms=1), registry_reply("b", interval_ms=1)]
        served = [0]
        gateway = Gateway(maintenance_server, replies[0])

        def alternate(request: Request) -> Response:
            served[0] += 1
            body = json.dumps(replies[served[0] % 2])
            return Response(body, content_type="application/json")

        gateway.reply = alternate
        manager = make(managers, maintenance_server)
        stop = threading.Event()
        errors: list[BaseException] = []
        seen: set[str] = set()
        reads = [0]

        def read() -> None:
            try:
                while not stop.is_set():
                    snapshot = manager.registry
                    seen.add(tag_of(snapshot))
                    assert manager.get_database("main").prefix in {"a", "b"}
                    assert manager.get_all_databases()["main"].name in {"main_a", "main_b"}
                    reads[0] += 1
                    time.sleep(0)  # let the reloads have the GIL too
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(8)]
        for reader in readers:
            reader.start()
        try:
            for _ in range(60):
                manager.reload()
        finally:
            stop.set()
            for reader in readers:
                reader.join(5)
        assert errors == []
        assert seen == {"a", "b"}
        assert reads[0] > 100
        assert manager.status.reloads >= 60


class TestStartup:
    def test_gateway_down_fails_at_once(
        self, closed_port: int, managers: list[RegistryManager]
    ) -> None:
        """By default a gateway that is down is a GatewayUnavailable naming the URL."""
        with pytest.raises(GatewayUnavailable, match=f"127.0.0.1:{closed_port}/getRegistry"):
            make(managers, closed_port)

    @pytest.mark.usefixtures("fast")
    def test_bounded_wait_gives_up(self, closed_port: int, managers: list[RegistryManager]) -> None:
        """With a start-up wait, the error comes once the wait is over and says so."""
        with pytest.raises(GatewayUnavailable, match=r"SOAJS_REGISTRY_STARTUP_WAIT=0\.2s"):
            make(managers, closed_port, startup_wait=0.2)

    @pytest.mark.usefixtures("fast")
    def test_bounded_wait_succeeds_when_the_gateway_appears(
        self, closed_port: int, managers: list[RegistryManager]
    ) -> None:
        """A gateway that comes up during the wait is used."""
        outcome: list[Any] = []
        settings = settings_for(closed_port, registry_startup_wait=10)

        def construct() -> None:
            try:
                outcome.append(make(managers, closed_port, settings=settings, auto_reload=False))
            except BaseException as exc:
                outcome.append(exc)

        starter = threading.Thread(target=construct)
        starter.start()
        time.sleep(0.3)
        server = HTTPServer(host="127.0.0.1", port=closed_port)
        Gateway(server, registry_reply("a"))
        server.start()
        try:
            starter.join(10)
        finally:
            server.stop()
        assert len(outcome) == 1
        assert isinstance(outcome[0], RegistryManager)
        assert tag_of(outcome[0].registry) == "a"
        assert outcome[0].status.consecutive_failures == 0
        assert outcome[0].status.last_error is not None

    @pytest.mark.usefixtures("fast")
    def test_refusal_is_not_waited_for(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """result: false at start-up is raised at once, even with a wait."""
        gateway = Gateway(maintenance_server, registry_reply())
        gateway.reply = Gateway.json({"result": False})
        with pytest.raises(RegistryRejected):
            make(managers, maintenance_server, startup_wait=5)
        assert registry_requests(maintenance_server) == 1


class _GatedClient(RegistryClient):
    """Answers ``replies`` in turn; the first call waits until ``release`` is set."""

    def __init__(self, *replies: dict[str, Any]) -> None:
        super().__init__("http://gated.invalid")
        self.replies = list(replies)
        self.release = threading.Event()
        self.entered = threading.Event()
        self._calls = 0
        self._count = threading.Lock()

    def fetch(self, env: str, service_name: str) -> Registry:
        with self._count:
            turn, self._calls = self._calls, self._calls + 1
        if turn == 0:
            self.entered.set()
            self.release.wait(10)
        return Registry.from_wire(self.replies[turn]["data"])


class TestBackgroundStart:
    @pytest.mark.usefixtures("fast")
    def test_first_load_in_the_background_retries_until_the_gateway_answers(
        self, closed_port: int, managers: list[RegistryManager]
    ) -> None:
        """start_in_background() returns at once and loads once the gateway comes up."""
        manager = make(managers, closed_port, autostart=False)
        manager.start_in_background()
        with pytest.raises(RegistryNotLoaded, match="SOAJS_REGISTRY_API"):
            manager.get_database("main")
        assert manager.loaded is False
        assert manager.wait_attempted(10)
        assert manager.status.consecutive_failures >= 1
        server = HTTPServer(host="127.0.0.1", port=closed_port)
        Gateway(server, registry_reply("a"))
        server.start()
        try:
            assert manager.wait_loaded(10)
        finally:
            server.stop()
        assert tag_of(manager.registry) == "a"

    def test_retries_while_nothing_is_loaded_are_capped(self) -> None:
        """Before any load a failure is retried within STARTUP_RETRY_CAP, not hourly."""
        manager = RegistryManager(
            "hello", settings=Settings(registry_api="127.0.0.1:9"), autostart=False
        )
        for _ in range(20):
            manager._record_failure(GatewayUnavailable("down"))
        next_in = (manager._next_reload_at or 0.0) - time.monotonic()
        assert next_in <= manager_module.STARTUP_RETRY_CAP * 1.5

    def test_an_older_reload_never_replaces_a_newer_one(
        self, managers: list[RegistryManager]
    ) -> None:
        """Two overlapping reloads: the one started last wins, whichever ends last."""
        client = _GatedClient(registry_reply("a"), registry_reply("b"))
        manager = RegistryManager(
            "hello", auto_reload=False, autostart=False, client=client, settings=Settings()
        )
        managers.append(manager)
        older: list[Registry] = []
        first = threading.Thread(target=lambda: older.append(manager.reload()))
        first.start()
        assert client.entered.wait(10)
        assert tag_of(manager.reload()) == "b"
        client.release.set()
        first.join(10)
        assert tag_of(older[0]) == "b"
        assert tag_of(manager.registry) == "b"
        assert manager.status.reloads == 1


class TestStop:
    @pytest.mark.usefixtures("fast")
    def test_stop_joins_and_no_thread_comes_back(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """stop() ends the thread; reload() still works; no background reloads follow."""
        Gateway(maintenance_server, registry_reply("a", interval_ms=10))
        manager = make(managers, maintenance_server)
        thread = manager._thread
        assert thread is not None
        assert wait_until(lambda: manager.status.reloads >= 2)
        manager.stop()
        manager.stop()
        assert not thread.is_alive()
        assert manager.status.running is False
        assert manager.status.next_reload_in is None
        count = registry_requests(maintenance_server)
        assert tag_of(manager.reload()) == "a"
        time.sleep(0.2)
        assert registry_requests(maintenance_server) == count + 1
        assert manager.status.running is False

    @pytest.mark.usefixtures("fast")
    def test_start_after_stop_restarts(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """An explicit start() brings the thread back."""
        Gateway(maintenance_server, registry_reply("a", interval_ms=10))
        manager = make(managers, maintenance_server)
        manager.stop()
        reloads = manager.status.reloads
        manager.start()
        assert manager.status.running is True
        assert wait_until(lambda: manager.status.reloads >= reloads + 2)

    def test_stop_is_prompt_with_a_long_interval(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """A thread sleeping for an hour stops within the join bound."""
        Gateway(maintenance_server, registry_reply("a"))
        manager = make(managers, maintenance_server)
        thread = manager._thread
        assert thread is not None
        manager.stop(timeout=5)
        assert not thread.is_alive()


class TestSecrets:
    def test_nothing_secret_in_reprs(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """repr of the manager, the registry, the databases and the status hides secrets."""
        reply = registry_reply("a")
        reply["data"]["tenantMetaDB"]["urac"] = {
            "name": "#TENANT_NAME#_urac",
            "credentials": {"username": "u", "password": "main-db-password"},
        }
        Gateway(maintenance_server, reply)
        manager = make(managers, maintenance_server, auto_reload=False)
        texts = [
            repr(manager),
            str(manager.registry),
            repr(manager.registry),
            repr(manager.get_all_databases()),
            repr(manager.get_database("main")),
            repr(manager.service_config),
            repr(manager.status),
            repr(manager.deployer),
            repr(manager.get_custom()),
        ]
        for text in texts:
            for secret in SECRETS:
                assert secret not in text
        assert "hello" in texts[0]
        assert manager.get_database("main").credentials == {
            "username": "app",
            "password": DB_PASSWORD,
        }
        assert isinstance(manager.status, RegistryStatus)


class TestRegistration:
    def test_register_posts_the_config_body(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """register() POSTs build_register_body(config, settings) and answers True."""
        Gateway(maintenance_server, registry_reply())
        maintenance_server.expect_request("/register", method="POST").respond_with_json(
            load(CAPTURED / "register.hello.response.json")
        )
        settings = settings_for(maintenance_server, srv_ip="10.1.2.3")
        config = Config(name="hello", group="test", port=4100, maintenance=None)
        manager = make(managers, maintenance_server, settings=settings, config=config)
        assert register_requests(maintenance_server) == []
        assert manager.register() is True
        bodies = register_requests(maintenance_server)
        assert bodies == [build_register_body(config, settings)]
        assert bodies[0]["mw"] is True
        assert bodies[0]["ip"] == "10.1.2.3"

    def test_identity_precedence(self, maintenance_server: HTTPServer) -> None:
        """Arguments win over the config, and the config over SOAJS_SERVICE_*."""
        Gateway(maintenance_server, registry_reply())
        settings = settings_for(
            maintenance_server, service_group="from-settings", service_port=4300
        )
        config = Config(name="hello", group="from-config", port=4200, description="d")
        with RegistryManager(
            service_port=4100, service_ip="10.0.0.9", config=config, settings=settings
        ) as manager:
            registered = manager.registration_config()
        assert (registered.name, registered.group, registered.port) == (
            "hello",
            "from-config",
            4100,
        )
        assert registered.ip == "10.0.0.9"
        assert registered.description == "d"
        with RegistryManager(settings=settings, service_name="hello", auto_reload=False) as manager:
            from_settings = manager.registration_config()
        assert (from_settings.group, from_settings.port) == ("from-settings", 4300)
        with RegistryManager(config=config, settings=settings, auto_reload=False) as manager:
            assert manager.registration_config() is config

    def test_refusal_is_a_warning(
        self,
        maintenance_server: HTTPServer,
        managers: list[RegistryManager],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """result: false logs a warning and answers False."""
        Gateway(maintenance_server, registry_reply())
        maintenance_server.expect_request("/register").respond_with_json({"result": False})
        caplog.set_level(logging.WARNING, logger="soajs.registry")
        settings = settings_for(maintenance_server, service_group="test", service_port=4100)
        manager = make(managers, maintenance_server, settings=settings)
        assert manager.register() is False
        assert "registration of hello failed" in caplog.text
        assert "result: false" in caplog.text

    def test_refusal_raises_when_strict(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """With SOAJS_REGISTER_STRICT a refusal raises RegistryRejected."""
        Gateway(maintenance_server, registry_reply())
        maintenance_server.expect_request("/register").respond_with_json({"result": False})
        settings = settings_for(
            maintenance_server, service_group="test", service_port=4100, register_strict=True
        )
        manager = make(managers, maintenance_server, settings=settings)
        with pytest.raises(RegistryRejected, match="/register"):
            manager.register()

    def test_gateway_down_is_a_warning(self, managers: list[RegistryManager]) -> None:
        """A gateway gone at registration time answers False, not an exception."""
        server = HTTPServer(host="127.0.0.1", port=0)
        server.start()
        Gateway(server, registry_reply())
        settings = settings_for(server, service_group="test", service_port=4100)
        manager = make(managers, server.port, settings=settings, auto_reload=False)
        server.stop()
        assert manager.register() is False

    def test_ha_deployments_skip_registration(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """With SOAJS_DEPLOY_HA nothing is sent."""
        Gateway(maintenance_server, registry_reply())
        settings = settings_for(
            maintenance_server,
            deploy_ha="kubernetes",
            deploy_manual=True,
            service_group="test",
            service_port=4100,
        )
        manager = make(managers, maintenance_server, settings=settings)
        assert manager.registration_enabled is False
        assert manager.register() is False
        assert manager.start_registration() is False
        assert register_requests(maintenance_server) == []

    def test_registration_enabled(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """registration_enabled follows SOAJS_DEPLOY_MANUAL."""
        Gateway(maintenance_server, registry_reply())
        on = make(
            managers,
            maintenance_server,
            settings=settings_for(maintenance_server, deploy_manual=True),
        )
        off = make(managers, maintenance_server, auto_reload=False)
        assert (on.registration_enabled, off.registration_enabled) == (True, False)

    @pytest.mark.usefixtures("fast")
    def test_start_registration_repeats_until_stop(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """start_registration() registers now and again every interval, until stop()."""
        Gateway(maintenance_server, registry_reply())
        maintenance_server.expect_request("/register").respond_with_json(
            load(CAPTURED / "register.hello.response.json")
        )
        settings = settings_for(
            maintenance_server,
            service_group="test",
            service_port=4100,
            reregister_interval=0.02,
            deploy_manual=True,
        )
        manager = make(managers, maintenance_server, settings=settings, auto_reload=False)
        assert manager.status.running is False
        assert manager.start_registration() is True
        assert manager.status.running is True
        assert manager.status.next_reload_in is None
        assert wait_until(lambda: len(register_requests(maintenance_server)) >= 4)
        manager.stop()
        count = len(register_requests(maintenance_server))
        time.sleep(0.1)
        assert len(register_requests(maintenance_server)) == count
        assert registry_requests(maintenance_server) == 1

    @pytest.mark.usefixtures("fast")
    def test_first_registration_brings_the_next_reload_forward(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """A snapshot without the service's own entry is reloaded soon after it registers."""
        before = load(CAPTURED / "getRegistry.dev.hello.before-register.response.json")
        after = load(CAPTURED / "getRegistry.dev.hello.after-register.response.json")
        gateway = Gateway(maintenance_server, before)
        maintenance_server.expect_request("/register").respond_with_json(
            load(CAPTURED / "register.hello.response.json")
        )
        settings = settings_for(maintenance_server, service_group="test", service_port=4100)
        manager = make(managers, maintenance_server, settings=settings)
        assert "hello" not in manager.registry.services
        assert manager.status.next_reload_in is not None
        assert manager.status.next_reload_in > 60
        gateway.reply = Gateway.json(after)
        assert manager.register() is True
        assert wait_until(lambda: "hello" in manager.registry.services)
        assert registry_requests(maintenance_server) == 2
        assert manager.register() is True
        time.sleep(0.1)
        assert registry_requests(maintenance_server) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestFork:
    @pytest.mark.usefixtures("fast")
    def test_forked_child_reloads_on_its_own(
        self, maintenance_server: HTTPServer, managers: list[RegistryManager]
    ) -> None:
        """A child forked while the thread runs (gunicorn --preload) gets its own thread."""
        Gateway(maintenance_server, registry_reply("a", interval_ms=20))
        manager = make(managers, maintenance_server)
        assert wait_until(lambda: manager.status.reloads >= 2)

        def child_reloads_on_its_own() -> bool:
            start = manager.status.reloads
            reloaded = wait_until(lambda: manager.status.reloads >= start + 3, timeout=5)
            return reloaded and manager.status.running

        assert exit_code_in_forked_child(child_reloads_on_its_own) == 0
        assert manager.status.running is True


class TestSeedReadme:
    def test_registry_manager_snippet_runs_as_written(
        self, maintenance_server: HTTPServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The seed README's Registry Manager snippet runs against a local gateway."""
        text = SEED_README.read_text(encoding="utf-8")
        section = text[text.index("### Registry Manager") :]
        snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL)
        assert snippet is not None
        code = snippet.group(1)
        assert 'registry.get_database("main")' in code
        reply = registry_reply("a")
        reply["data"]["services"]["auth-service"] = {"group": "auth", "port": 4300}
        maintenance_server.expect_request(
            "/getRegistry",
            query_string={"env": "dev", "serviceName": "my-service", "type": "service"},
        ).respond_with_json(reply)
        monkeypatch.setenv("SOAJS_REGISTRY_API", f"127.0.0.1:{maintenance_server.port}")
        namespace: dict[str, Any] = {}
        exec(compile(code, str(SEED_README), "exec"), namespace)  # noqa: S102
        assert namespace["db"].name == "main_a"
        assert namespace["service"].port == 4300
        assert set(namespace["all_dbs"]) == {"provision", "session", "main"}
        assert namespace["registry"].status.running is False
        assert registry_requests(maintenance_server) == 2


def test_registry_module_exports() -> None:
    """The manager names are reachable from soajs and soajs.registry."""
    import soajs

    assert soajs.RegistryManager is RegistryManager
    assert soajs.RegistryStatus is RegistryStatus
    assert copy.copy(RegistryStatus(None, None, None, 0, 0, None, None, False)).reloads == 0

"""The /register body: the gateway's field names and order, compared with real captures."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixture_paths import FIXTURES

from soajs import Config, Settings
from soajs import registration as registration_module
from soajs.registration import build_register_body
from soajs.testing import FakeRegistryManager

CAPTURED = FIXTURES / "captured"
CAPTURED_NAMES = ["hello", "caller", "nohb", "fallback", "pub", "secure"]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def captured_body(name: str) -> dict[str, Any]:
    return load(CAPTURED / f"register.{name}.request.json")


def config_from_body(body: dict[str, Any]) -> Config:
    """The Config a user would write to produce this body (wire names, minus the mw flag)."""
    fields = {key: value for key, value in body.items() if key not in ("mw", "ip")}
    return Config.model_validate(fields)


@pytest.fixture
def settings() -> Settings:
    return Settings(srv_ip="127.0.0.1")


class TestBuildRegisterBody:
    def test_hello_matches_the_capture_exactly(self, settings: Settings) -> None:
        """The body for the captured `hello` service equals the capture, key order included."""
        config = Config(
            name="hello",
            group="test",
            port=4100,
            version="1",
            sub_type="soajs",
            description="capture service",
            oauth=False,
            urac=False,
            urac_profile=False,
            urac_acl=False,
            urac_config=False,
            urac_group_config=False,
            tenant_profile=True,
            provision_acl=True,
            request_timeout=30,
            request_timeout_renewal=5,
            maintenance={"readiness": "/heartbeat", "port": {"type": "maintenance"}},
        )
        body = build_register_body(config, settings)
        expected = captured_body("hello")
        assert body == expected
        assert list(body) == list(expected)
        assert json.dumps(body) == json.dumps(expected)

    @pytest.mark.parametrize("name", CAPTURED_NAMES)
    def test_every_capture_is_reproduced(self, name: str, settings: Settings) -> None:
        """Each captured body is reproduced (the captures other than hello were sent without mw)."""
        expected = captured_body(name)
        body = build_register_body(config_from_body(expected), settings)
        assert body["mw"] is True
        if "mw" not in expected:
            body = {key: value for key, value in body.items() if key != "mw"}
        assert body == expected
        assert list(body) == list(expected)
        if "maintenance" in expected:
            assert list(body["maintenance"]) == list(expected["maintenance"])

    def test_caller_interconnect_from_snake_case(self, settings: Settings) -> None:
        """inter_connect targets become the gateway's interConnect list of {name, version}."""
        config = Config(
            name="caller",
            group="test",
            port=4300,
            oauth=False,
            tenant_profile=False,
            provision_acl=False,
            request_timeout=30,
            request_timeout_renewal=5,
            inter_connect=[{"name": "hello", "version": "1"}],
            maintenance={"readiness": "/heartbeat", "port": {"type": "maintenance"}},
        )
        body = build_register_body(config, settings)
        assert body["interConnect"] == [{"name": "hello", "version": "1"}]
        assert {k: v for k, v in body.items() if k != "mw"} == captured_body("caller")

    def test_upstream_controller_test_body(self, settings: Settings) -> None:
        """The gateway's own test body is reproduced apart from the fields it ignores."""
        upstream = load(FIXTURES / "upstream" / "register.request.controller-test.json")
        config = Config(
            name="golangpub",
            group="Custom Services",
            version="1.2",
            port=4800,
            request_timeout=30,
            request_timeout_renewal=5,
            urac=True,
            urac_profile=False,
            urac_acl=False,
            provision_acl=False,
            oauth=False,
            maintenance={"port": {"type": "inherit"}, "readiness": "/heartbeat"},
        )
        body = build_register_body(config, settings)
        # swagger is ignored by the gateway; commands: null is the Go client's zero value.
        ignored = {"swagger"}
        expected = {key: value for key, value in upstream.items() if key not in ignored}
        expected["maintenance"] = {
            key: value for key, value in expected["maintenance"].items() if value is not None
        }
        assert body == expected

    def test_minimal_config_sends_only_what_is_set(self, settings: Settings) -> None:
        """Unset flags are omitted; extKeyRequired is always sent and mw is always true."""
        body = build_register_body(Config(name="svc", group="g", port=4000), settings)
        assert body == {
            "name": "svc",
            "group": "g",
            "port": 4000,
            "ip": "127.0.0.1",
            "type": "service",
            "version": "1",
            "extKeyRequired": True,
            "mw": True,
        }
        assert "middleware" not in body

    def test_ip_comes_from_settings_unless_configured(self) -> None:
        """SOAJS_SRVIP is registered when the config has no ip; the config's ip wins otherwise."""
        settings = Settings(srv_ip="10.1.2.3")
        assert build_register_body(Config(name="a", group="g", port=1), settings)["ip"] == (
            "10.1.2.3"
        )
        config = Config(name="a", group="g", port=1, ip="10.9.9.9")
        assert build_register_body(config, settings)["ip"] == "10.9.9.9"

    def test_port_host_and_custom_maintenance_port(self, settings: Settings) -> None:
        """portHost comes just before mw, and a custom maintenance port keeps its value."""
        config = Config(
            name="a",
            group="g",
            port=4000,
            port_host=30400,
            maintenance={"readiness": "/ready", "port": {"type": "custom", "value": 4555}},
        )
        body = build_register_body(config, settings)
        assert list(body)[-3:] == ["maintenance", "portHost", "mw"]
        assert body["portHost"] == 30400
        assert body["maintenance"] == {
            "readiness": "/ready",
            "port": {"type": "custom", "value": 4555},
        }

    def test_body_is_json_serialisable(self, settings: Settings) -> None:
        """The body survives json.dumps, including nested models and commands."""
        config = Config(
            name="a",
            group="g",
            port=4000,
            inter_connect=[{"name": "b"}],
            maintenance={
                "readiness": "/ready",
                "port": {"type": "inherit"},
                "commands": [{"label": "Reload", "path": "/reload"}],
            },
        )
        text = json.dumps(build_register_body(config, settings))
        assert json.loads(text)["maintenance"]["commands"] == [
            {"label": "Reload", "path": "/reload"}
        ]
        assert json.loads(text)["interConnect"] == [{"name": "b"}]

    def test_ext_key_required_false_is_sent(self, settings: Settings) -> None:
        """A public service sends extKeyRequired: false explicitly, as the captured `pub` does."""
        config = Config(name="pub", group="test", port=4200, ext_key_required=False)
        assert build_register_body(config, settings)["extKeyRequired"] is False


class TestNodeSoaJson:
    def test_soa_json_registers_like_the_current_format(self, settings: Settings) -> None:
        """A Node soa.json builds the /register body its current-format twin builds."""
        soa_json = FIXTURES / "upstream" / "service-config.nodejs-test-soa.json"
        data = load(soa_json)
        current = {
            "name": data["serviceName"],
            "group": data["serviceGroup"],
            "port": data["servicePort"],
            "version": str(data["serviceVersion"]),
            "type": data["type"],
            "prerequisites": data["prerequisites"],
            **{
                key: data[key]
                for key in (
                    "requestTimeout",
                    "requestTimeoutRenewal",
                    "extKeyRequired",
                    "urac",
                    "urac_Profile",
                    "urac_ACL",
                    "provision_ACL",
                    "oauth",
                    "interConnect",
                    "maintenance",
                )
            },
        }
        from_soa_json = build_register_body(Config.from_file(soa_json), settings)
        expected = build_register_body(Config.model_validate(current), settings)
        assert json.dumps(from_soa_json) == json.dumps(expected)
        assert from_soa_json["name"] == "express"
        assert from_soa_json["version"] == "1"
        assert from_soa_json["port"] == 4381
        assert "serviceName" not in from_soa_json
        assert "tab" not in from_soa_json


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class TestRegistrar:
    @pytest.fixture(autouse=True)
    def fast(self, monkeypatch: pytest.MonkeyPatch, no_soajs_env: None) -> None:
        """Let re-registration schedules play out in milliseconds, with no SOAJS_* variable."""
        monkeypatch.setattr(registration_module, "MIN_REREGISTER_INTERVAL", 0.01)

    @staticmethod
    def fake(**settings: Any) -> FakeRegistryManager:
        options = {"accept_registrations": settings.pop("accept_registrations", True)}
        return FakeRegistryManager(
            config=Config(name="hello", group="test", port=4100, version="1"),
            settings=Settings(deploy_manual=True, **settings),
            autostart=False,
            **options,
        )

    def test_start_registers_then_repeats_until_stop(self) -> None:
        """start() registers at once, again every interval, and never after stop()."""
        manager = self.fake(reregister_interval=0.02)
        registrar = manager.registrar
        assert registrar.start() is True
        assert registrar.running is True
        assert wait_until(lambda: len(manager.registrations) >= 3)
        registrar.stop()
        assert registrar.running is False
        count = len(manager.registrations)
        time.sleep(0.1)
        assert len(manager.registrations) == count

    def test_a_refused_registration_is_retried_on_schedule(self) -> None:
        """A refusal answers False and the next registrations still happen."""
        manager = self.fake(reregister_interval=0.02, accept_registrations=False)
        registrar = manager.registrar
        try:
            assert registrar.start() is False
            assert wait_until(lambda: len(manager.registrations) >= 3)
        finally:
            registrar.stop()

    def test_interval_zero_registers_once_without_a_thread(self) -> None:
        """SOAJS_REREGISTER_INTERVAL=0 registers now and starts no thread."""
        manager = self.fake(reregister_interval=0)
        assert manager.registrar.interval is None
        assert manager.registrar.start() is True
        assert manager.registrar.thread is None
        assert len(manager.registrations) == 1

    def test_ha_never_registers(self) -> None:
        """Under SOAJS_DEPLOY_HA nothing is sent and nothing repeats."""
        manager = self.fake(deploy_ha="kubernetes", reregister_interval=0.02)
        registrar = manager.registrar
        assert registrar.enabled is False
        assert registrar.interval is None
        assert registrar.start() is False
        assert registrar.thread is None
        assert manager.registrations == []

    def test_start_when_listening_runs_before_then_repeats(self) -> None:
        """Once the port listens, before() runs, then the first and the repeated registrations."""
        order: list[str] = []
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            manager = FakeRegistryManager(
                config=Config(name="hello", group="test", port=port, version="1"),
                settings=Settings(deploy_manual=True, reregister_interval=0.02),
                autostart=False,
            )
            manager.registrar.start_when_listening(
                5.0, before=lambda: order.append(f"before {len(manager.registrations)}")
            )
            try:
                assert wait_until(lambda: len(manager.registrations) >= 3)
            finally:
                manager.stop()
        assert order == ["before 0"]
        assert manager.registrar.running is False

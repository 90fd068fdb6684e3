"""The maintenance API of the local gateway, compared with the captured real gateway."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from soajs.gateway import LocalGateway

from .conftest import captured, register, registered
from .echo_service import EchoService


def dumps(value: Any) -> str:
    """Order-sensitive text of a JSON value."""
    return json.dumps(value)


def get_registry(gateway: LocalGateway, query: str) -> dict[str, Any]:
    reply: dict[str, Any] = httpx.get(f"{gateway.maintenance_url}/getRegistry?{query}").json()
    return reply


class TestGetRegistry:
    def test_envelope_and_top_level_keys_match_the_real_gateway(self, gateway):
        """The reply has the real envelope and the data keys in the real order."""
        real = captured("getRegistry.dev.hello.before-register.response.json")
        reply = get_registry(gateway, "env=dev&serviceName=hello&type=service")
        assert list(reply) == list(real)
        assert reply["service"] == real["service"]
        assert reply["result"] is True
        assert list(reply["data"]) == list(real["data"])

    def test_environment_parts_equal_the_real_registry(self, gateway):
        """serviceConfig (no cors, no oauth), deployer, custom and resources equal the capture."""
        real = captured("getRegistry.dev.hello.after-reloadRegistry.response.json")["data"]
        data = get_registry(gateway, "env=dev&serviceName=hello")["data"]
        # This gateway checks health every 200 ms and listens on a free port.
        real["serviceConfig"]["awareness"]["healthCheckInterval"] = 200
        real["serviceConfig"]["ports"]["controller"] = gateway.data_port
        for key in ("name", "environment", "domain", "port", "serviceConfig", "deployer"):
            assert dumps(data[key]) == dumps(real[key]), key
        assert "cors" not in data["serviceConfig"]
        assert "oauth" not in data["serviceConfig"]
        assert data["custom"] == {}
        assert data["resources"] == {}
        assert data["tenantMetaDB"] == {}

    def test_core_db_has_the_real_shape(self, gateway):
        """coreDB holds provision and session in the real key order with registryLocation."""
        real = captured("getRegistry.dev.hello.after-reloadRegistry.response.json")["data"]
        data = get_registry(gateway, "env=dev")["data"]
        assert list(data["coreDB"]) == list(real["coreDB"])
        for name in ("provision", "session"):
            assert list(data["coreDB"][name]) == list(real["coreDB"][name])
        location = data["coreDB"]["session"]["registryLocation"]
        assert location == {
            "l1": "coreDB",
            "l2": "session",
            "env": "dev",
            "timeLoaded": data["timeLoaded"],
        }

    def test_before_registering_only_the_controller_is_listed(self, gateway):
        """An unregistered requester sees only the controller entry."""
        real = captured("getRegistry.dev.hello.before-register.response.json")["data"]
        data = get_registry(gateway, "env=dev&serviceName=hello&type=service")["data"]
        assert list(data["services"]) == ["controller"]
        controller = dict(data["services"]["controller"])
        expected = dict(real["services"]["controller"])
        controller.pop("awarenessStats", None)
        expected.pop("awarenessStats")
        expected["port"] = gateway.data_port
        assert dumps(controller) == dumps(expected)
        assert data["awareness"] == {"host": "127.0.0.1", "port": gateway.data_port}

    def test_a_registered_requester_sees_only_its_group_and_port(self, gateway, echo):
        """After /register, type=service lists the requester reduced to {group, port}."""
        service = echo()
        register(gateway, "hello", service.port)
        register(gateway, "pub", service.port + 1)
        data = get_registry(gateway, "env=dev&serviceName=hello&type=service")["data"]
        assert list(data["services"]) == ["controller", "hello"]
        assert dumps(data["services"]["hello"]) == dumps({"group": "test", "port": service.port})
        assert "daemons" not in data

    def test_other_types_get_every_service_and_the_daemons(self, gateway, echo):
        """type=daemon lists every service in full, and the daemons."""
        service = echo()
        register(gateway, "hello", service.port)
        data = get_registry(gateway, "env=dev&serviceName=hello&type=daemon")["data"]
        assert set(data["services"]) == {"controller", "hello"}
        assert "versions" in data["services"]["hello"]
        assert data["daemons"] == {}

    def test_no_service_name_lists_only_the_controller(self, gateway, echo):
        """Without serviceName only the controller is listed, as captured."""
        real = captured("getRegistry.dev.no-serviceName.response.json")["data"]
        register(gateway, "hello", echo().port)
        data = get_registry(gateway, "env=dev")["data"]
        assert list(data["services"]) == list(real["services"])

    def test_the_oauth_service_sees_the_oauth_settings(self, gateway):
        """serviceConfig.oauth is kept only for the requester named oauth."""
        data = get_registry(gateway, "env=dev&serviceName=oauth")["data"]
        assert data["serviceConfig"]["oauth"]["accessTokenLifetime"] == 7200
        assert "cors" not in data["serviceConfig"]

    def test_another_environment_is_refused_without_data(self, gateway):
        """An env the gateway does not serve answers result false and no data key."""
        reply = get_registry(gateway, "env=prod&serviceName=hello")
        assert reply["result"] is False
        assert "data" not in reply
        assert "errors" not in reply


class TestRegister:
    def test_json_reply_equals_the_captured_entry(self, gateway):
        """The reply data is the in-memory entry, exactly as the real gateway answers it."""
        for name in ("hello", "caller", "secure", "pub", "nohb", "fallback"):
            real = captured(f"register.{name}.response.json")
            reply = register(gateway, name, 41000 + len(name))
            expected = {**real["data"], "port": 41000 + len(name)}
            assert list(reply) == list(real)
            assert dumps(reply["data"]) == dumps(expected), name

    def test_query_form_is_accepted_with_string_values(self, seed_config):
        """With registerQueryForm, GET /register?... registers with the query values and v1."""
        real = captured("register.query-form.version-v1.response.json")["data"]
        options = seed_config.gateway.model_copy(update={"register_query_form": True})
        config = seed_config.model_copy(update={"gateway": options})
        with LocalGateway(config, port=0) as gateway:
            reply = httpx.get(
                f"{gateway.maintenance_url}/register",
                params={
                    "name": "badver",
                    "port": "4900",
                    "ip": "127.0.0.1",
                    "type": "service",
                    "version": "v1",
                },
            ).json()
        assert reply["result"] is True
        assert dumps(reply["data"]) == dumps(real)

    def test_refusals_answer_result_false_without_data(self, gateway):
        """A missing name or ip, a bad version or a missing port answer result false."""
        bodies = [
            {"ip": "127.0.0.1", "port": 4100, "version": "1", "type": "service"},
            {"name": "x", "port": 4100, "version": "1", "type": "service"},
            {"name": "x", "ip": "127.0.0.1", "port": 4100, "version": "e.e", "type": "service"},
            {"name": "x", "ip": "127.0.0.1", "version": "1", "type": "service"},
        ]
        for body in bodies:
            reply = httpx.post(f"{gateway.maintenance_url}/register", json=body).json()
            assert reply["result"] is False
            assert "data" not in reply

    def test_invalid_json_is_refused(self, gateway):
        """A body that is not JSON answers result false."""
        reply = httpx.post(f"{gateway.maintenance_url}/register", content=b"{nope").json()
        assert reply["result"] is False

    def test_a_persisted_port_cannot_be_taken_by_another_service(self, gateway):
        """With mw, a port already registered by another service is refused."""
        assert register(gateway, "hello", 42001)["result"] is True
        reply = register(gateway, "hello", 42001, name="other", mw=True)
        assert reply["result"] is False

    def test_a_non_service_type_goes_to_the_daemons(self, gateway):
        """type other than service registers a daemon."""
        body = {"name": "worker", "ip": "127.0.0.1", "port": 4600, "version": "1", "type": "daemon"}
        assert httpx.post(f"{gateway.maintenance_url}/register", json=body).json()["result"]
        data = get_registry(gateway, "env=dev&type=daemon")["data"]
        assert "worker" in data["daemons"]
        assert "worker" not in data["services"]

    def test_the_call_log_records_register_and_get_registry(self, gateway):
        """The gateway remembers the /register and /getRegistry calls it received."""
        register(gateway, "hello", 42002)
        get_registry(gateway, "env=dev&serviceName=hello&type=service")
        registrations = gateway.calls("/register")
        assert [call.body["name"] for call in registrations] == ["hello"]
        fetches = gateway.calls("/getRegistry")
        assert fetches[0].query == {"env": "dev", "serviceName": "hello", "type": "service"}
        gateway.clear_calls()
        assert gateway.calls() == []


class TestReload:
    def test_reload_keeps_mw_registrations_in_the_database_shape(self, gateway, echo):
        """After /reloadRegistry only mw registrations remain, rebuilt as the real gateway does."""
        real = captured("maintenance.reloadRegistry.response.json")
        port = echo().port
        register(gateway, "hello", port)
        for name in ("pub", "caller", "secure"):
            register(gateway, name, port + 10 + len(name))
        reply = httpx.get(f"{gateway.maintenance_url}/reloadRegistry").json()
        assert list(reply) == list(real)
        assert list(reply["data"]) == list(real["data"])
        assert list(reply["data"]["services"]) == ["controller", "hello"]
        expected = {**real["data"]["services"]["hello"], "port": port, "oport": port}
        assert dumps(reply["data"]["services"]["hello"]) == dumps(expected)
        data = get_registry(gateway, "env=dev&serviceName=pub&type=service")["data"]
        assert list(data["services"]) == ["controller"]

    def test_reload_from_python_drops_non_mw_registrations(self, gateway):
        """LocalGateway.reload() rebuilds the registry like /reloadRegistry."""
        register(gateway, "pub", 42003)
        assert "pub" in gateway.registry()["services"]
        gateway.reload()
        assert "pub" not in gateway.registry()["services"]


class TestOtherRoutes:
    def test_heartbeat_and_load_provision_answer_like_the_real_gateway(self, gateway):
        """/heartbeat and /loadProvision answer result true with no data."""
        for route in ("heartbeat", "loadProvision"):
            real = captured(f"maintenance.{route}.response.json")
            reply = httpx.get(f"{gateway.maintenance_url}/{route}").json()
            real.pop("ts")
            assert isinstance(reply.pop("ts"), int)
            assert reply == real

    def test_an_unknown_path_answers_result_true_without_data(self, gateway):
        """A typo such as /getregistry "succeeds" with no data, as the real fallback does."""
        reply = httpx.get(f"{gateway.maintenance_url}/getregistry").json()
        assert reply["result"] is True
        assert "data" not in reply
        assert reply["service"]["route"] == "/getregistry"

    def test_awareness_stat_lists_health_statistics(
        self, gateway: LocalGateway, echo: Callable[..., EchoService]
    ):
        """/awarenessStat lists services and daemons with each host's health."""
        service = registered(gateway, echo, "hello")
        reply = httpx.get(f"{gateway.maintenance_url}/awarenessStat").json()
        assert list(reply["data"]) == ["services", "daemons"]
        stats = reply["data"]["services"]["hello"]["awarenessStats"]["127.0.0.1"]
        assert stats["healthy"] is True
        assert stats["version"] == "1"
        assert service.heartbeats > 0

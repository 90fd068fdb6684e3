"""The local gateway is safe to run on a laptop: what a web page, a bad registration or a
hostile path can do to it, and what its log shows."""

from __future__ import annotations

import asyncio
import copy
import http.client
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from soajs.gateway import GatewayConfig, GatewayConfigError, LocalGateway, default_dev_config
from soajs.gateway.config import DEV_EXT_KEY
from soajs.gateway.maintenance import CallLog, create_maintenance_app
from soajs.gateway.state import RegistryState

from .conftest import CURL_HEADERS, captured, gateway_command, register, registered
from .echo_service import EchoService

HELLO = {"name": "hello", "ip": "127.0.0.1", "port": 4100, "version": "1", "type": "service"}


def with_gateway_options(config: GatewayConfig, **options: Any) -> GatewayConfig:
    """A copy of ``config`` with ``gateway`` options changed (wire names)."""
    data = config.model_dump(by_alias=True)
    data["gateway"].update(options)
    return GatewayConfig.model_validate(data)


def error_codes(response: httpx.Response) -> list[int]:
    """The codes of a reply in the gateway's error format."""
    body = response.json()
    assert body["result"] is False
    codes: list[int] = body["errors"]["codes"]
    assert [detail["code"] for detail in body["errors"]["details"]] == codes
    return codes


def post_register(gateway: LocalGateway, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.maintenance_url}/register", json=body, headers=headers)


class TestRegisterPolicy:
    def test_a_text_plain_register_is_refused(self, gateway):
        """A text/plain POST (what a web page can send without a preflight) registers nothing."""
        response = httpx.post(
            f"{gateway.maintenance_url}/register",
            content=json.dumps(HELLO).encode(),
            headers={"content-type": "text/plain"},
        )
        assert response.status_code == 415
        assert error_codes(response) == [192]
        assert "hello" not in gateway.registry()["services"]

    def test_a_form_encoded_register_is_refused(self, gateway):
        """An HTML form post registers nothing."""
        response = httpx.post(f"{gateway.maintenance_url}/register", data=HELLO)
        assert response.status_code == 415
        assert "hello" not in gateway.registry()["services"]

    def test_json_with_a_charset_is_accepted(self, gateway):
        """application/json with parameters is JSON."""
        response = httpx.post(
            f"{gateway.maintenance_url}/register",
            content=json.dumps(HELLO).encode(),
            headers={"content-type": "application/json; charset=utf-8"},
        )
        assert response.status_code == 200
        assert response.json()["result"] is True

    @pytest.mark.parametrize("ip", ["169.254.169.254", "10.1.2.3", "192.168.1.20", "2001:db8::1"])
    def test_a_non_loopback_ip_is_refused(self, gateway, ip):
        """Registering a host outside loopback (cloud metadata, the LAN) is refused with 403."""
        response = post_register(gateway, {**HELLO, "ip": ip})
        assert response.status_code == 403
        assert error_codes(response) == [191]
        assert "hello" not in gateway.registry()["services"]

    @pytest.mark.parametrize("ip", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
    def test_loopback_ips_are_accepted(self, gateway, ip):
        """Every loopback address, IPv4-mapped ones included, may be registered."""
        response = post_register(gateway, {**HELLO, "ip": ip})
        assert response.json()["result"] is True

    @pytest.mark.parametrize("ip", ["localhost", "example.com", "127.0.0.1:80"])
    def test_an_ip_that_is_not_an_address_is_refused(self, gateway, ip):
        """Host names are refused: they could resolve anywhere later."""
        response = post_register(gateway, {**HELLO, "ip": ip})
        assert response.status_code == 403
        assert error_codes(response) == [191]
        assert "hello" not in gateway.registry()["services"]

    def test_register_allow_admits_a_network(self, seed_config):
        """gateway.registerAllow lets registrations in from the networks it lists."""
        config = with_gateway_options(seed_config, registerAllow=["10.0.0.0/8"])
        with LocalGateway(config, port=0) as gateway:
            assert post_register(gateway, {**HELLO, "ip": "10.1.2.3"}).json()["result"] is True
            refused = post_register(gateway, {**HELLO, "name": "x", "ip": "169.254.169.254"})
            assert refused.status_code == 403

    def test_a_bad_register_allow_entry_names_the_field(self, seed_config):
        """A registerAllow entry that is not a network is a configuration error."""
        with pytest.raises(Exception, match="registerAllow"):
            with_gateway_options(seed_config, registerAllow=["not a network"])

    def test_a_caller_outside_loopback_is_refused(self, seed_config):
        """A /register from a peer outside loopback and registerAllow is refused."""
        state = RegistryState(seed_config, host="127.0.0.1", data_port=4000)
        app = create_maintenance_app(state, CallLog())
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
        with_local = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))

        async def send(chosen: httpx.ASGITransport) -> httpx.Response:
            async with httpx.AsyncClient(transport=chosen, base_url="http://127.0.0.1") as client:
                return await client.post("/register", json=HELLO)

        refused = asyncio.run(send(transport))
        assert refused.status_code == 403
        assert error_codes(refused) == [191]
        assert asyncio.run(send(with_local)).json()["result"] is True

    def test_the_query_form_is_off_by_default(self, gateway):
        """GET /register?... (an <img> tag can send it) registers nothing unless enabled."""
        response = httpx.get(f"{gateway.maintenance_url}/register", params=HELLO)
        assert response.status_code == 405
        assert error_codes(response) == [196]
        assert "hello" not in gateway.registry()["services"]


class TestBrowserRequests:
    @pytest.mark.parametrize("route", ["/register", "/getRegistry", "/reloadRegistry", "/x"])
    def test_a_request_with_an_origin_is_refused(self, gateway, route):
        """Any maintenance request carrying Origin (sent by browsers) answers 403."""
        response = httpx.post(
            f"{gateway.maintenance_url}{route}",
            json=HELLO,
            headers={"origin": "http://evil.example"},
        )
        assert response.status_code == 403
        assert error_codes(response) == [190]
        assert "hello" not in gateway.registry()["services"]

    @pytest.mark.parametrize("site", ["cross-site", "same-site"])
    def test_a_cross_site_fetch_is_refused(self, gateway, site):
        """A browser's Sec-Fetch-Site cross-site or same-site answers 403, even for a GET."""
        response = httpx.get(
            f"{gateway.maintenance_url}/getRegistry?env=dev", headers={"sec-fetch-site": site}
        )
        assert response.status_code == 403
        assert error_codes(response) == [190]

    def test_a_host_name_that_is_not_the_gateway_is_refused(self, gateway):
        """A page re-pointed at 127.0.0.1 (DNS rebinding) sends its own Host: 403/197."""
        url = f"{gateway.maintenance_url}/getRegistry?env=dev"
        response = httpx.get(url, headers={"host": "evil.example"})
        assert response.status_code == 403
        assert error_codes(response) == [197]
        for host in (f"localhost:{gateway.maintenance_port}", "127.0.0.1", "[::1]:5000"):
            assert httpx.get(url, headers={"host": host}).json()["result"] is True

    def test_maintenance_hosts_lists_more_names(self, seed_config):
        """gateway.maintenanceHosts names the gateway may be called by (a container name)."""
        config = with_gateway_options(seed_config, maintenanceHosts=["Gateway"])
        with LocalGateway(config, port=0) as gateway:
            url = f"{gateway.maintenance_url}/getRegistry?env=dev"
            assert httpx.get(url, headers={"host": "gateway:5000"}).json()["result"] is True
            assert httpx.get(url, headers={"host": "other:5000"}).status_code == 403

    def test_a_url_typed_in_the_address_bar_is_served(self, gateway):
        """Sec-Fetch-Site: none (the user typed the URL) is not a cross-site request."""
        response = httpx.get(
            f"{gateway.maintenance_url}/getRegistry?env=dev", headers={"sec-fetch-site": "none"}
        )
        assert response.json()["result"] is True


SECRETS = ("soajs key lal massa", "test cookie secret", "test session secret")


class TestMaintenanceSecrets:
    def test_reload_registry_returns_no_secret(self, gateway):
        """/reloadRegistry shows the registry with the key password and secrets replaced."""
        response = httpx.get(f"{gateway.maintenance_url}/reloadRegistry")
        assert response.json()["result"] is True
        for secret in SECRETS:
            assert secret not in response.text
        config = response.json()["data"]["serviceConfig"]
        assert config["key"] == {"algorithm": "aes256", "password": "***"}
        assert config["cookie"]["secret"] == "***"

    def test_awareness_stat_returns_no_secret(self, gateway, echo):
        """/awarenessStat carries no secret either."""
        registered(gateway, echo, "hello")
        response = httpx.get(f"{gateway.maintenance_url}/awarenessStat")
        assert response.json()["data"]["services"]["hello"]
        for secret in SECRETS:
            assert secret not in response.text

    def test_get_registry_still_serves_what_services_need(self, gateway):
        """/getRegistry keeps the key password and secrets, as the real gateway serves them."""
        data = httpx.get(f"{gateway.maintenance_url}/getRegistry?env=dev").json()["data"]
        assert data["serviceConfig"]["key"]["password"] == "soajs key lal massa"
        assert data["serviceConfig"]["session"]["secret"] == "test session secret"


def acl_config() -> GatewayConfig:
    """The dev config where hello's /admin needs a logged-in user and the rest is public."""
    data = default_dev_config().model_dump(by_alias=True)
    acl = data["products"][0]["packages"][0]["acl"]["dev"]
    acl["hello"] = {"1": {"access": False, "apis": {"/admin": {"access": True}}}}
    return GatewayConfig.model_validate(data)


@pytest.fixture
def acl_gateway() -> Iterator[LocalGateway]:
    """A gateway whose package ACL protects hello's /admin."""
    with LocalGateway(acl_config(), port=0, health_check_interval=200) as running:
        yield running


def raw_get(gateway: LocalGateway, path: str, **headers: str) -> tuple[int, dict[str, Any]]:
    """GET ``path`` byte for byte (httpx would remove dot segments before sending)."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.data_port, timeout=10)
    try:
        connection.request("GET", path, headers={**CURL_HEADERS, **headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


class TestDotSegments:
    def test_the_protected_api_needs_a_user(self, acl_gateway, echo):
        """The ACL itself works: /hello/admin without a user answers 401/161."""
        service = registered(acl_gateway, echo, "hello")
        status, body = raw_get(acl_gateway, "/hello/admin", key=acl_gateway.ext_key)
        assert (status, body["errors"]["codes"]) == (401, [161])
        assert service.requests == []

    @pytest.mark.parametrize(
        "path",
        [
            "/hello/x/../admin",
            "/hello/v1/./admin",
            "/hello/x/%2e%2e/admin",
            "/hello/x/%2E./admin",
            "/hello/./admin",
            "/hello/x/..",
        ],
    )
    def test_dot_segments_are_refused(self, acl_gateway, echo, path):
        """A path with . or .. segments (plain or percent-encoded) never reaches the service."""
        service = registered(acl_gateway, echo, "hello")
        status, body = raw_get(acl_gateway, path, key=acl_gateway.ext_key)
        assert (status, body["errors"]["codes"]) == (400, [195])
        assert service.requests == []

    def test_a_percent_encoded_protected_path_is_checked_decoded(self, acl_gateway, echo):
        """/hello/adm%69n is /admin to the service, so it needs the user too."""
        service = registered(acl_gateway, echo, "hello")
        status, body = raw_get(acl_gateway, "/hello/adm%69n", key=acl_gateway.ext_key)
        assert (status, body["errors"]["codes"]) == (401, [161])
        assert service.requests == []

    def test_dots_inside_a_segment_are_fine(self, acl_gateway, echo):
        """Names such as /file.v1..txt are ordinary paths."""
        service = registered(acl_gateway, echo, "hello")
        status, _ = raw_get(acl_gateway, "/hello/file.v1..txt?x=1", key=acl_gateway.ext_key)
        assert status == 200
        assert service.requests[-1]["path"] == "/file.v1..txt?x=1"


class TestBadRegistrations:
    @pytest.mark.parametrize(
        "changes",
        [
            {"maintenance": {"readiness": "/heartbeat", "port": 5}},
            {"maintenance": {"readiness": 5, "port": {"type": "maintenance"}}},
            {"maintenance": "yes"},
            {"maintenance": {"readiness": "/h", "port": {"type": "custom", "value": "x"}}},
            {"port": -1},
            {"port": 70000},
            {"port": "99999999999999999999999"},
            {"port": [4100]},
            {"portHost": {"a": 1}, "mw": True},
            {"requestTimeout": 1e300},
            {"requestTimeout": -5},
            {"name": {"x": 1}},
            {"ip": ["127.0.0.1"]},
            {"type": 5},
            {"interConnect": "hello"},
            {"maintenance": {"readiness": "@evil.example/", "port": {"type": "maintenance"}}},
            {"name": "controller"},
        ],
    )
    def test_a_malformed_registration_is_refused_with_400(self, gateway, changes):
        """Values of the wrong type or out of range answer 400 in the gateway's error format."""
        response = post_register(gateway, {**HELLO, "mw": True, **changes})
        assert response.status_code == 400
        assert error_codes(response) == [194]
        assert "hello" not in gateway.registry()["services"]

    def test_a_declared_service_with_a_bad_maintenance_block_is_a_config_error(self, seed_config):
        """The configuration file's services are held to the same maintenance rule."""
        data = seed_config.model_dump(by_alias=True)
        data["services"] = [{"name": "odd", "port": 4100, "maintenance": {"port": 5}}]
        with pytest.raises(GatewayConfigError, match=r"services\.0\.maintenance"):
            GatewayConfig.from_mapping(data)

    def test_a_port_beyond_float_range_answers_400(self, gateway):
        """port: 1e400 (infinity once parsed) answers 400, not 500."""
        response = httpx.post(
            f"{gateway.maintenance_url}/register",
            content=json.dumps(HELLO)[:-1].encode() + b', "port": 1e400}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert error_codes(response) == [194]

    def test_a_bad_entry_after_a_reload_does_not_break_other_services(self, gateway, echo):
        """The PoC: maintenance.port 5 with mw, a reload, then a new service must still work."""
        bad = {**HELLO, "name": "bad", "port": 4999, "mw": True}
        bad["maintenance"] = {"readiness": "/heartbeat", "port": 5}
        post_register(gateway, bad)
        httpx.get(f"{gateway.maintenance_url}/reloadRegistry")
        service = echo()
        assert register(gateway, "hello", service.port)["result"] is True
        gateway.check_health()
        assert gateway.healthy_hosts("hello") == ["127.0.0.1"]
        response = httpx.get(
            f"{gateway.data_url}/hello/echo", headers={**CURL_HEADERS, "key": gateway.ext_key}
        )
        assert response.status_code == 200

    def test_an_entry_whose_probe_fails_is_unhealthy_alone(self, seed_config, echo, caplog):
        """A probe that raises marks that entry unhealthy and logs it; the others are checked."""
        service = echo()
        state = RegistryState(seed_config, host="127.0.0.1", data_port=4000)
        state.register({**HELLO, "port": service.port})
        # An entry no registration can produce any more (validation refuses it), as a
        # stand-in for whatever a future bug lets through.
        state.services["odd"] = {
            "port": service.port,
            "maintenance": {"readiness": "/heartbeat", "port": 5},
            "versions": {"1": {}},
            "hosts": {"1": ["127.0.0.1"], "latest": "1"},
        }

        async def check() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                await state.check_health(client)

        asyncio.run(check())
        assert state.is_healthy("hello", "1", "127.0.0.1")
        assert not state.is_healthy("odd", "1", "127.0.0.1")
        assert state.services["odd"]["awarenessStats"]["127.0.0.1"]["healthy"] is False
        assert any("odd" in record.getMessage() for record in caplog.records)


class TestMalformedInput:
    @pytest.mark.parametrize(
        "content",
        [
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
            b"{nope",
            b"",
            b"[1, 2]",
            b'"text"',
            b'{"name": "hello", "port": NaN}',
            b"\xff\xfe",
        ],
    )
    def test_malformed_bodies_answer_400(self, gateway, content):
        """Bodies that are not a reasonable JSON object answer 400, never 500."""
        response = httpx.post(
            f"{gateway.maintenance_url}/register",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert response.status_code in (400, 413)
        assert error_codes(response)[0] in (193, 194)

    def test_a_body_over_the_cap_answers_413(self, seed_config):
        """A body larger than gateway.maintenanceMaxBody is refused before it is parsed."""
        config = with_gateway_options(seed_config, maintenanceMaxBody=1024)
        with LocalGateway(config, port=0) as gateway:
            body = {**HELLO, "description": "x" * 2000}
            response = post_register(gateway, body)
            assert response.status_code == 413
            assert error_codes(response) == [193]
            chunked = httpx.post(
                f"{gateway.maintenance_url}/register",
                content=iter([json.dumps(body).encode()]),
                headers={"content-type": "application/json"},
            )
            assert chunked.status_code == 413
            assert post_register(gateway, HELLO).json()["result"] is True

    def test_nesting_deeper_than_the_limit_answers_400(self, seed_config):
        """gateway.maintenanceMaxDepth bounds how deeply a body may nest."""
        config = with_gateway_options(seed_config, maintenanceMaxDepth=4)
        with LocalGateway(config, port=0) as gateway:
            deep = {**HELLO, "custom": {"a": {"b": {"c": {"d": 1}}}}}
            assert post_register(gateway, deep).status_code == 400
            shallow = {**HELLO, "custom": {"a": 1}}
            assert post_register(gateway, shallow).json()["result"] is True


TOKEN_SECRET = "tokensecretvalue0123456789"


def wait_healthy(maintenance_url: str, service: str) -> None:
    """Poll /awarenessStat until a host of ``service`` is healthy (a gateway in another process)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stats = httpx.get(f"{maintenance_url}/awarenessStat").json()["data"]["services"]
        hosts = (stats.get(service) or {}).get("awarenessStats") or {}
        if any(host["healthy"] for host in hosts.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"{service} never became healthy")


class TestLogging:
    def test_no_credential_and_one_line_per_request_in_process(
        self, seed_config: GatewayConfig, echo: Callable[..., EchoService], caplog
    ):
        """At DEBUG, no key or token appears in any log line and each request is logged once."""
        caplog.set_level(logging.DEBUG)
        with LocalGateway(seed_config, port=0, health_check_interval=50) as gateway:
            registered(gateway, echo, "hello")
            key = gateway.ext_key
            for index in range(3):
                status, _ = raw_get(
                    gateway,
                    f"/hello/unique-{index}?access_token={TOKEN_SECRET}&key={key}&x=1&{TOKEN_SECRET}",
                    authorization=f"Bearer {TOKEN_SECRET}",
                )
                assert status == 200
            gateway.check_health()
        lines = [record.getMessage() for record in caplog.records]
        for line in lines:
            assert TOKEN_SECRET not in line
            assert key not in line
        for index in range(3):
            assert len([line for line in lines if f"/unique-{index}" in line]) == 1
        probes = [
            record
            for record in caplog.records
            if "/heartbeat" in record.getMessage() and record.levelno >= logging.INFO
        ]
        assert probes == []
        assert any("/heartbeat" in line for line in lines)  # probes are logged, at DEBUG

    def test_the_gateway_command_logs_each_event_once_without_secrets(self, echo):
        """`soajs gateway` at INFO: no credential, no probe line, each server event once."""
        service = echo()
        with gateway_command() as running:
            data_url = running.banner[0].split()[-1]
            maintenance_url = running.banner[1].split()[-1]
            body = copy.deepcopy(captured("register.hello.request.json"))
            body["port"] = service.port
            assert httpx.post(f"{maintenance_url}/register", json=body).json()["result"]
            wait_healthy(maintenance_url, "hello")
            connection = http.client.HTTPConnection(data_url.split("//")[1], timeout=10)
            connection.request(
                "GET", f"/hello/logged-path?access_token={TOKEN_SECRET}&key={DEV_EXT_KEY}"
            )
            assert connection.getresponse().status == 200
            connection.close()
            _, log = running.interrupt()
        assert TOKEN_SECRET not in log
        assert DEV_EXT_KEY not in log
        assert "/heartbeat" not in log
        events = [line.split(" ", 2)[-1] for line in log.splitlines() if line.strip()]
        assert [line for line in set(events) if events.count(line) > 1] == []
        assert len([line for line in events if "/logged-path" in line]) == 1

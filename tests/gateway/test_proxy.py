"""The data port of the local gateway: routing, errors and soajsinjectobj, against captures."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from soajs.gateway import GatewayConfig, LocalGateway, make_user_token

from .conftest import CURL_HEADERS, captured, register, registered

RAW_HEADERS = captured("soajsinjectobj.raw-header-strings.json")
JWT = captured("secure.jwt.json")


def call(gateway: LocalGateway, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{gateway.data_url}{path}", headers={**CURL_HEADERS, **headers})


def expected_header(name: str, gateway: LocalGateway, **ports: int) -> str:
    """A captured raw header with this gateway's port (and the targets' ports) put in."""
    text: str = RAW_HEADERS[name]
    text = text.replace(
        '"host":"127.0.0.1","port":4000', f'"host":"127.0.0.1","port":{gateway.data_port}'
    )
    for target, port in ports.items():
        text = text.replace(
            f'"name":"{target}","version":"1","host":"127.0.0.1","port":4100',
            f'"name":"{target}","version":"1","host":"127.0.0.1","port":{port}',
        )
    return text


def errors(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["result"] is False
    return body


def assert_error(response: httpx.Response, scenario: str) -> None:
    """The status and body equal the captured real gateway's answer for `scenario`."""
    real = captured("gateway-responses.json")[scenario]
    assert response.status_code == real["status"]
    assert errors(response) == real["body"]


class TestRouting:
    def test_a_registered_healthy_service_is_reached_with_the_key(self, gateway, echo):
        """The request reaches the service with the prefix stripped and the query kept."""
        service = registered(gateway, echo, "hello")
        response = call(gateway, "/hello/echo?x=1", key=gateway.ext_key)
        assert response.status_code == 200
        assert response.headers["x-echo"] == "yes"
        assert response.json()["data"]["path"] == "/echo?x=1"
        assert service.header("host") == f"127.0.0.1:{gateway.data_port}"
        assert service.header("cookie") == ""

    def test_headers_arrive_in_the_real_gateway_order(self, gateway, echo):
        """Client headers first, then soajsinjectobj, an empty cookie and Connection."""
        real = captured("service-received.json")["hello"]["proxied_requests"][0]["headers"]
        service = registered(gateway, echo, "hello")
        with httpx.Client(headers={}) as client:
            request = client.build_request(
                "GET",
                f"{gateway.data_url}/hello/echo?x=1",
                headers=[
                    ("user-agent", "curl/7.88.1"),
                    ("accept", "*/*"),
                    ("key", gateway.ext_key),
                ],
            )
            for name in ("accept-encoding", "connection"):
                del request.headers[name]
            assert client.send(request).status_code == 200
        names = [name.lower() for name, _ in service.requests[-1]["headers"]]
        assert names == [name.lower() for name, _ in real]

    def test_the_version_segment_selects_the_version_and_is_stripped(self, gateway, echo):
        """/hello/v1/echo reaches version 1 at /echo; a POST body is passed through."""
        service = registered(gateway, echo, "hello")
        response = httpx.post(
            f"{gateway.data_url}/hello/v1/echo",
            headers={**CURL_HEADERS, "key": gateway.ext_key, "content-type": "application/json"},
            content=b'{"msg":"hi"}',
        )
        assert response.status_code == 200
        assert service.requests[-1]["path"] == "/echo"
        assert service.requests[-1]["body"] == '{"msg":"hi"}'

    def test_requests_are_spread_round_robin_over_healthy_hosts(self, gateway, echo):
        """Two healthy hosts of one version share the requests in turn."""
        first = registered(gateway, echo, "hello")
        # A second host of the same service: same port, another loopback address.
        second = echo(host="127.0.0.2", port=first.port)
        register(gateway, "hello", first.port, ip="127.0.0.2")
        gateway.check_health()
        assert sorted(gateway.healthy_hosts("hello")) == ["127.0.0.1", "127.0.0.2"]
        for _ in range(4):
            assert call(gateway, "/hello/echo", key=gateway.ext_key).status_code == 200
        assert len(first.requests) == 2
        assert len(second.requests) == 2

    def test_a_host_failing_its_heartbeat_is_never_used(self, gateway, echo):
        """A service whose /heartbeat does not answer 200 gets 504/133."""
        service = echo(heartbeat=False)
        register(gateway, "hello", service.port)
        gateway.check_health()
        response = call(gateway, "/hello/echo", key=gateway.ext_key)
        assert response.status_code == 504
        assert errors(response)["errors"]["codes"] == [133]
        assert service.requests == []

    def test_public_services_get_no_header_but_the_client_one_passes(self, gateway, echo):
        """An extKeyRequired:false service gets no soajsinjectobj from the gateway."""
        service = registered(gateway, echo, "pub")
        response = call(gateway, "/pub/echo", key=gateway.ext_key, soajsinjectobj="{}")
        assert response.status_code == 200
        assert service.header("soajsinjectobj") == "{}"

    def test_cors_headers_are_added(self, gateway, echo):
        """Every reply carries the environment's CORS headers, as the real gateway's."""
        registered(gateway, echo, "hello")
        response = call(gateway, "/hello/echo", key=gateway.ext_key)
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["access-control-allow-credentials"] == "true"


class TestErrors:
    def test_no_key(self, gateway, echo):
        """An extKeyRequired service without a key answers 403/132."""
        registered(gateway, echo, "hello")
        assert_error(call(gateway, "/hello/echo"), "hello.get.no-key")

    def test_bad_key(self, gateway, echo):
        """An unknown key answers 500/148."""
        registered(gateway, echo, "hello")
        assert_error(call(gateway, "/hello/echo", key="0000"), "hello.get.bad-key")

    def test_unknown_service(self, gateway):
        """A service the registry does not know answers 404/130."""
        assert_error(call(gateway, "/nosuch/echo", key=gateway.ext_key), "unknown-service.get")

    def test_no_healthy_host(self, gateway):
        """A registered service with no healthy host answers 504/133."""
        httpx.post(
            f"{gateway.maintenance_url}/register",
            json={
                "name": "badver",
                "port": "1",
                "ip": "127.0.0.1",
                "type": "service",
                "version": "1",
            },
        )
        response = call(gateway, "/badver/echo", key=gateway.ext_key)
        assert_error(response, "down.get.no-healthy-host")

    def test_missing_and_bad_tokens(self, gateway, echo):
        """A protected API of an oauth service answers 500/143 without a valid token."""
        registered(gateway, echo, "secure")
        assert_error(call(gateway, "/secure/echo", key=gateway.ext_key), "secure.get.no-token")
        bad = f"Bearer {JWT['token']}x"
        response = call(gateway, "/secure/echo", key=gateway.ext_key, authorization=bad)
        assert_error(response, "secure.get.bad-token")

    def test_public_service_without_key_hits_the_4_3_3_bug(self, gateway, echo):
        """A public service called with no key answers 503/135, as soajs.controller 4.3.3 does."""
        registered(gateway, echo, "pub")
        assert_error(call(gateway, "/pub/echo"), "pub.get.no-key")

    def test_the_bug_can_be_switched_off(self, seed_config, echo):
        """With emulatePublicNoKeyBug false a public service works without a key."""
        options = seed_config.gateway.model_copy(update={"emulate_public_no_key_bug": False})
        config = seed_config.model_copy(update={"gateway": options})
        with LocalGateway(config, port=0, health_check_interval=200) as gateway:
            registered(gateway, echo, "pub")
            assert call(gateway, "/pub/echo").status_code == 200

    def test_a_service_missing_from_the_package_acl(self, gateway, echo):
        """An extKeyRequired service the package does not list answers 403/154."""
        registered(gateway, echo, "fallback", name="other")
        response = call(gateway, "/other/echo", key=gateway.ext_key)
        assert response.status_code == 403
        assert errors(response)["errors"]["codes"] == [154]

    def test_a_version_missing_from_the_acl(self, gateway, echo):
        """A version the ACL does not list answers 154."""
        registered(gateway, echo, "hello", version="2")
        response = call(gateway, "/hello/v2/echo", key=gateway.ext_key)
        assert errors(response)["errors"]["codes"] == [154]


class TestInjectedHeader:
    def test_hello_get_equals_the_captured_header(self, gateway, echo):
        """tenant_Profile + provision_ACL: the header equals the real one byte for byte."""
        service = registered(gateway, echo, "hello")
        call(gateway, "/hello/echo?x=1", key=gateway.ext_key)
        assert service.header("soajsinjectobj") == expected_header("hello-get", gateway)

    def test_hello_post_v1_equals_the_captured_header(self, gateway, echo):
        """The version in the URL does not change the header."""
        service = registered(gateway, echo, "hello")
        httpx.post(
            f"{gateway.data_url}/hello/v1/echo",
            content=b'{"msg":"hi"}',
            headers={**CURL_HEADERS, "key": gateway.ext_key, "content-type": "application/json"},
        )
        assert service.header("soajsinjectobj") == expected_header("hello-post-v1", gateway)

    def test_interconnect_equals_the_captured_header(self, gateway, echo):
        """interConnect adds the target's key config and its host, port and latest version."""
        hello = registered(gateway, echo, "hello")
        caller = registered(gateway, echo, "caller")
        call(gateway, "/caller/echo", key=gateway.ext_key)
        expected = expected_header("caller-interconnect", gateway, hello=hello.port)
        assert caller.header("soajsinjectobj") == expected
        assert json.loads(expected) == {
            **captured("soajsinjectobj.caller-interconnect.json"),
            "awareness": json.loads(expected)["awareness"],
        }

    def test_a_logged_in_user_equals_the_captured_header(self, gateway, echo):
        """A tenant JWT yields urac and param; the non-ASCII first name is percent-encoded."""
        service = registered(gateway, echo, "secure")
        response = call(
            gateway, "/secure/echo", key=gateway.ext_key, authorization=f"Bearer {JWT['token']}"
        )
        assert response.status_code == 200
        assert service.header("soajsinjectobj") == expected_header("secure-urac-jwt", gateway)

    def test_a_token_signed_by_this_library_is_accepted(self, gateway, echo):
        """make_user_token signs with the tenant secret; the gateway reads it from Bearer."""
        service = registered(gateway, echo, "secure")
        token = make_user_token(JWT["payload"], "tenant jwt secret")
        response = call(
            gateway, "/secure/echo", key=gateway.ext_key, authorization=f"Bearer {token}"
        )
        assert response.status_code == 200
        urac = json.loads(service.header("soajsinjectobj") or "{}")["urac"]
        assert urac["firstName"] == "Zo%C3%AB"

    def test_non_latin1_text_in_the_header_is_a_proxy_error(self, seed_config, echo):
        """A tenant name above U+00FF cannot be sent by Node either: 503/135."""
        data = seed_config.model_dump(by_alias=True)
        data["tenants"][0]["name"] = "Tenant \u4e2d"
        data["tenants"][0]["applications"][0]["keys"][0]["extKeys"][0]["extKey"] = "k1"
        with LocalGateway(
            GatewayConfig.model_validate(data), port=0, health_check_interval=200
        ) as gateway:
            registered(gateway, echo, "hello")
            response = call(gateway, "/hello/echo", key="k1")
            assert errors(response)["errors"]["codes"] == [135]

    def test_latin1_text_arrives_as_single_bytes(self, seed_config, echo):
        """A tenant name with é arrives as the Latin-1 byte 0xE9, as Node writes it."""
        data = seed_config.model_dump(by_alias=True)
        data["tenants"][0]["name"] = "Caf\u00e9"
        data["tenants"][0]["applications"][0]["keys"][0]["extKeys"][0]["extKey"] = "k1"
        with LocalGateway(
            GatewayConfig.model_validate(data), port=0, health_check_interval=200
        ) as gateway:
            service = registered(gateway, echo, "hello")
            call(gateway, "/hello/echo", key="k1")
            header = service.header("soajsinjectobj") or ""
            assert '"name":"Caf\u00e9"' in header
            assert header.encode("latin-1").count(b"\xe9") == 1


@pytest.mark.parametrize("path", ["/hello/echo", "/hello/v1/echo", "/hello:1/echo"])
def test_every_url_form_reaches_version_1(gateway, echo, path):
    """The gateway URL grammar: no version, a /v1/ segment, or service:1."""
    service = registered(gateway, echo, "hello")
    assert call(gateway, path, key=gateway.ext_key).status_code == 200
    assert service.requests[-1]["path"] == "/echo"


class TestHealthProbes:
    def test_port_plus_increment_beyond_65535_falls_back_to_the_port(self, gateway, echo):
        """A service whose port + maintenanceInc passes 65535 is probed on its own port."""
        service = None
        for port in range(65500, 64600, -7):
            try:
                service = echo(port=port)
            except (OSError, SystemExit):
                continue
            break
        assert service is not None, "no free port above 64535"
        assert service.port + 1000 > 65535
        assert register(gateway, "hello", service.port)["result"] is True
        gateway.check_health()
        assert gateway.healthy_hosts("hello") == ["127.0.0.1"]
        response = call(gateway, "/hello/echo", key=gateway.ext_key)
        assert response.status_code == 200

"""Service to service: ``caller`` and ``versionless`` reach ``hello`` directly (mesh), ``relay``
through the gateway.

Both use :class:`soajs.ServiceConnector` inside a request that came through the real gateway;
``hello`` reports what context it received each time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .apps import RunningService, run_routable_service, run_service
from .realgateway import GatewayUnderTest
from .servers import wait_until_routable

pytestmark = pytest.mark.interop

HELLO_REPORT = {
    "service": "hello",
    "tenant": "TTEN",
    "config": {"feature": "on", "limit": 10},
    "greeting": "hello from commonFields",
    "urac": None,
}


@pytest.fixture(scope="module")
def hello(gateway: GatewayUnderTest) -> Iterator[RunningService]:
    """``hello``, the service being called, routable through the gateway."""
    with run_routable_service(gateway, "fastapi", "hello") as service:
        yield service


@pytest.fixture(scope="module")
def caller(gateway: GatewayUnderTest, hello: RunningService) -> Iterator[RunningService]:
    """``caller``, with ``interConnect`` to hello version 1: the gateway tells it where hello is."""
    with run_service(
        gateway, "fastapi", "caller", inter_connect=[{"name": "hello", "version": "1"}]
    ) as service:
        yield service


@pytest.fixture(scope="module")
def versionless(gateway: GatewayUnderTest, hello: RunningService) -> Iterator[RunningService]:
    """``versionless`` (Flask), with a version-less ``interConnect`` to hello.

    The gateway then lists hello with ``version: null``, which a call without a version matches
    (soajs core's ``version === item.version`` with both ``null``).
    """
    with run_service(gateway, "flask", "versionless", inter_connect=[{"name": "hello"}]) as service:
        yield service


@pytest.fixture(scope="module")
def relay(gateway: GatewayUnderTest, hello: RunningService) -> Iterator[RunningService]:
    """``relay`` (Flask), with no ``interConnect``: no mesh entry, so the gateway path."""
    with run_service(gateway, "flask", "relay") as service:
        yield service


def _call_through(gateway: GatewayUnderTest, service: str) -> dict[str, Any]:
    reply = wait_until_routable(
        f"{gateway.data_url}/{service}/call/hello", {"key": gateway.ext_key}
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


class TestMesh:
    def test_caller_reaches_hello_directly(
        self, gateway: GatewayUnderTest, hello: RunningService, caller: RunningService
    ) -> None:
        """The connector goes straight to hello's port; hello sees tenant TTEN and its config."""
        body = _call_through(gateway, "caller")
        assert body["mesh"] is True
        assert body["host"] == f"127.0.0.1:{hello.port}"
        assert body["status"] == 200
        assert body["reply"] == HELLO_REPORT
        assert hello.received()[-1] == HELLO_REPORT

    def test_versionless_entry_reaches_hello_directly(
        self, gateway: GatewayUnderTest, hello: RunningService, versionless: RunningService
    ) -> None:
        """A version-less interConnect entry is a mesh match for a call without a version."""
        body = _call_through(gateway, "versionless")
        assert body["mesh"] is True
        assert body["host"] == f"127.0.0.1:{hello.port}"
        assert body["status"] == 200
        assert body["reply"] == HELLO_REPORT
        assert hello.received()[-1] == HELLO_REPORT

    def test_relay_reaches_hello_through_gateway(
        self, gateway: GatewayUnderTest, hello: RunningService, relay: RunningService
    ) -> None:
        """Without a mesh match the connector calls the gateway's /hello path with the key."""
        body = _call_through(gateway, "relay")
        assert body["mesh"] is False
        assert body["host"] == f"127.0.0.1:{gateway.data_port}/hello"
        assert body["status"] == 200
        assert body["reply"] == HELLO_REPORT
        assert hello.received()[-1] == HELLO_REPORT

"""The harness itself: the real gateway answers, and a raw registration makes a service routable.

No library code is involved here, so a failure in this file points at the stack, not at soajs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import UvicornThread, free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from .realgateway import JWT_SECRET, RealGateway
from .servers import wait_until_routable
from .tenant_jwt import captured_token, captured_user, sign_hs256

pytestmark = pytest.mark.interop


class RecordingService:
    """A bare Starlette service that answers /heartbeat and records every /echo it receives."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[
                Route("/heartbeat", self.heartbeat),
                Route("/echo", self.echo, methods=["GET", "POST"]),
            ]
        )

    async def heartbeat(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def echo(self, request: Request) -> JSONResponse:
        self.received.append({"path": request.url.path, "headers": dict(request.headers)})
        return JSONResponse({"service": "smoke", "path": request.url.path})


@pytest.fixture(scope="module")
def smoke_service(real_gateway: RealGateway) -> Iterator[tuple[RecordingService, int]]:
    """The recording service, running on uvicorn and registered by hand with ``mw: true``."""
    service = RecordingService()
    port = free_port()
    with UvicornThread(service.app, port=port, lifespan="on"):
        body = {
            "name": "smoke",
            "group": "Interop",
            "port": port,
            "ip": "127.0.0.1",
            "type": "service",
            "version": "1",
            "extKeyRequired": True,
            "tenant_Profile": True,
            "mw": True,
        }
        reply = httpx.post(f"{real_gateway.maintenance_url}/register", json=body, timeout=10)
        assert reply.json()["result"] is True, reply.text
        yield service, port


class TestRealGatewayHarness:
    def test_get_registry_answers_with_controller_and_seeded_ports(
        self, real_gateway: RealGateway
    ) -> None:
        """/getRegistry answers result:true with the controller entry and the run's own ports."""
        body = real_gateway.get_registry("nobody")
        assert body["result"] is True
        data = body["data"]
        assert data["environment"] == "dev"
        assert list(data["services"]) == ["controller"]
        assert data["services"]["controller"]["port"] == real_gateway.data_port
        ports = data["serviceConfig"]["ports"]
        assert ports["controller"] + ports["maintenanceInc"] == real_gateway.maintenance_port
        assert data["serviceConfig"]["awareness"]["healthCheckInterval"] == 1000

    def test_gateway_listens_on_loopback_only(self, real_gateway: RealGateway) -> None:
        """The preload kept the gateway's data port off every address but 127.0.0.1."""
        lines = _listening_lines(real_gateway.data_port)
        assert lines, "the data port should be listening"
        assert all(line.split()[1].startswith("0100007F:") for line in lines), lines

    def test_keyed_call_reaches_raw_registered_service(
        self, real_gateway: RealGateway, smoke_service: tuple[RecordingService, int]
    ) -> None:
        """A keyed call through the gateway reaches the service with tenant TTEN injected."""
        service, _port = smoke_service
        reply = wait_until_routable(
            f"{real_gateway.data_url}/smoke/echo", {"key": real_gateway.ext_key}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"service": "smoke", "path": "/echo"}
        headers = service.received[-1]["headers"]
        injected = json.loads(headers["soajsinjectobj"])
        assert injected["tenant"]["code"] == "TTEN"
        assert injected["key"]["config"]["smoke"] == {"probe": "raw registration"}
        assert injected["key"]["config"]["greeting"] == "hello from commonFields"
        assert injected["tenant"]["profile"] == {"plan": "test"}
        assert headers["key"] == real_gateway.ext_key

    def test_registry_lists_registered_service(
        self, real_gateway: RealGateway, smoke_service: tuple[RecordingService, int]
    ) -> None:
        """After /register the service's own registry view holds its {group, port} entry."""
        _service, port = smoke_service
        services = real_gateway.get_registry("smoke")["data"]["services"]
        assert services["smoke"] == {"group": "Interop", "port": port}

    def test_mw_registration_is_persisted_by_gateway(
        self, real_gateway: RealGateway, smoke_service: tuple[RecordingService, int]
    ) -> None:
        """With mw:true the gateway wrote the service's host and marketplace records to the DB."""
        _service, port = smoke_service
        hosts = real_gateway.db_find("hosts", {"name": "smoke"})
        assert [(host["ip"], host["port"], host["env"]) for host in hosts] == [
            ("127.0.0.1", port, "dev")
        ]
        marketplace = real_gateway.db_find("marketplace", {"name": "smoke"})
        assert len(marketplace) == 1
        assert marketplace[0]["configuration"]["port"] == port

    def test_call_without_key_is_refused(
        self, real_gateway: RealGateway, smoke_service: tuple[RecordingService, int]
    ) -> None:
        """A call without a key is refused by the gateway with code 132 and never reaches it."""
        service, _port = smoke_service
        seen = len(service.received)
        reply = httpx.get(f"{real_gateway.data_url}/smoke/echo", timeout=10)
        assert reply.status_code == 403
        assert reply.json()["errors"]["codes"] == [132]
        assert len(service.received) == seen


class TestTenantToken:
    def test_signer_reproduces_captured_token(self) -> None:
        """The hmac-based HS256 signer gives the captured token byte for byte."""
        assert sign_hs256(captured_user(), JWT_SECRET) == captured_token()


def _listening_lines(port: int) -> list[str]:
    """Rows of /proc/net/tcp{,6} in LISTEN state (0A) for ``port``."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                rows.append(line)
    return rows

"""Fixtures of the local gateway tests: the gateway on the captured seed, echo services."""

from __future__ import annotations

import contextlib
import copy
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixture_paths import CAPTURED

from soajs.gateway import GatewayConfig, LocalGateway, config_from_seed

from .echo_service import EchoService

CURL_HEADERS = {"user-agent": "curl/7.88.1", "accept": "*/*"}
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gateway.yaml"


def captured(name: str) -> Any:
    """A captured file of the real gateway, parsed."""
    return json.loads((CAPTURED / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def seed_config() -> GatewayConfig:
    """The captured real-gateway seed, converted to the local gateway's config."""
    return config_from_seed(captured("db.seed.core_provision.json"))


@pytest.fixture
def gateway(seed_config: GatewayConfig) -> Iterator[LocalGateway]:
    """A started local gateway on free ports serving the captured seed, checking every 200 ms."""
    with LocalGateway(seed_config, port=0, health_check_interval=200) as running:
        yield running


@pytest.fixture
def echo() -> Iterator[Callable[..., EchoService]]:
    """Start echo services on free ports; all are stopped after the test."""
    started: list[EchoService] = []

    def start(*, heartbeat: bool = True, host: str = "127.0.0.1", port: int = 0) -> EchoService:
        service = EchoService(heartbeat=heartbeat, host=host, port=port)
        service.__enter__()
        started.append(service)
        return service

    yield start
    for service in started:
        service.server.request_stop()
    for service in started:
        service.__exit__(None, None, None)


def register(gateway: LocalGateway, template: str, port: int, **changes: Any) -> dict[str, Any]:
    """POST a captured registration body (template.request.json) with a new port and changes."""
    body = copy.deepcopy(captured(f"register.{template}.request.json"))
    body.update(port=port, **changes)
    reply = httpx.post(f"{gateway.maintenance_url}/register", json=body)
    result: dict[str, Any] = reply.json()
    return result


def registered(
    gateway: LocalGateway, echo: Callable[..., EchoService], template: str, **changes: Any
) -> EchoService:
    """Start an echo service, register it as the captured `template`, wait until healthy."""
    service = echo()
    reply = register(gateway, template, service.port, **changes)
    assert reply["result"] is True
    gateway.check_health()  # rather than waiting for the next 200 ms cycle
    assert gateway.healthy_hosts(str(changes.get("name", template)))
    return service


class GatewayCommand:
    """``soajs gateway`` on the example config and free ports, running in a subprocess."""

    def __init__(self, process: subprocess.Popen[str], banner: list[str]) -> None:
        self.process = process
        self.banner = banner
        """The first four lines it printed: the data and maintenance URLs, then the exports."""

    def interrupt(self) -> tuple[str, str]:
        """Ctrl-C, and wait for it to exit; what it printed after the banner, and its log."""
        self.process.send_signal(signal.SIGINT)
        return self.process.communicate(timeout=20)


@contextlib.contextmanager
def gateway_command() -> Iterator[GatewayCommand]:
    """Start ``soajs gateway --config examples/gateway.yaml --port 0``; kill it if still up."""
    command = [sys.executable, "-c", "from soajs.cli import main; main()"]
    command += ["gateway", "--config", str(EXAMPLE), "--port", "0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            yield GatewayCommand(process, [process.stdout.readline() for _ in range(4)])
        finally:
            if process.poll() is None:
                process.kill()

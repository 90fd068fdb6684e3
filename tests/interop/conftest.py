"""Fixtures of the interop suite: the gateways, each started once for the whole package.

Every scenario takes the ``gateway`` fixture and so runs against the real gateway
(soajs.controller 4.3.3 with its DB, installed under ``.interop/``) and against the bundled
emulator (``soajs.gateway.LocalGateway``), both seeded from ``seed.core_provision.json``.

Without ``node``/``npm`` the suite is skipped with the reason shown in the summary, unless the
``CI`` environment variable is set: there the missing prerequisite fails the run.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest
from helpers import NodeSuite

from .apps import RunningService
from .localgateway import EmulatedGateway, running_emulator
from .realgateway import GatewayUnderTest, RealGateway, running_gateway

# Each scenario runs against every gateway here, by fixture name.
GATEWAYS = {"real": "real_gateway", "local": "local_gateway_emulator"}


INTEROP = NodeSuite(
    "INTEROP SUITE", "the real SOAJS gateway (soajs.controller 4.3.3) needs Node.js 20 and npm"
)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say up front when the interop suite cannot run here."""
    return INTEROP.report_header()


@pytest.fixture(scope="package")
def real_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealGateway]:
    """The real gateway with its DB, on free loopback ports, stopped after the interop tests."""
    INTEROP.require()
    with running_gateway(tmp_path_factory.mktemp("realgateway")) as gateway:
        yield gateway


@pytest.fixture(scope="package")
def local_gateway_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedGateway]:
    """The bundled emulator (soajs.gateway.LocalGateway) with the same seed."""
    with running_emulator(tmp_path_factory.mktemp("localgateway")) as gateway:
        yield gateway


@pytest.fixture(scope="package", params=list(GATEWAYS))
def gateway(request: pytest.FixtureRequest) -> GatewayUnderTest:
    """Each gateway the scenarios run against: ``real`` (soajs.controller 4.3.3), ``local``."""
    gateway: GatewayUnderTest = request.getfixturevalue(GATEWAYS[request.param])
    return gateway


@pytest.fixture
def gateway_restarter(gateway: GatewayUnderTest) -> Iterator[GatewayUnderTest]:
    """The gateway, for tests that stop and start it; it is running again after the test."""
    yield gateway
    gateway.start_gateway()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Attach the tail of the gateway's log to every failed interop test."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    shown: set[int] = set()
    for value in funcargs.values():
        if id(value) in shown:
            continue
        shown.add(id(value))
        if isinstance(value, GatewayUnderTest):
            report.sections.append((f"{value.kind} gateway log (tail)", value.log_tail()))
        elif isinstance(value, RunningService) and value.log_path is not None:
            report.sections.append((f"service {value.name} log (tail)", value.log_tail()))
